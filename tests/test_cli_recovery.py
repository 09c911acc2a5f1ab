"""``sendgrid-events replay rejects`` and ``redrive`` on the local stack: what was set aside or given up
on, run again exactly once (replay through the webhook function, invoked as the operator would)."""

import json

from cli.__main__ import main
from devstack import demo
from devstack.sendgrid import Scripted
from devstack.stack import wait_for
from devstack.testing import local_stack  # noqa: F401  (the fixture)
from handlers import dynamo, reconcile, sendgrid_api
from tests.webhook_support import bounce


def run(capsys, *argv) -> tuple[int, dict]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out or "null")


def test_replay_rejects_stores_what_the_fixed_stack_can_and_reports_the_rest(local_stack, tmp_path, capsys):
    state = tmp_path / "state.json"
    stack = local_stack(state_path=state)
    ddb = stack.aws.client("dynamodb")
    # What an older plugin refused (a row as the webhook keeps it), and an event no version can read.
    refused = reconcile.reject(bounce(1), "dynamodb: an old bug", sink="dynamodb")
    hopeless = reconcile.reject({"event": "bounce", "timestamp": 1764400000}, "event has no 'email'")
    for row in (refused, hopeless):
        ddb.put_item(TableName=stack.table("rejects"), Item=dynamo.serialize(row))

    code, listed = run(capsys, "replay", "rejects", "--local", str(state), "--dry-run")
    assert code == 0 and listed["counts"] == {"not replayed": 2}

    code, answer = run(capsys, "replay", "rejects", "--local", str(state), "--sink", "dynamodb")
    assert code == 0 and answer["counts"] == {"stored": 1}
    [row] = stack.scan("bounce")
    assert (row["fullMessageId"], row["toEmail"]) == ("msg.filter-1", "user1@bounce.test")

    code, answer = run(capsys, "replay", "rejects", "--local", str(state))
    assert code == 0 and answer["counts"] == {"rejected": 1}  # still no email: kept, with a new version
    [left] = stack.scan("rejects")
    assert left["eventId"] == hopeless["eventId"] and left["version"] and left["reason"] == "event has no 'email'"

    code, answer = run(capsys, "replay", "rejects", "--local", str(state), "--since", "2025-11-28T13:00:00")
    assert code == 0 and answer["count"] == 1  # the event's own time is what --since looks at
    code, answer = run(capsys, "replay", "rejects", "--local", str(state), "--dry-run", "--reason", "no 'email'")
    assert code == 0 and [r["eventId"] for r in answer["rejects"]] == [hopeless["eventId"]]


def queue_depth(stack) -> int:
    sqs = stack.aws.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.state["queues"]["sender_failures"],
                                          AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_redrive_maps_the_failed_batch_to_its_item_and_resends_a_copy_under_a_new_id(local_stack, tmp_path, capsys):
    state = tmp_path / "state.json"
    stack = local_stack(state_path=state, sender_max_retries=0)
    stack.sendgrid.script.extend([Scripted(429, headers={"Retry-After": "0"})] * sendgrid_api.ATTEMPTS)
    stack.insert(demo.seed_item("m1", [{"email": "ok@example.com", "name": "Ok"}], "Hello"))
    wait_for(lambda: queue_depth(stack) == 1, "the failed batch on the on-failure queue")
    assert stack.item("m1")["status"] == "failed"

    code, answer = run(capsys, "redrive", "--local", str(state))
    [batch] = answer["batches"]
    assert code == 0 and batch["condition"] == "RetryAttemptsExhausted" and not batch["expired"]
    assert [(i["id"], i["status"], i["action"]) for i in batch["items"]] == [("m1", "failed", "resend")]
    assert queue_depth(stack) == 1 and len(stack.sendgrid.accepted) == 0  # looking changes nothing

    code, answer = run(capsys, "redrive", "--local", str(state), "--resend")
    [item] = answer["batches"][0]["items"]
    assert code == 0 and item["action"].startswith("resent as m1-resend-") and answer["deleted"] == 1
    copy_id = item["action"].removeprefix("resent as ")
    [copy] = stack.wait_settled(copy_id)
    assert copy["status"] == "sent" and copy["resentFrom"] == "m1" and copy["subject"] == "Hello"
    assert stack.item("m1")["resentAs"] == copy_id and stack.item("m1")["status"] == "failed"
    assert [a.payload["personalizations"][0]["to"] for a in stack.sendgrid.accepted] == [
        [{"email": "ok@example.com", "name": "Ok"}]]
    assert queue_depth(stack) == 0
    assert run(capsys, "redrive", "--local", str(state)) == (0, {"batches": [], "deleted": 0})


def test_replay_needs_the_function_named_by_the_stack(tmp_path, capsys):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"tableNames": {"rejects": "prod-rejects"}}))  # deployed before functionNames
    capsys.readouterr()
    assert main(["replay", "rejects", "--stack", "prod", "--outputs", str(outputs)]) == 2
    assert "no 'functionNames' output naming its webhook function" in capsys.readouterr().err
