"""The jsonlog plugin, tested with sendgrid-events' plugin test kit (``devstack.plugin_kit``).

Run from a sendgrid-events checkout with this package installed:
``python -m pytest path/to/sendgrid-events-jsonlog/tests``.
"""

import json
from pathlib import Path

import sendgrid_events_jsonlog

from devstack.demo import seed_item
from devstack.plugin_kit import local_stack, run_program  # noqa: F401  (local_stack is a fixture)

PLUGINS = ["bounce", "dropped", "dynamodb", "jsonlog"]
INSTALLED = Path(sendgrid_events_jsonlog.__file__).resolve().parent.parent  # where pip put the package


def test_the_program_gives_the_webhook_the_events_to_log():
    made = run_program({"plugins": PLUGINS, "jsonlogEvents": "bounce"})
    assert made.environment("webhook")["JSONLOG_EVENTS"] == "bounce"
    assert "JSONLOG_EVENTS" not in made.environment("sender")


def test_a_bounce_is_logged_by_the_webhook_function_as_deployed(local_stack):
    stack = local_stack(",".join(PLUGINS), settings={"jsonlogEvents": "bounce"}, plugin_paths=(INSTALLED,))
    stack.insert(seed_item("m1", [{"email": "nobody@bounce.test", "name": "Nobody"},
                                  {"email": "b@blocked.test", "name": "B"}], "jsonlog"))
    stack.wait_settled("m1")
    lines = [json.loads(line) for line in stack.functions["webhook"].logs
             if line.startswith('{"message": "sendgrid event"')]
    assert sorted((line["event"], line["email"]) for line in lines) == [
        ("bounce", "b@blocked.test"), ("bounce", "nobody@bounce.test")]
