"""The stack a command acts on: its tables, queues and outputs, AWS clients, SendGrid's API.

Two kinds, chosen by the global options (``add_options``):

``--local [STATE]``   the local stack (``python -m devstack up``), found by its
                      state file (``.devstack/state.json`` by default): moto's
                      endpoint, region and an administrator's credentials, the
                      tables and queues, the stand-in's URL and key.
``--stack NAME``      a deployed stack: ``pulumi stack output --json --stack NAME``
                      gives its tables (``tableNames``) and queue (``dlqUrl``);
                      ``--outputs FILE`` reads that JSON from a file instead (no
                      Pulumi CLI needed). AWS credentials and region come from
                      the environment (boto3's usual chain); SendGrid's API key
                      from ``SENDGRID_API_KEY``, its base URL from
                      ``SENDGRID_API_HOST`` (default ``https://api.sendgrid.com``).

Neither given: the local stack when its state file exists, else an error
saying what to pass. The API key is never printed (``repr`` hides it).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cli.errors import UsageError
from devstack import state as local_state
from devstack.state import DEFAULT_STATE, QUEUE_OUTPUTS
from handlers import env

TABLES_OUTPUT = "tableNames"
AWS_ATTEMPTS = 3  # calls per AWS request, the first included (botocore's standard retry mode)
SENDER_FAILURES, INGEST, INGEST_DLQ = QUEUE_OUTPUTS


@dataclass
class Target:
    """A stack: ``tables`` and ``queues`` map logical names to physical ones."""

    name: str
    tables: dict[str, str]
    queues: dict[str, str]
    outputs: dict
    aws_env: dict[str, str] = field(default_factory=dict, repr=False)
    """For the local stack: endpoint, region, credentials (``AWS_*`` variables); empty: boto3's own chain."""
    sendgrid_url: str | None = None
    sendgrid_key: str | None = field(default=None, repr=False)

    def table(self, logical: str) -> str:
        """The physical name of table ``logical``; a clear error when the stack has none (plugin not enabled)."""
        try:
            return self.tables[logical]
        except KeyError:
            raise UsageError(f"stack {self.name!r} has no {logical!r} table (its plugin is not enabled?); "
                             f"it has: {', '.join(sorted(self.tables)) or 'none'}") from None

    def has_table(self, logical: str) -> bool:
        return logical in self.tables

    @functools.cached_property
    def session(self):
        """A boto3 session for this stack (the local stack's credentials and region, or the environment's)."""
        import boto3

        return local_state.session(self.aws_env) if self.aws_env else boto3.session.Session()

    def client(self, service: str):
        """A boto3 client of ``service`` on this stack (the local endpoint when local: the service's own,
        ``AWS_ENDPOINT_URL_<SERVICE>``, when the state names one, as boto3 does): botocore's standard
        retries (throttling waited out), but a stack that cannot be reached is said within seconds."""
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "max_attempts": AWS_ATTEMPTS}, connect_timeout=5, read_timeout=60)
        return self.session.client(service, config=config, endpoint_url=local_state.endpoint(self.aws_env, service))

    def sendgrid(self) -> tuple[str, str]:
        """SendGrid's API base URL and key; a clear error when there is no key."""
        if not self.sendgrid_key:
            raise UsageError(f"no SendGrid API key: set {env.SENDGRID_API_KEY.name} in the environment "
                             "(a key with the suppressions read scope)")
        if not self.sendgrid_url:
            raise UsageError(f"no SendGrid API URL for stack {self.name!r}: set {env.SENDGRID_API_HOST.name}")
        return self.sendgrid_url.rstrip("/"), self.sendgrid_key


def add_options(parser) -> None:
    """The options that choose the target (every command takes them)."""
    group = parser.add_argument_group("stack")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--local", nargs="?", const=str(DEFAULT_STATE), metavar="STATE",
                       help=f"the local stack, by its state file (default {DEFAULT_STATE})")
    where.add_argument("--stack", metavar="NAME", help="a deployed stack (pulumi stack output --json --stack NAME)")
    group.add_argument("--outputs", metavar="FILE", help="with --stack: that stack's outputs as JSON, from a file")


def from_args(args) -> Target:
    if args.outputs and not args.stack:
        raise UsageError("--outputs FILE goes with --stack NAME")
    if args.stack:
        outputs = _read_outputs(Path(args.outputs)) if args.outputs else _pulumi_outputs(args.stack)
        return deployed(args.stack, outputs)
    path = Path(args.local or DEFAULT_STATE)
    if args.local is None and not path.exists():
        raise UsageError(f"no stack named: no local stack is running (no {path}); pass --stack NAME for a "
                         "deployed one, or start the local one: python -m devstack up")
    return local(path)


def local(path: Path) -> Target:
    """The local stack whose state file is ``path``."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"no local stack at {path}: no such state file (python -m devstack up writes it)") from None
    except ValueError as error:
        raise UsageError(f"{path} is not a devstack state file: {error}") from None
    if isinstance(state, dict) and isinstance(state.get("pid"), int) and not _alive(state["pid"]):
        raise UsageError(f"the local stack of {path} is not running (process {state['pid']} is gone): start it "
                         "with python -m devstack up")
    try:
        return Target(name="local", tables=dict(state["tables"]), queues=dict(state.get("queues", {})),
                      outputs=dict(state.get("outputs", {})), aws_env=dict(state["aws_env"]),
                      sendgrid_url=state.get("sendgrid_api_host"), sendgrid_key=state.get("sendgrid_api_key"))
    except (KeyError, TypeError) as error:
        raise UsageError(f"{path} is not a devstack state file: it lacks {error}") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def deployed(name: str, outputs: dict) -> Target:
    """A deployed stack, from its outputs (``pulumi stack output --json``)."""
    if not isinstance(outputs, dict) or not isinstance(outputs.get(TABLES_OUTPUT), dict):
        raise UsageError(f"stack {name!r}: its outputs have no {TABLES_OUTPUT!r} (is it a sendgrid-events stack, "
                         "deployed?)")
    queues = local_state.queue_urls(outputs)
    return Target(name=name, tables=dict(outputs[TABLES_OUTPUT]), queues=queues, outputs=outputs,
                  sendgrid_url=env.SENDGRID_API_HOST.get(), sendgrid_key=env.SENDGRID_API_KEY.get())


def _read_outputs(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--outputs {path}: no such file") from None
    except ValueError as error:
        raise UsageError(f"--outputs {path}: not JSON ({error})") from None


def _pulumi_outputs(stack: str) -> dict:
    if not shutil.which("pulumi"):
        raise UsageError("the Pulumi CLI is not on PATH: install it, or pass the stack's outputs with "
                         f"--outputs FILE (pulumi stack output --json --stack {stack} > FILE)")
    done = subprocess.run(["pulumi", "stack", "output", "--json", "--stack", stack],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise UsageError(f"pulumi stack output --stack {stack} failed: {last}")
    try:
        return json.loads(done.stdout)
    except ValueError as error:
        raise UsageError(f"pulumi stack output --stack {stack}: not JSON ({error})") from None
