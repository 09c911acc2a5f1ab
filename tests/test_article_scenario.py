"""The article's test run ("テスト実行"), at handler level under moto."""

import json

from devstack.sendgrid import events_for
from handlers import sender, webhook
from tests.support import inserted, proxy_event, scan, seed_item


def send_items(plugins, *items):
    """Insert (as the stream would deliver it) and send each item."""
    return sender.handle(inserted(*items), plugins)


def post_events(plugins, events):
    return webhook.receive(json.dumps(events).encode(), plugins)


def test_mail_to_an_existing_address_is_sent_logged_and_not_bounced(stack, sendgrid):
    plugins = stack()
    assert send_items(plugins, seed_item("m1", [("alice@example.com", "Alice")])) == {"batchItemFailures": []}

    [accepted] = sendgrid.accepted
    [logged] = scan("TABLE_SENT_LOG")
    assert logged["messageId"] == accepted.message_id
    assert logged["to"] == [{"email": "alice@example.com", "name": "Alice"}]
    assert logged["subject"] == "Test mail" and logged["mailId"] == "m1"

    counts = post_events(plugins, events_for(accepted))
    assert counts["accepted"] == 0 and counts["ignored"] == 2  # processed + delivered
    assert scan("TABLE_BOUNCE") == []


def test_bounce_for_the_non_existent_address_gives_exactly_one_bounce_row(stack, sendgrid):
    plugins = stack()
    item = seed_item("m2", [("alice@example.com", "Alice"), ("nobody@bounce.test", "Nobody")], "Hello")
    send_items(plugins, item)
    [accepted] = sendgrid.accepted

    events = events_for(accepted)
    post_events(plugins, events)

    [row] = scan("TABLE_BOUNCE")
    bounce = next(e for e in events if e["event"] == "bounce")
    assert row["fullMessageId"] == bounce["sg_message_id"]
    assert row["messageId"] == accepted.message_id
    assert (row["fromEmail"], row["fromName"]) == ("sender@example.com", "Sender")
    assert (row["toEmail"], row["toName"]) == ("nobody@bounce.test", "Nobody")
    assert row["subject"] == "Hello"
    assert (row["event"], row["type"], row["status"]) == ("bounce", "bounce", "5.1.1")
    assert row["reason"] == bounce["reason"]
    assert row["bounceClassification"] == "Invalid Address"
    assert row["matched"] is True and row["timestamp"] == bounce["timestamp"]
    assert [i["status"] for i in scan("TABLE_MAIL_SENDER")] == ["sent"]


def test_dropped_event_gives_one_row_with_its_reason(stack, sendgrid):
    plugins = stack()
    send_items(plugins, seed_item("m3", [("bad@dropped.test", "Bad")]))
    [accepted] = sendgrid.accepted
    post_events(plugins, events_for(accepted))

    [row] = scan("TABLE_BOUNCE")
    assert (row["event"], row["reason"], row["toName"]) == ("dropped", "Invalid", "Bad")
    assert row["subject"] == "Test mail"


def test_seed_sample_event_through_the_lambda_handler(stack, monkeypatch):
    stack()
    webhook.enabled_plugins.cache_clear()
    monkeypatch.delenv("ENABLED_PLUGINS", raising=False)
    monkeypatch.delenv("SENDGRID_WEBHOOK_PUBLIC_KEYS", raising=False)
    monkeypatch.setenv("SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE", "true")  # signing: tests/test_webhook_*.py
    from tests.support import sample

    answer = webhook.lambda_handler(proxy_event(json.dumps([sample("bounce.json"), sample("delivered.json")])), None)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["accepted"] == 1
    [row] = scan("TABLE_BOUNCE")
    assert row["matched"] is False and row["toEmail"] == "nobody@bounce.test"
    webhook.enabled_plugins.cache_clear()
