"""Issue 7's plugins end to end through the local stack (moto server, stand-in, webhook front, poller)."""

import json

from devstack import demo
from devstack.__main__ import main as devstack_main
from devstack.testing import local_stack  # noqa: F401  (the fixture)

PLUGINS = "bounce,dropped,delivered,deferred,dynamodb,history,sns,suppression"


def item(item_id, *emails):
    return demo.seed_item(item_id, [{"email": e, "name": e.split("@")[0]} for e in emails], "Test mail")


def test_a_bounced_address_is_stored_traced_notified_once_and_then_suppressed(local_stack, tmp_path, capsys):
    state = tmp_path / "state.json"
    stack = local_stack(PLUGINS, state_path=state)

    stack.insert(item("m1", "ok@example.com", "nobody@bounce.test"))
    [first] = stack.wait_settled("m1")
    assert first["status"] == "sent"

    [row] = stack.scan("bounce")
    assert (row["toEmail"], row["type"], row["bounceClassification"]) == (
        "nobody@bounce.test", "bounce", "Invalid Address")

    trail = sorted((r for r in stack.scan("event_history") if r["messageId"] == first["messageId"]),
                   key=lambda r: r["eventKey"])
    # "processed" is not an enabled type here: ignored, so not in the history
    assert [r["event"] for r in trail if r.get("email") in (None, "nobody@bounce.test")] == ["sent", "bounce"]
    assert [r["event"] for r in trail if r.get("email") == "ok@example.com"] == ["delivered"]
    assert trail[0]["to"] == ["ok@example.com", "nobody@bounce.test"]

    # What SNS published, as `devstack messages --json` shows it (the stack's queue on every topic).
    capsys.readouterr()
    assert devstack_main(["messages", "--json", "--state", str(state)]) == 0
    [message] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert message["topic"] == stack.state["outputs"]["snsTopicArn"].rsplit(":", 1)[1]
    assert message["subject"] == "SendGrid bounce: nobody@bounce.test - Invalid Address"
    assert message["message"]["messageId"] == first["messageId"]
    assert message["attributes"]["bounceClassification"] == "Invalid Address"
    assert stack.messages() == []  # read once: taken from the queue

    stack.insert(item("m2", "nobody@bounce.test", "again@example.com"))
    stack.insert(item("m3", "Nobody@Bounce.test"))
    second, third = stack.wait_settled("m2", "m3")
    assert second["status"] == "sent"
    assert list(second["suppressed"]) == ["nobody@bounce.test"]
    assert second["suppressed"]["nobody@bounce.test"].startswith("hard bounce: 5.1.1 Invalid Address")
    assert [a.payload["personalizations"][0]["to"] for a in stack.sendgrid.accepted][1] == [
        {"email": "again@example.com", "name": "again"}]
    assert (third["status"], list(third["suppressed"])) == ("rejected", ["nobody@bounce.test"])
    assert len(stack.sendgrid.accepted) == 2
    assert stack.messages() == []  # no new bounce, no new notification
