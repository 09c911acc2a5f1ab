"""``sendgrid-events COMMAND ...`` (or ``python -m cli``): parse, find the stack, run, one-line errors.

Each module named in ``COMMANDS`` has ``register(subparsers)``, which adds
its parser(s) and sets ``func=run``, where ``run(target, args) -> int``
(``target``: a ``cli.target.Target``; ``args.out``: the ``cli.output.Output``).
Every command (each leaf of nested subcommands too) gets the global options:
``--json`` and the target's (``--local [STATE]``, ``--stack NAME``,
``--outputs FILE``): a command's own options use other ``dest`` names (not
``out`` either, the Output: ``--out FILE`` takes ``dest="out_path"``).
``error_of`` is the one place that turns exceptions into one line on stderr
and an exit code (``cli.errors``); anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cli import target as targets
from cli.errors import FAILED, TRANSIENT, USAGE, CliError
from cli.output import Output

PROG = "sendgrid-events"
COMMANDS = ("story", "bounces", "report", "backfill", "replay", "redrive")  # modules of cli, each a command (or a group of them)
THROTTLING = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
                        "Throttling", "TooManyRequestsException", "ServiceUnavailable", "InternalServerError"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Operate a sendgrid-events stack: a mail's story, who to stop mailing, "
                               "bounce reports, SendGrid's suppressions backfilled, set-aside events "
                               "replayed, failed sends and posts re-driven.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"cli.{name}").register(subparsers)
    for leaf in _leaves(parser):
        leaf.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")
        targets.add_options(leaf)
    return parser


def _leaves(parser: argparse.ArgumentParser):
    """The parsers that run something: those without subcommands of their own."""
    nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not nested:
        yield parser
    for action in nested:
        for sub in dict.fromkeys(action.choices.values()):  # an alias maps to the same parser
            yield from _leaves(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.out = Output(as_json=args.json)
    try:
        return args.func(targets.from_args(args), args) or 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        error = error_of(exc)
        if error is None:
            raise
        print(f"{PROG}: {error}", file=sys.stderr)
        return error.code


def error_of(exc: BaseException) -> CliError | None:
    """The operator's one line for ``exc`` and its exit code; None for a bug (the traceback is kept)."""
    if isinstance(exc, CliError):
        return exc
    botocore = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        if isinstance(exc, botocore.NoCredentialsError):
            return CliError("no AWS credentials: set them in the environment (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...) "
                            "or use --local", USAGE)
        if isinstance(exc, botocore.NoRegionError):
            return CliError("no AWS region: set AWS_REGION (the stack's region)", USAGE)
        if isinstance(exc, (botocore.EndpointConnectionError, botocore.ConnectTimeoutError,
                            botocore.ReadTimeoutError)):
            return CliError(f"AWS could not be reached ({exc}); is the local stack still running?", TRANSIENT)
        if isinstance(exc, botocore.ClientError):
            info = exc.response.get("Error", {})
            code = info.get("Code", "")
            operation = getattr(exc, "operation_name", "") or "call"
            text = f"AWS {operation}: {code}: {info.get('Message', '')}".rstrip(": ")
            if code in THROTTLING:
                return CliError(f"{text} (throttled: try again later)", TRANSIENT)
            if code == "ResourceNotFoundException":
                return CliError(f"{text} (the stack's resource is gone: deployed, or the right --stack?)", FAILED)
            return CliError(text, FAILED)
    urllib3 = sys.modules.get("urllib3.exceptions")
    if urllib3 is not None and isinstance(exc, urllib3.HTTPError):
        return CliError(f"SendGrid could not be reached: {type(exc).__name__}", TRANSIENT)
    return None


def entry() -> None:
    """The console script ``sendgrid-events``."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
