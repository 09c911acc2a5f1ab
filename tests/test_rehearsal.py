"""The local stack is the Pulumi program applied: what the program declares is what runs, and no more.

A plugin whose declared IAM lacks an action its code calls fails here as it
would in AWS (AccessDenied), and works once the action is declared; the
mapping's filter in the program decides what the poller delivers.
"""

import json
import textwrap

import pytest

from devstack import demo
from devstack.stack import wait_for
from devstack.testing import local_stack  # noqa: F401  (the fixture)
from infra import trigger

# A sink counting every record in a table of its own with UpdateItem (an action no core function has:
# locally every DynamoDB grant covers every table, see devstack/applied.py); what it declares varies.
AUDIT_PLUGIN = '''
import boto3
from handlers.hookspecs import hookimpl
from handlers.tables import Table

ACTIONS = {actions!r}


@hookimpl
def register_tables(register):
    register(Table(name="audit", hash_key="eventId", access={{"webhook": ACTIONS}}))


def write(records):
    import os
    for record in records:
        boto3.client("dynamodb").update_item(
            TableName=os.environ["TABLE_AUDIT"], Key={{"eventId": {{"S": record["eventId"]}}}},
            UpdateExpression="ADD seen :one", ExpressionAttributeValues={{":one": {{"N": "1"}}}})


@hookimpl
def register_sinks(register):
    register("audit", write)
'''


def installed_plugin(folder, name: str, actions: tuple[str, ...]):
    """``name``: a plugin package on ``folder`` (module and entry point, as pip would leave them)."""
    (folder / f"{name}.py").write_text(AUDIT_PLUGIN.format(actions=actions))
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[sendgrid_events]\n{name} = {name}\n")
    return folder


@pytest.mark.parametrize("name, actions, stored", [("audit_denied", ("dynamodb:PutItem",), False),
                                                   ("audit_granted", ("dynamodb:UpdateItem",), True)],
                         ids=["declares-PutItem-calls-UpdateItem", "declares-what-it-calls"])
def test_a_plugins_declared_iam_is_what_its_code_may_call(local_stack, tmp_path, name, actions, stored):
    plugin = installed_plugin(tmp_path, name, actions)  # a name of its own: this process imports it
    stack = local_stack(f"bounce,dropped,dynamodb,{name}", plugin_paths=(plugin,), webhook_retry_delay=5)
    stack.insert(demo.seed_item("m1", [{"email": "nobody@bounce.test", "name": "Nobody"}], "Audit"))
    if stored:
        stack.wait_settled("m1")
        assert len(stack.scan("audit")) == 1
        assert [p.status for p in stack.poster.posts] == [200]
    else:
        wait_for(lambda: stack.poster.posts, "SendGrid's first post")
        assert stack.poster.posts[0].status == 200  # ingest: queue (the default): queued, then...
        wait_for(lambda: stack.queue_pollers[0].failed, "the queued post failing")  # ... left for a retry
        denied = [line for line in stack.functions["webhook"].logs if "AccessDenied" in line]
        assert denied and "dynamodb:UpdateItem" in denied[0]
        assert stack.scan("audit") == []


def test_the_programs_mapping_filter_decides_what_the_poller_delivers(local_stack, monkeypatch):
    item = demo.seed_item("m1", [{"email": "alice@example.com", "name": "Alice"}], "Filter")
    stack = local_stack()
    stack.insert(item)
    stack.wait_settled("m1")  # (no event of this mail is an enabled type: settled once sent)
    wait_for(lambda: stack.poller.filtered >= 1, "the sender's own updates (MODIFY) filtered out")
    assert stack.poller.delivered == 1
    stack.stop()

    monkeypatch.setattr(trigger, "INSERT_ONLY", json.dumps({"eventName": ["INSERT", "MODIFY"]}))
    stack = local_stack()
    stack.insert(item)
    [sent] = stack.wait_settled("m1")
    assert sent["status"] == "sent"  # the sender ignores MODIFY in code too: one send
    wait_for(lambda: stack.poller.delivered >= 2, "the sender's own updates (MODIFY) delivered")
    assert stack.poller.filtered == 0
    assert len(stack.sendgrid.accepted) == 1
