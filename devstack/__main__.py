"""``python -m devstack up | demo | env``: the whole pipeline on one machine.

up    apply the Pulumi program to moto on 127.0.0.1, run it, write the state file; until Ctrl-C / SIGTERM
demo  start it, run the article's two scenarios, print the tables; exit 0 only when right
env   print ``export`` lines (AWS_ENDPOINT_URL, region, credentials) for a running ``up``
plugins  every plugin that could be enabled: kind, description, config keys
post  sign a file of events as SendGrid would and post it to a running ``up``
messages  what SNS published on a running ``up`` (its topics: the sns plugin's, the alarms'), then removed
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import threading
from pathlib import Path

from devstack.stack import Options, Stack
from devstack.state import DEFAULT_STATE, client, read_state
from handlers.manager import PluginError


def up(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    options = Options(plugins=args.plugins, settings=dict(args.set), state_path=Path(args.state),
                      webhook_delay=args.webhook_delay)
    with Stack(options) as stack:
        print(summary(stack, args.state), flush=True)
        # A process signal may land on any thread; the handler runs in the main thread only
        # when it wakes, so wake it often rather than block for good.
        while not stop.wait(0.2):
            pass
        print("devstack: stopping", flush=True)
    return 0


def summary(stack: Stack, state_path) -> str:
    """What ``up`` started: every URL, table, queue and topic, and where the state file is."""
    state = stack.state
    rows = [("AWS endpoint", f"{state['aws_endpoint_url']}  (region {state['region']})"),
            ("webhook URL", state["webhook_url"]),
            *((f"{name} URL", url) for name, url in state["urls"].items()),
            ("SendGrid API", state["sendgrid_api_host"]),
            *((f"table {k}", v) for k, v in state["tables"].items()),
            *((f"queue {k}", v) for k, v in state["queues"].items()),
            *((f"topic {k}", v) for k, v in state["topics"].items()),
            ("state file", str(state_path))]
    width = max(len(label) for label, _ in rows)
    return (f"devstack up (plugins: {', '.join(state['plugins'])}): the Pulumi program, applied to moto "
            f"({sum(r.custom for r in stack.program.resources)} resources; IAM enforced)\n"
            + "".join(f"  {label:<{width}}  {value}\n" for label, value in rows)
            + f"Insert an item into {state['tables']['mail_sender']} (see README, \"The local stack\"); "
            "`python -m devstack messages` shows what SNS published. Ctrl-C stops.")


def demo(args) -> int:
    from devstack.demo import run

    try:
        return 0 if run(Options(state_path=None, webhook_delay=args.webhook_delay)) else 1
    except TimeoutError as exc:
        print(f"\nResult: FAILED. {exc}", file=sys.stderr)
        return 1


def env(args) -> int:
    for name, value in read_state(Path(args.state))["aws_env"].items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


def plugins(args) -> int:
    from devstack import tools

    rows = tools.plugin_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        tools.print_plugins(rows)
    return 0


def post(args) -> int:
    from devstack import tools

    status, answer = tools.post(read_state(Path(args.state)), tools.load_events(args.file))
    print(f"{status} {answer}")
    return 0 if 200 <= status < 300 else 1


def show_messages(args) -> int:
    from devstack import messages

    state = read_state(Path(args.state))
    sqs = client(state["aws_env"], "sqs")
    while True:
        for found in messages.take(sqs, state["queues"]["messages"], messages.WAIT_SECONDS if args.follow else 0):
            print(json.dumps(found) if args.json else messages.show(found), flush=True)
        if not args.follow:
            return 0


def setting(text: str) -> tuple[str, object]:
    """``key=value``: the value as JSON when it is JSON (numbers, booleans, lists), else the text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("up", help="run the local stack until Ctrl-C / SIGTERM")
    p.add_argument("--plugins", help="comma-separated plugin names (default: bounce,dropped,dynamodb)")
    p.add_argument("--set", action="append", type=setting, default=[], metavar="KEY=VALUE",
                   help="a stack config key (as in Pulumi.yaml, without namespace), e.g. --set snsEvents='[\"bounce\"]'")
    p.add_argument("--state", default=str(DEFAULT_STATE), help="state file (default: %(default)s)")
    p.add_argument("--webhook-delay", type=float, default=1.0,
                   help="seconds before SendGrid posts a mail's events (default: %(default)s)")
    p.set_defaults(run=up)
    p = commands.add_parser("demo", help="the article's test run, results printed")
    p.add_argument("--webhook-delay", type=float, default=0.3, help="(default: %(default)s)")
    p.set_defaults(run=demo)
    p = commands.add_parser("env", help="export lines for boto3 / the aws cli against a running `up`")
    p.add_argument("--state", default=str(DEFAULT_STATE), help="state file (default: %(default)s)")
    p.set_defaults(run=env)
    p = commands.add_parser("plugins", help="every plugin that could be enabled: kind, description, config keys")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(run=plugins)
    p = commands.add_parser("post", help="sign a file of events as SendGrid would and post it to the local webhook")
    p.add_argument("file", type=Path, help="a JSON file: an array of SendGrid events (or one event)")
    p.add_argument("--state", default=str(DEFAULT_STATE), help="state file (default: %(default)s)")
    p.set_defaults(run=post)
    p = commands.add_parser("messages", help="what SNS published on the local stack (then removed from its queue)")
    p.add_argument("--follow", "-f", action="store_true", help="keep waiting for more (Ctrl-C stops)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--state", default=str(DEFAULT_STATE), help="state file (default: %(default)s)")
    p.set_defaults(run=show_messages)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except PluginError as exc:  # a typo in --plugins: say so, no traceback
        print(f"devstack: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
