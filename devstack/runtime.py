"""One instance of a function, as Lambda's Python runtime runs it.

Started by ``devstack.lambdas.Function`` (by path, from the function's
deployed package: the code archive the program built, unpacked, as
``/var/task``) with exactly the function's environment. Like Lambda's init phase it imports the
handler once (``_HANDLER``); then it serves invocations one at a time: a JSON
line ``{"event": ..., "deadline": <epoch seconds>}`` on standard input, a JSON
line ``{"result": ...}`` or ``{"error": {"type", "message", "trace"}}`` on the
protocol stream. What the handler prints or logs goes to standard error (the
function's log).

The deploy side is not there in Lambda: importing ``pulumi`` or ``infra``
here fails, as it would in AWS.
"""

from __future__ import annotations

import importlib
import importlib.abc
import json
import os
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field

DEPLOY_SIDE = ("pulumi", "pulumi_aws", "pulumi_random", "infra")


class _NotInLambda(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in DEPLOY_SIDE:
            raise ModuleNotFoundError(f"No module named {name!r} (the deploy side is not shipped to Lambda)",
                                      name=name)
        return None


@dataclass
class Context:
    """The parts of Lambda's context object a handler may use."""

    function_name: str
    deadline: float
    memory_limit_in_mb: int = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"

    @property
    def invoked_function_arn(self) -> str:
        region = os.environ.get("AWS_REGION", "us-east-1")
        return f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def main() -> int:
    sys.meta_path.insert(0, _NotInLambda())
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # print() goes to the log, not into the protocol
    sys.stdout.reconfigure(line_buffering=True)
    module, _, attr = os.environ["_HANDLER"].rpartition(".")
    handler = getattr(importlib.import_module(module), attr)
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = Context(os.environ["AWS_LAMBDA_FUNCTION_NAME"], request["deadline"])
        try:
            answer = {"result": handler(request["event"], context)}
        except Exception as exc:  # noqa: BLE001 - reported to the invoker, as Lambda does
            answer = {"error": {"type": type(exc).__name__, "message": str(exc),
                                "trace": traceback.format_exc()}}
        protocol.write(json.dumps(answer, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
