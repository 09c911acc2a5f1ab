"""Poison items: whatever an inserted item holds, the sender ends it with an outcome, never ``sending``.

Each case was a hostile review's reproduction: deep nesting, DynamoDB sets and
binaries, items at the 400 KB limit, items inserted with a status.
"""

import json
import logging
import os

import boto3

import pytest

from devstack.sendgrid import Scripted
from handlers import dynamo, sender, sender_item
from handlers.hookspecs import hookimpl
from handlers.item_size import item_size
from handlers.sender_item import OUTCOME_ROOM
from tests.sender_support import alice, items
from tests.support import inserted, put_item, stream_record

# moto refuses an item over 405,000 bytes (its own reading of DynamoDB's limit, strings counted as
# the Developer Guide counts them): the boundary tests hold the sender to moto's limit.
MOTO_MAX_ITEM_BYTES = 405_000


def handled(item: dict, plugins) -> dict:
    """Insert ``item``, hand its record to the sender (nothing may be reported), return the stored item."""
    assert sender.handle(inserted(item), plugins) == {"batchItemFailures": []}
    return items()[item["id"]]


def assert_rejected_before_any_claim(stored: dict, sendgrid, field: str) -> None:
    assert stored["status"] == "rejected" and field in stored["error"], stored.get("error")
    assert "claimedAt" not in stored and "attempts" not in stored
    assert sendgrid.requests == 0


@pytest.mark.parametrize("name", ["to", "templateData"])
def test_json_nested_20000_deep_is_rejected_before_the_claim(stack, sendgrid, name):
    deep = "[" * 20_000 + "]" * 20_000 if name == "to" else '{"k": ' + "[" * 20_000 + "]" * 20_000 + "}"
    stored = handled(alice(**{name: deep, "templateId": "d-1"}), stack())
    assert_rejected_before_any_claim(stored, sendgrid, f"'{name}' is nested deeper than 32 levels")


@pytest.mark.parametrize("changes, field", [
    ({"templateId": "d-1", "templateData": {"tags": {"news", "weekly"}}}, "'templateData.tags' is a set"),
    ({"templateId": "d-1", "templateData": {"logo": b"\x89PNG"}}, "'templateData.logo' is a binary value"),
    ({"templateId": "d-1", "templateData": {"n": {1, 2}}}, "'templateData.n' is a set"),
    ({"to": {"alice@example.com"}}, "'to' is a set"),
    ({"subject": 42}, "'subject' is missing or not a non-empty string"),
    ({"from": 7}, "'from' must be an object"),
    ({"to": [{"email": 5}]}, "'to[0].email' is not an e-mail address"),
    ({"customArgs": {"n": 1}}, "'customArgs.n' must be a string"),
])
def test_a_value_of_the_wrong_type_is_rejected_naming_the_field_not_failed(stack, sendgrid, changes, field):
    stored = handled(alice(**changes), stack())
    assert_rejected_before_any_claim(stored, sendgrid, field)
    assert "@" not in stored["error"]


def test_an_image_the_deserializer_cannot_read_is_rejected_not_retried(stack, sendgrid):
    plugins = stack()
    put_item("TABLE_MAIL_SENDER", alice())
    record = stream_record(alice())
    record["dynamodb"]["NewImage"]["subject"] = {"XX": "no such type"}
    assert sender.handle([record], plugins) == {"batchItemFailures": []}
    stored = items()["m1"]
    assert stored["status"] == "rejected" and stored["error"].startswith("the item cannot be read: ")


@pytest.mark.parametrize("status", ["failed", "sent", "sending", "queued", "", 0, False])
def test_an_item_inserted_with_any_status_is_left_alone(stack, sendgrid, status):
    inserted_item = alice(status=status)
    assert handled(inserted_item, stack()) == inserted_item
    assert sendgrid.requests == 0


def test_an_item_inserted_with_a_null_status_is_left_alone(stack, sendgrid):
    plugins = stack()
    put_item("TABLE_MAIL_SENDER", alice())
    record = stream_record(alice())
    record["dynamodb"]["NewImage"]["status"] = {"NULL": True}
    assert sender.handle([record], plugins) == {"batchItemFailures": []}
    assert sendgrid.requests == 0 and "status" not in items()["m1"]


# --- DynamoDB's item size limit ---------------------------------------------------------------------

def padded(size: int, **extra) -> dict:
    """alice's item grown by a ``padding`` string to exactly ``size`` bytes (DynamoDB's count)."""
    item = alice(**extra)
    padding = size - item_size(dynamo.serialize(item)) - item_size({"padding": {"S": ""}})
    item["padding"] = "x" * padding
    assert item_size(dynamo.serialize(item)) == size
    return item


