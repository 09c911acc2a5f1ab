"""The ``history`` sink: a message's whole story, in order, in the event-history table."""

import json
import os

import boto3
import pytest

from devstack.sendgrid import events_for
from handlers import dynamo, sender, webhook
from tests.plugin_infra import run_infrastructure
from tests.support import put_item, sample, seed_item, stream_record

MID = "14c5d75ce93"  # sg_message_id up to the first dot
TYPES = "processed,deferred,delivered,open,click,bounce,dropped"


def story(message_id: str) -> list[dict]:
    """The history of a message as a user reads it: one Query, in key order."""
    response = boto3.client("dynamodb").query(
        TableName=os.environ["TABLE_EVENT_HISTORY"], KeyConditionExpression="messageId = :m",
        ExpressionAttributeValues={":m": {"S": message_id}})
    return [dynamo.deserialize(i) for i in response["Items"]]


def post(plugins, events):
    return webhook.receive(json.dumps(events).encode(), plugins)


def test_out_of_order_batches_read_back_in_time_order(stack):
    plugins = stack(f"{TYPES},history")
    put_item("TABLE_SENT_LOG", {"messageId": MID, "from": {"email": "s@example.com"},
                                "to": [{"email": "example@test.com", "name": "Ex"}], "subject": "Hi"})
    processed, deferred, delivered, opened, click = sample("every_type.json")[:5]
    post(plugins, [click, delivered])      # SendGrid posts the later events first
    post(plugins, [opened, processed, deferred])

    rows = story(MID)
    assert [r["event"] for r in rows] == ["processed", "deferred", "delivered", "open", "click"]
    assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)
    assert all(r["matched"] and r["toName"] == "Ex" and r["subject"] == "Hi" for r in rows)
    assert rows[1]["attempt"] == "5" and rows[4]["urlOffset"] == {"index": 0, "type": "html"}


def test_a_repeated_event_rewrites_its_own_row(stack):
    plugins = stack(f"{TYPES},history")
    events = sample("every_type.json")[:3]
    post(plugins, events)
    post(plugins, events + [events[1]])
    assert len(story(MID)) == 3


def test_unknown_fields_and_events_without_a_message_id_are_kept(stack):
    plugins = stack("delivered,history")
    event = {**sample("delivered.json"), "tls": 1, "brand_new_field": {"x": [1.5, "y"]}}
    orphan = {"event": "delivered", "email": "a@example.com", "timestamp": 1764400001, "sg_event_id": "o1"}
    post(plugins, [event, orphan])

    [row] = story(MID)
    assert row["sgEvent"]["brand_new_field"] == {"x": [1.5, "y"]} and row["sgEvent"]["tls"] == 1
    [orphan_row] = story("unknown:o1")
    assert orphan_row["matched"] is False and orphan_row["eventKey"] == "1764400001#3#o1"


def test_rows_expire_after_history_ttl_days(stack, monkeypatch):
    plugins = stack("delivered,bounce,history")
    monkeypatch.setenv("HISTORY_TTL_DAYS", "0")
    post(plugins, [sample("delivered.json")])
    assert "expiresAt" not in story(MID)[0]
    monkeypatch.setenv("HISTORY_TTL_DAYS", "2")
    post(plugins, [sample("bounce.json")])
    [bounced] = [r for r in story(MID) if r["event"] == "bounce"]
    assert bounced["expiresAt"] - bounced["timestamp"] > 86400


@pytest.mark.parametrize("sendgrid_clock", [0, -1, -2])
def test_the_story_starts_with_the_sent_row_then_the_webhook_events(stack, sendgrid, sendgrid_clock):
    """SendGrid stamps ``processed`` when it takes the mail; the sender reads its clock after the answer, so
    a second boundary between the two made the sent row a second later (it sorted after ``processed``)."""
    plugins = stack(f"{TYPES},dynamodb,history")
    item = seed_item("m1", [("alice@example.com", "Alice")])
    put_item("TABLE_MAIL_SENDER", item)
    sender.handle([stream_record(item)], plugins)
    [accepted] = sendgrid.accepted
    [sent] = story(accepted.message_id)
    accepted.at = sent["timestamp"] + sendgrid_clock  # SendGrid's stamp: the same second, or earlier
    events = events_for(accepted)
    post(plugins, list(reversed(events)))

    rows = story(accepted.message_id)
    assert [r["event"] for r in rows] == ["sent", "processed", "delivered"]
    assert rows[0]["mailId"] == "m1" and rows[0]["to"] == ["alice@example.com"]
    assert rows[0]["timestamp"] == sent["timestamp"] >= rows[1]["timestamp"]


def test_infrastructure_sets_the_ttl_env_from_config():
    made = run_infrastructure("history", {"historyTtlDays": "30"})
    assert made.env == {"sender": {"HISTORY_TTL_DAYS": "30"}, "webhook": {"HISTORY_TTL_DAYS": "30"}}
    assert run_infrastructure("history").env["webhook"] == {"HISTORY_TTL_DAYS": "400"}
    assert run_infrastructure("bounce").env == {"sender": {}, "webhook": {}}
