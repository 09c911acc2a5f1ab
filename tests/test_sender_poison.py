"""Poison items: whatever an inserted item holds, the sender ends it with an outcome, never ``sending``.

Each case was a hostile review's reproduction: deep nesting, DynamoDB sets and
binaries, items inserted with a status.
"""

import pytest

from handlers import sender
from tests.sender_support import alice, items
from tests.support import inserted, put_item, stream_record


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