@pytest.fixture
def moto_limit(monkeypatch):
    monkeypatch.setattr(sender_item, "MAX_ITEM_BYTES", MOTO_MAX_ITEM_BYTES)
    return MOTO_MAX_ITEM_BYTES


def test_the_largest_item_sent_takes_its_claim_and_its_largest_outcome(stack, sendgrid, moto_limit):
    """At the limit, the outcome with the longest error fits: SendGrid's 400 quoting 2,000 characters."""
    plugins = stack()
    largest = moto_limit - OUTCOME_ROOM
    sendgrid.script.append(Scripted(400, body={"errors": [{"message": "y" * 2000, "field": "content"}]}))
    stored = handled(padded(largest, id="big"), plugins)
    assert (stored["status"], stored["attempts"], sendgrid.requests) == ("rejected", 1, 1)
    assert stored["error"].startswith("SendGrid 400: yyy") and len(stored["error"].encode()) <= 500

    stored = handled(padded(largest, id="sent"), plugins)
    assert (stored["status"], stored["messageId"]) == ("sent", sendgrid.accepted[0].message_id)


def test_one_byte_more_is_rejected_before_the_claim_with_its_size(stack, sendgrid, moto_limit):
    size = moto_limit - OUTCOME_ROOM + 1
    stored = handled(padded(size), stack())
    assert_rejected_before_any_claim(stored, sendgrid, f"item too large: {size} bytes")


@pytest.mark.parametrize("room, outcome", [
    (40, {"status": "rejected"}),  # no room for the error: the status alone
    (0, None),                     # not even for the status: left alone (and logged)
])
def test_an_item_at_the_limit_gets_the_outcome_that_fits(stack, sendgrid, moto_limit, caplog, room, outcome):
    item = padded(moto_limit - room)
    stored = handled(item, stack())
    assert {k: v for k, v in stored.items() if k not in item} == (outcome or {})
    assert sendgrid.requests == 0
    if outcome is None:
        assert "item too large for any outcome" in caplog.text


class Hostile:
    """A sender plugin: drops bob (with a ``reason``), fails naming carol on the subject 'boom', deletes
    the item on 'delete', and its follow-up fails naming the first recipient."""

    def __init__(self, reason="bounced"):
        self.reason = reason

    @hookimpl
    def before_send(self, mail):
        if mail.subject == "boom":
            raise KeyError("carol@example.com")
        for address in mail.recipients:
            if address.email == "bob@example.com":
                mail.drop(address.email, self.reason)
        if mail.subject == "delete":
            boto3.client("dynamodb").delete_item(TableName=os.environ["TABLE_MAIL_SENDER"], Key={"id": {"S": mail.id}})

    @hookimpl
    def after_send(self, mail, message_id):
        raise ValueError(f"no follow-up for {mail.to[0].email}")


def test_a_suppressed_list_without_room_is_left_out_and_said_so(stack, sendgrid, moto_limit):
    plugins = stack()
    plugins.pm.register(Hostile(reason="r" * 2000))
    item = padded(moto_limit - OUTCOME_ROOM, cc=json.dumps([{"email": "bob@example.com"}]))
    stored = handled(item, plugins)
    [accepted] = sendgrid.accepted
    assert (stored["status"], stored["messageId"]) == ("sent", accepted.message_id) and "suppressed" not in stored
    assert stored["error"] == "not written, no room on the item: suppressed"


def test_nothing_the_sender_logs_names_an_address(stack, sendgrid, caplog):
    caplog.set_level(logging.DEBUG, logger="handlers")
    plugins = stack()
    plugins.pm.register(Hostile())
    sender.handle(inserted(alice("dropped", cc=[{"email": "bob@example.com"}])), plugins)
    sender.handle(inserted(alice("failed", subject="boom")), plugins)
    sender.handle(inserted(alice("deleted", subject="delete", cc=[{"email": "bob@example.com"}])), plugins)
    sender.handle(inserted(alice("invalid", bcc=[{"email": "ALICE@example.com"}])), plugins)
    sendgrid.script.append(Scripted(400, body={"errors": [{"message": "dave@example.com is blocked"}]}))
    sender.handle(inserted(alice("refused")), plugins)

    stored = items()
    assert stored["dropped"]["suppressed"] == {"bob@example.com": "bounced"}  # the item says who; logs do not
    assert '"suppressed": 1, "suppressedReasons": {"bounced": 1}' in caplog.text
    assert stored["failed"]["error"] == "KeyError: '<address>'"
    assert stored["refused"]["error"] == "SendGrid 400: <address> is blocked"
    assert [i["status"] for i in stored.values()].count("rejected") == 2
    assert "deleted" not in stored and "item deleted before its outcome was written" in caplog.text
    assert "an after_send hook failed" in caplog.text and "no follow-up for <address>" in caplog.text
    assert "@example.com" not in caplog.text
