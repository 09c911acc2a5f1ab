"""handlers.sent_log: a row written for a sent mail reads back by message id and by mail id."""

import json
import time

from handlers import sent_log
from handlers.mail import Address, Mail
from tests.support import put_item, scan


def mail(mail_id="m-1"):
    return Mail(id=mail_id, sender=Address("sender@example.com", "Sender"),
                to=[Address("Ann@Example.com", "Ann"), Address("dropped@example.com")],
                bcc=[Address("hidden@example.com", "Hidden")], subject="Hello",
                dropped={"dropped@example.com": "suppressed"})


def test_a_written_row_reads_back_by_message_id_with_the_fields_of_each_recipient(stack, monkeypatch):
    stack()
    monkeypatch.setenv("SENT_LOG_TTL_DAYS", "2")
    sent_log.write(mail(), "msg-1", "2026-01-01T00:00:00+00:00")

    [row] = scan("TABLE_SENT_LOG")
    assert {k: v for k, v in row.items() if k != "expiresAt"} == {
        "messageId": "msg-1", "from": {"email": "sender@example.com", "name": "Sender"},
        "to": [{"email": "Ann@Example.com", "name": "Ann"}],  # the dropped recipient was not sent to
        "bcc": [{"email": "hidden@example.com", "name": "Hidden"}],  # no empty cc
        "subject": "Hello", "mailId": "m-1", "sentAt": "2026-01-01T00:00:00+00:00"}
    assert abs(row["expiresAt"] - (time.time() + 2 * 86400)) < 60

    found = sent_log.by_message_id(["msg-1", "never-sent"])
    assert list(found) == ["msg-1"]
    assert sent_log.fields(found["msg-1"], "ann@example.com") == {
        "fromEmail": "sender@example.com", "fromName": "Sender", "toEmail": "Ann@Example.com", "toName": "Ann",
        "subject": "Hello", "mailId": "m-1"}
    hidden = sent_log.fields(found["msg-1"], "hidden@example.com")
    assert (hidden["toEmail"], hidden["toName"]) == ("hidden@example.com", "Hidden")
    unknown = sent_log.fields(found["msg-1"], "other@example.com")  # not a recipient: the event's address
    assert (unknown["toEmail"], unknown["toName"], unknown["subject"]) == ("other@example.com", None, "Hello")
    assert set(sent_log.fields(None, "ann@example.com").values()) == {None}


def test_the_mail_id_fallback_finds_the_row_that_went_to_the_address(stack, monkeypatch):
    stack()
    monkeypatch.setenv("SENT_LOG_TTL_DAYS", "0")
    first = Mail(id="m-2", sender=Address("sender@example.com"), to=[Address("a@example.com")], subject="A")
    second = Mail(id="m-2", sender=Address("sender@example.com"), to=[Address("b@example.com", "B")], subject="B")
    sent_log.write(first, "msg-a", "2026-01-01T00:00:00+00:00")
    sent_log.write(second, "msg-b", "2026-01-01T00:00:01+00:00")
    assert all("expiresAt" not in row for row in scan("TABLE_SENT_LOG"))  # 0 days: kept

    rows = sent_log.by_mail_id(["m-2", "never-sent"])
    assert len(rows["m-2"]) == 2 and not rows.get("never-sent")
    assert sent_log.sent_to(rows["m-2"], "B@example.com")["messageId"] == "msg-b"
    assert sent_log.sent_to(rows["m-2"], "a@example.com")["messageId"] == "msg-a"
    assert sent_log.sent_to(rows["m-2"], "c@example.com") in rows["m-2"]  # no such recipient: any row of the mail
    assert sent_log.sent_to([], "a@example.com") is None


def test_rows_put_by_hand_with_json_strings_read_the_same(stack):
    stack()
    put_item("TABLE_SENT_LOG", {"messageId": "seeded", "from": json.dumps({"email": "s@example.com", "name": "S"}),
                                "to": json.dumps(["u@example.com"]), "subject": "Seeded"})
    row = sent_log.by_message_id(["seeded"])["seeded"]
    assert sent_log.fields(row, "U@example.com") == {
        "fromEmail": "s@example.com", "fromName": "S", "toEmail": "u@example.com", "toName": None,
        "subject": "Seeded", "mailId": None}
