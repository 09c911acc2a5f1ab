"""handlers.reconcile alone: a mixed batch becomes records, reject rows (as the rejects table stores them)
and ignored counts, with the sent log looked up once per batch."""

import hashlib
import json

from handlers import manager
from handlers.reconcile import MAX_REJECT_CHARS, reconcile, reject
from tests.webhook_support import bounce

SENT = {"messageId": "known", "from": {"email": "s@example.com", "name": "S"},
        "to": [{"email": "user1@bounce.test", "name": "U1"}], "subject": "Hi", "mailId": "m-1"}
BY_MAIL_ID = {"m-3": [{**SENT, "messageId": "known-3", "to": [{"email": "user3@bounce.test", "name": "U3"}]}]}


def test_a_mixed_batch_becomes_records_reject_rows_and_ignored_counts():
    plugins = manager.build("bounce,dropped")
    matched, orphan = bounce(1, message="known"), bounce(2, message="never-sent")
    by_mail_id = {**bounce(3, message="gone"), "mailId": "m-3"}
    no_email = {"event": "bounce", "timestamp": 1764400000}
    too_big = {**bounce(4), "status": 10 ** 40}  # an enabled type DynamoDB cannot store
    huge = {**bounce(5), "reason": "x" * (MAX_REJECT_CHARS + 100), "timestamp": "soon"}
    opened = {"event": "open", "email": "a@example.com", "timestamp": 1, "huge": 10 ** 40}  # not enabled: unchecked
    lookups = []

    def lookup(ids):
        lookups.append(("messageId", ids))
        return {"known": SENT}

    def lookup_by_mail_id(ids):
        lookups.append(("mailId", ids))
        return BY_MAIL_ID

    outcome = reconcile([matched, no_email, orphan, opened, too_big, by_mail_id, huge, ["not", "an", "object"],
                         {**opened, "event": "click"}], plugins.event_types, lookup, lookup_by_mail_id)

    assert lookups == [("messageId", ["known", "never-sent", "gone"]), ("mailId", ["m-3"])]
    records = {r["eventId"]: r for r in outcome.records}
    assert list(records) == ["ev-known-1", "ev-never-sent-2", "ev-gone-3"]
    assert records["ev-known-1"]["matched"] and records["ev-known-1"]["toName"] == "U1"
    assert records["ev-known-1"]["reason"] == "550 no such user"  # the bounce plugin's field
    assert not records["ev-never-sent-2"]["matched"] and records["ev-never-sent-2"]["subject"] is None
    assert (records["ev-gone-3"]["matched"], records["ev-gone-3"]["toName"]) == (True, "U3")

    assert outcome.ignored == {"open": 1, "click": 1}

    rows = {r["reason"]: r for r in outcome.rejects}
    assert len(outcome.rejects) == 4
    assert set(rows) == {"event has no 'email'", "event is a JSON list, not an object",
                         "event holds a number DynamoDB cannot store (over 38 digits or out of range)",
                         "event's 'timestamp' is not a whole number of seconds from 0 to 100000000000"}
    raw = json.dumps(no_email, ensure_ascii=False)
    assert rows["event has no 'email'"] == {
        "eventId": "sha256:" + hashlib.sha256(raw.encode()).hexdigest(), "reason": "event has no 'email'",
        "raw": raw, "rawLength": len(raw), "sink": None, "detail": None,
        "timestamp": no_email["timestamp"]}  # the event's own (replay rejects --since)
    cut = next(r for r in outcome.rejects if "'timestamp'" in r["reason"])
    assert len(cut["raw"]) == MAX_REJECT_CHARS and cut["rawLength"] > MAX_REJECT_CHARS


def test_a_reject_row_of_a_sink_is_keyed_per_sink_and_clipped():
    event = bounce(1)
    row = reject(event, "dynamodb: " + "r" * 2000, detail="d" * 2000, sink="dynamodb")
    assert row["eventId"] == "dynamodb:" + reject(event, "other")["eventId"]
    assert (len(row["reason"]), len(row["detail"]), row["sink"]) == (1000, 1000, "dynamodb")
