"""``make preview [STACK=dev]``: a stack checked offline, as far as it can be without the cloud.

``python -m infra.preview --stack prod`` reads ``Pulumi.yaml`` and
``Pulumi.prod.yaml`` with the CLI's rules (``infra.stackconfig``: a stack the
CLI would refuse fails here with its message), runs the real program under
mocks with the config as the CLI hands it (``infra.offline``), and prints what
``pulumi preview`` would: the resource tree, the program's diagnostics, the
outputs (secrets as ``[secret]``). A program error (a ``ConfigError`` naming
the key) is shown as the CLI shows it; either failure exits 1.

``Engine`` is the ``infra.offline.Engine`` of a preview (and of the tests that
run the program): it answers each resource at once with its inputs plus the
outputs AWS would compute (ARNs, URLs, ids), made up from the resource's name.
Secure config values cannot be decrypted here: the program gets ``[secret]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pulumi

from infra import display, offline, stackconfig

ACCOUNT = "123456789012"
DEFAULT_REGION = "us-east-1"
DYNAMIC = "pulumi-python:dynamic:Resource"
# What SendGrid answers for the program's dynamic resources (infra.sendgrid), made up.
SENDGRID_OUTPUTS = {"webhookId": "webhook-id", "policyId": "policy-id",
                    "publicKey": "(SendGrid's public key, known after pulumi up)"}


class Engine(offline.Engine):
    """Plausible answers: the id ``<name>-id``, the inputs, and what AWS would add.

    ``created`` lists the resources answered, in order (empty if the program
    stopped before its first resource).
    """

    def __init__(self, region: str = DEFAULT_REGION, account: str = ACCOUNT):
        self.region, self.account = region, account
        self.created: list[offline.Resource] = []

    def create(self, resource: offline.Resource) -> tuple[str | None, dict[str, Any]]:
        self.created.append(resource)
        if not resource.custom:
            return None, {}
        return f"{resource.name}-id", self.outputs(resource)

    def outputs(self, resource: offline.Resource) -> dict[str, Any]:
        """``resource``'s inputs plus the outputs the program reads (``arn``, ``name``, URLs, ...)."""
        typ, name, inputs = resource.type, resource.name, resource.inputs
        region, account = self.region, self.account
        state = dict(inputs)
        service = typ.split(":")[1].split("/")[0]
        arn = f"arn:aws:{service}:{region}:{account}:{typ.split(':')[-1].lower()}/{name}"
        state.setdefault("arn", arn)
        state.setdefault("name", name)
        if typ == "aws:dynamodb/table:Table" and inputs.get("streamEnabled"):
            state["streamArn"] = f"{arn}/stream/2026-01-01T00:00:00.000"
        elif typ == "aws:lambda/function:Function":
            state["invokeArn"] = f"arn:aws:apigateway:{region}:lambda:path/functions/{arn}/invocations"
        elif typ == "aws:apigateway/restApi:RestApi":
            state.update(rootResourceId="root-id",
                         executionArn=f"arn:aws:execute-api:{region}:{account}:{name}-id")
        elif typ == "aws:apigateway/stage:Stage":
            state["invokeUrl"] = f"https://{inputs['restApi']}.execute-api.{region}.amazonaws.com/{inputs['stageName']}"
        elif typ == DYNAMIC:
            state.update(SENDGRID_OUTPUTS)
        elif typ == "aws:sqs/queue:Queue":  # a queue's ARN ends with its name alone
            state.update(url=f"https://sqs.{region}.amazonaws.com/{account}/{name}",
                         arn=f"arn:aws:sqs:{region}:{account}:{name}")
        elif typ == "aws:kms/key:Key":
            state["keyId"] = "key-id"
        elif typ == "random:index/randomString:RandomString":
            state["result"] = ("r4nd0m" * 20)[: int(inputs["length"])]
        elif typ == "aws:lambda/layerVersion:LayerVersion":
            state["arn"] = f"arn:aws:lambda:{region}:{account}:layer:{inputs['layerName']}:1"
        return state


class _Diagnostics(logging.Handler):
    """The program's ``pulumi.log`` messages, as (severity, message)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append((record.levelname.lower(), record.getMessage()))


@dataclass
class Run:
    """A stack's program run offline."""

    stack_name: str
    """``<project>-<stack>``, the stack resource's name."""
    config: stackconfig.ProgramConfig
    resources: list[offline.Resource]
    diagnostics: list[tuple[str, str]]
    """(severity, message): what the program logged, then its error if it failed."""
    outputs: dict[str, Any] | None
    """Resolved; None if the program failed."""
    secret_outputs: set[str]


def run(stack: str, root: Path = offline.MAIN.parent) -> Run:
    """Check ``stack`` with the CLI's rules (``StackConfigError``) and run the program with its config."""
    project = stackconfig.load_project(root / stackconfig.PROJECT_FILE)
    config = stackconfig.resolve(project, stackconfig.load_stack(project, stack))
    diagnostics = _Diagnostics()
    logger = logging.getLogger(f"{__name__}.program")
    logger.propagate, logger.handlers = False, [diagnostics]
    engine = Engine(region=config.values.get("aws:region", DEFAULT_REGION))
    stack_name = f"{project.name}-{stack}"
    try:
        result = offline.run(config.values, engine, stack=stack, secret_keys=config.secret_keys,
                             project=project.name, preview=True, logger=logger)
    except Exception as exc:  # noqa: BLE001 (shown as the CLI's Python host shows a program failure)
        message = str(exc) if isinstance(exc, pulumi.RunError) else \
            "Program failed with an unhandled exception:\n" + traceback.format_exc().rstrip()
        return Run(stack_name, config, engine.created, [*diagnostics.messages, ("error", message)], None, set())
    outputs = result.resolved_outputs()
    return Run(stack_name, config, result.resources, diagnostics.messages, outputs,
               {name for name in outputs if result.is_secret(name)})


def preview(stack: str, root: Path = offline.MAIN.parent, out: TextIO | None = None,
            err: TextIO | None = None) -> int:
    """``run`` and print it as ``pulumi preview`` would (the CLI's errors to ``err``); the exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        done = run(stack, root)
    except stackconfig.StackConfigError as exc:
        print(f"error: {exc}", file=err)
        return 1
    for warning in done.config.warnings:
        print(f"warning: {warning}", file=err)
    lines = [f"Previewing update ({stack}) offline: no cloud, no state; every resource would be created:", "",
             *display.tree_lines(display.tree(done.stack_name, done.resources)), ""]
    if done.diagnostics:
        lines += [*display.diagnostics_lines(done.stack_name, done.diagnostics), ""]
    if done.outputs is not None:
        lines += [*display.outputs_lines(done.outputs, done.secret_outputs), "",
                  "Resources:", f"    + {len(done.resources) + 1} to create"]
    print("\n".join(lines).rstrip(), file=out)
    return 0 if done.outputs is not None else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev", help="the stack: reads Pulumi.<stack>.yaml (default: dev)")
    parser.add_argument("--dir", type=Path, default=offline.MAIN.parent,
                        help="the folder of Pulumi.yaml and the stack files (default: this repository's)")
    args = parser.parse_args(argv)
    return preview(args.stack, args.dir)


if __name__ == "__main__":
    sys.exit(main())
