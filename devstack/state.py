"""The local stack's state file: where it is, written, read back and removed.

Pulumi-free, so the operator's command line (``cli.target``) finds the local
stack without loading the program.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

DEFAULT_STATE = Path(".devstack/state.json")
# The stack's queues: the state file's name (``queues``) -> the stack output naming it (``pulumi stack output``).
QUEUE_OUTPUTS = {"sender_failures": "dlqUrl", "ingest": "ingestQueueUrl", "ingest_dlq": "ingestDlqUrl"}


def queue_urls(outputs: dict) -> dict[str, str]:
    """The queues a stack's ``outputs`` name (an ``ingest: direct`` stack has no ingest queues): name -> URL."""
    return {name: outputs[output] for name, output in QUEUE_OUTPUTS.items() if outputs.get(output)}


def write_state(path: Path, state: dict) -> None:
    """Write the state file atomically, readable by its owner only (it holds a private key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A new file of our own (O_EXCL, mode 0600): never a leftover or a symlink someone put there.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(state, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_state(path: Path = DEFAULT_STATE) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SystemExit(f"devstack: no state file at {path}; is `python -m devstack up` running?") from None


def session(aws_env: dict):
    """A boto3 session from ``AWS_*`` variables (a state file's ``aws_env``): credentials and region."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=aws_env.get("AWS_ACCESS_KEY_ID"), aws_secret_access_key=aws_env.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=aws_env.get("AWS_SESSION_TOKEN"),
        region_name=aws_env.get("AWS_DEFAULT_REGION") or aws_env.get("AWS_REGION"))


def endpoint(aws_env: dict, service: str) -> str | None:
    """The endpoint ``aws_env`` gives ``service``: its own (``AWS_ENDPOINT_URL_<SERVICE>``, as boto3 reads
    them: the local Lambda API), else the general one."""
    return aws_env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or aws_env.get("AWS_ENDPOINT_URL")


def client(aws_env: dict, service: str, **options):
    """A boto3 client of ``service`` as ``aws_env`` says (a running stack's, as its administrator)."""
    return session(aws_env).client(service, endpoint_url=endpoint(aws_env, service), **options)


def remove_state(path: Path, pid: int) -> None:
    """Remove the state file if it is still this process's."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        if json.loads(path.read_text()).get("pid") == pid:
            path.unlink()
