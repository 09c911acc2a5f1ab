"""The ``suppression`` sender plugin: known-bad recipients are not mailed again."""

import json

import pytest

from handlers import manager, sender, webhook
from handlers.tables import SENDER
from plugins import suppression
from tests.support import put_item, sample, scan, seed_item, stream_record

PLUGINS = "bounce,dropped,spamreport,dynamodb,suppression"


def send(plugins, item):
    put_item("TABLE_MAIL_SENDER", item)
    result = sender.handle([stream_record(item)], plugins)
    assert result == {"batchItemFailures": []}
    return next(i for i in scan("TABLE_MAIL_SENDER") if i["id"] == item["id"])


def post(plugins, *events):
    webhook.receive(json.dumps(list(events)).encode(), plugins)


def event(kind, email, i=0, **fields):
    return {"event": kind, "email": email, "timestamp": 1764400000 + i, "sg_event_id": f"{kind}-{email}-{i}",
            "sg_message_id": f"msg{i}.filter", **fields}


@pytest.mark.parametrize("row, reason", [
    ({"event": "bounce", "type": "bounce", "status": "5.1.1", "bounceClassification": "Invalid Address"},
     "hard bounce: 5.1.1 Invalid Address"),
    ({"event": "bounce", "type": "bounce"}, "hard bounce"),
    ({"event": "bounce", "type": "blocked", "status": "4.0.0"}, None),
    ({"event": "dropped", "reason": "Invalid"}, "dropped: Invalid"),
    ({"event": "dropped", "reason": "Bounced Address"}, "dropped: Bounced Address"),
    ({"event": "dropped", "reason": "Unsubscribed Address"}, "dropped: Unsubscribed Address"),
    ({"event": "dropped", "reason": "Spam Reporting Address"}, "dropped: Spam Reporting Address"),
    ({"event": "dropped", "reason": "Invalid SMTPAPI header"}, None),
    ({"event": "dropped", "reason": "Recipient List over Package Quota"}, None),
    ({"event": "spamreport"}, "spam report"),
])
def test_which_rows_suppress(row, reason):
    assert suppression.why(row) == reason


def test_suppressed_recipients_are_dropped_and_recorded_the_rest_is_sent(stack, sendgrid):
    plugins = stack(PLUGINS)
    post(plugins,
         event("bounce", "hard@example.com", 1, type="bounce", status="5.1.1", bounce_classification="Invalid Address"),
         event("bounce", "soft@example.com", 2, type="blocked", status="4.7.1"),
         event("dropped", "unsub@example.com", 3, reason="Unsubscribed Address"),
         event("dropped", "header@example.com", 4, reason="Invalid SMTPAPI header"),
         event("spamreport", "spam@example.com", 5))
    assert len(scan("TABLE_BOUNCE")) == 5  # the spam report is stored in the bounce table too

    to = ["hard@example.com", "soft@example.com", "unsub@example.com", "header@example.com",
          "spam@example.com", "fine@example.com"]
    item = send(plugins, seed_item("m1", [(e, "") for e in to]))

    assert item["status"] == "sent"
    assert item["suppressed"] == {
        "hard@example.com": "hard bounce: 5.1.1 Invalid Address (2025-11-29)",
        "unsub@example.com": "dropped: Unsubscribed Address (2025-11-29)",
        "spam@example.com": "spam report (2025-11-29)"}
    [accepted] = sendgrid.accepted
    sent_to = [a["email"] for p in accepted.payload["personalizations"] for a in p["to"]]
    assert sent_to == ["soft@example.com", "header@example.com", "fine@example.com"]


def test_a_mail_with_no_recipient_left_is_rejected_and_not_sent(stack, sendgrid):
    plugins = stack(PLUGINS)
    post(plugins, event("bounce", "Gone@Example.com", type="bounce", bounce_classification="Invalid Address"))
    item = send(plugins, seed_item("m2", [("gone@example.com", "Gone")]))
    assert item["status"] == "rejected"
    assert list(item["suppressed"]) == ["gone@example.com"]
    assert sendgrid.accepted == []


def test_the_latest_suppressing_row_gives_the_reason(stack):
    stack(PLUGINS)
    post(manager.build(PLUGINS),
         event("dropped", "x@example.com", 0, reason="Bounced Address"),
         event("bounce", "x@example.com", 86400 * 3, type="bounce", status="5.0.0"),
         event("bounce", "x@example.com", 86400 * 9, type="blocked"))
    assert suppression.suppression("x@example.com") == "hard bounce: 5.0.0 (2025-12-02)"
    assert suppression.suppression("nobody-knows@example.com") is None


def test_many_rows_of_one_address_are_all_read(stack):
    stack(PLUGINS)
    post(manager.build(PLUGINS), *[event("bounce", "busy@example.com", i, type="blocked", reason="x" * 4000)
                                   for i in range(300)])
    post(manager.build(PLUGINS), event("spamreport", "busy@example.com", 999))
    assert len(suppression.rows_for("busy@example.com")) == 301  # > 1 MB: more than one Query page
    assert suppression.suppression("busy@example.com").startswith("spam report")


def test_it_adds_an_address_index_and_the_senders_query_to_the_bounce_table():
    before = manager.build("dynamodb").tables["bounce"]
    after = manager.build("dynamodb,suppression").tables["bounce"]
    assert before.indexes == () and SENDER not in before.access
    assert after.indexes == (suppression.ADDRESS_INDEX,) and after.access[SENDER] == ("dynamodb:Query",)
    assert after.hash_key == before.hash_key and after.access["webhook"] == before.access["webhook"]


def test_it_needs_the_dynamodb_plugin_in_any_order():
    assert manager.build("suppression,dynamodb").tables["bounce"].indexes == (suppression.ADDRESS_INDEX,)
    with pytest.raises(manager.PluginError, match="bounce"):
        manager.build("bounce,suppression")  # no dynamodb: the bounce table is not declared


def test_an_address_too_long_for_the_index_is_sent_not_failed(stack, sendgrid):
    """DynamoDB refuses a Query for an index key over 2048 bytes (moto does not: taught here); no row
    can exist for such an address anyway."""
    from botocore.exceptions import ClientError

    from handlers import dynamo

    plugins = stack(PLUGINS)

    def as_dynamodb_does(params, **_):
        if any(len(v.get("S", "").encode()) > 2048 for v in params.get("ExpressionAttributeValues", {}).values()):
            raise ClientError({"Error": {"Code": "ValidationException", "Message": "key too large"}}, "Query")

    dynamo.client().meta.events.register("before-parameter-build.dynamodb.Query", as_dynamodb_does)
    long_address = "x" * 2100 + "@example.com"
    assert suppression.suppression(long_address) is None  # no Query that would be a ValidationException
    item = send(plugins, seed_item("m-long", [(long_address, "Long")]))
    assert item["status"] != "failed"
