"""What the command-line tests share: mails sent through the local stack, a command run with --json."""

import json
from pathlib import Path

from cli.__main__ import main
from devstack import demo

ROOT = Path(__file__).resolve().parent.parent
M1 = ("ok@example.com", "b@bounce.test", "x@blocked.test", "d@dropped.test", "late@deferred.test")


def item(item_id, *emails):
    return demo.seed_item(item_id, [{"email": e, "name": e.split("@")[0]} for e in emails], f"About {item_id}")


def send(stack):
    """m1 to five domains, m2 to a bounce in upper case, then m3 to the bounced address (suppressed)."""
    stack.insert(item("m1", *M1))
    stack.insert(item("m2", "B@bounce.test"))
    stack.wait_settled("m1", "m2")
    stack.insert(item("m3", "b@bounce.test"))
    stack.wait_settled("m3")


def run_json(capsys, state, *argv):
    capsys.readouterr()
    code = main([*argv, "--json", "--local", str(state)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), captured.err
