"""Bad requests are 4xx with nothing written; bad events are kept as rejects; orphans are kept; logs say counts."""

import json
import logging

import pytest

from handlers import reconcile, webhook
from tests.support import put_item, scan
from tests.webhook_support import Calls, bounce, endpoint  # noqa: F401 (fixture)


@pytest.mark.parametrize("body, base64_encoded, status, problem", [
    (b"", False, 400, "empty"),
    (b"\xff\xfe[]", True, 400, "not UTF-8"),
    (b"[{\"email\": ", False, 400, "not JSON"),
    (b"[NaN]", False, 400, "not JSON"),
    (b"{\"email\": \"a@b.c\"}", False, 400, "not a JSON array"),
    (b"[]", False, 400, "empty array"),
    (b"[" * 100_000 + b"]" * 100_000, False, 400, "nested too deeply"),
    (b"[" + b"1," * (webhook.MAX_BODY_BYTES // 2) + b"1]", False, 413, "larger than"),
])
def test_a_signed_body_that_is_not_a_batch_is_4xx_and_writes_nothing(endpoint, body, base64_encoded, status, problem):
    web = endpoint()
    calls = Calls()
    answer_status, answer = web.post(body=body, base64_encoded=base64_encoded)
    assert (answer_status, problem in answer["error"]) == (status, True), answer
    assert calls.writes == 0


def test_a_body_that_is_not_base64_when_it_says_so_is_400(endpoint):
    web = endpoint()
    event_body = "not base64 at all"
    from tests.support import proxy_event
    event = proxy_event(b"", {}, base64_encoded=True)
    event["body"] = event_body
    answer = webhook.handle(event, lambda: web.plugins)
    assert answer["statusCode"] == 400 and "base64" in json.loads(answer["body"])["error"]


BAD_EVENTS = {
    "no email": {"event": "bounce", "timestamp": 1764400000, "sg_event_id": "x1"},
    "no event": {"email": "a@example.com", "timestamp": 1764400000},
    "timestamp": {"email": "a@example.com", "event": "bounce", "timestamp": "soon"},
    "not an object": ["bounce", "a@example.com"],
    "number id": {**bounce(90), "sg_message_id": 12345},
    "huge number": {**bounce(91), "status": 10 ** 40},
    "lone surrogate": {**bounce(92), "reason": "\ud800"},
    "too deep": {**bounce(93), "custom": json.loads("[" * 40 + "]" * 40)},
}


def test_a_bad_event_is_kept_as_a_reject_and_the_rest_of_the_batch_goes_on(endpoint):
    web = endpoint()
    good = [bounce(1), bounce(2)]
    status, counts = web.post([good[0], *BAD_EVENTS.values(), good[1]])
    assert status == 200
    assert (counts["accepted"], counts["rejected"]) == (2, len(BAD_EVENTS))
    assert sorted(r["fullMessageId"] for r in scan("TABLE_BOUNCE")) == sorted(e["sg_message_id"] for e in good)

    rejects = scan("TABLE_REJECTS")
    assert len(rejects) == len(BAD_EVENTS)
    reasons = " | ".join(r["reason"] for r in rejects)
    for word in ("'email'", "'event'", "'timestamp'", "not an object", "'sg_message_id'", "38 digits",
                 "not valid Unicode", "nested deeper"):
        assert word in reasons
    no_email = next(r for r in rejects if "'email'" in r["reason"])
    assert json.loads(no_email["raw"]) == BAD_EVENTS["no email"]


def test_reposting_a_batch_with_rejects_leaves_the_same_rejects(endpoint):
    web = endpoint()
    batch = [bounce(1), *BAD_EVENTS.values()]
    web.post(batch)
    first = sorted(scan("TABLE_REJECTS"), key=lambda r: r["eventId"])
    web.post(batch)
    assert sorted(scan("TABLE_REJECTS"), key=lambda r: r["eventId"]) == first


def test_a_huge_rejected_event_is_kept_cut_short(endpoint):
    web = endpoint()
    big = {"email": "a@example.com", "event": "bounce", "timestamp": "x" * (reconcile.MAX_EVENT_BYTES + 10)}
    status, counts = web.post([big])
    assert (status, counts["rejected"]) == (200, 1)
    [row] = scan("TABLE_REJECTS")
    assert "larger than" in row["reason"]
    assert len(row["raw"]) == reconcile.MAX_REJECT_CHARS and row["rawLength"] > reconcile.MAX_EVENT_BYTES


def test_events_of_types_not_enabled_are_ignored_and_counted(endpoint):
    web = endpoint()
    opened = {"email": "a@example.com", "event": "open", "timestamp": 1764400000, "sg_event_id": "o1"}
    status, counts = web.post([bounce(1), opened, {**opened, "sg_event_id": "o2"}])
    assert status == 200 and (counts["accepted"], counts["ignored"]) == (1, 2)
    assert scan("TABLE_REJECTS") == []


def test_events_of_types_not_enabled_skip_the_storage_checks(endpoint, monkeypatch):
    web = endpoint()
    checked = []
    monkeypatch.setattr(reconcile, "unstorable", lambda event: checked.append(event["event"]))
    odd = {"email": "a@example.com", "event": "open", "timestamp": 1764400000, "huge": 10 ** 40}
    status, counts = web.post([bounce(1), odd])
    assert status == 200 and (counts["ignored"], counts["rejected"]) == (1, 0)
    assert checked == ["bounce"]
    assert scan("TABLE_REJECTS") == []


def test_orphans_are_stored_unmatched_never_dropped(endpoint):
    web = endpoint()
    put_item("TABLE_SENT_LOG", {"messageId": "known", "from": {"email": "s@example.com", "name": "S"},
                                "to": [{"email": "user1@bounce.test", "name": "U"}], "subject": "Hi"})
    matched = bounce(1, message="known")
    unknown = bounce(2, message="never-sent")
    no_id = {k: v for k, v in bounce(3).items() if k != "sg_message_id"}
    status, counts = web.post([matched, unknown, no_id])
    assert status == 200 and (counts["accepted"], counts["orphans"]) == (3, 2)
    rows = {r["fullMessageId"]: r for r in scan("TABLE_BOUNCE")}
    assert rows["known.filter-1"]["matched"] is True and rows["known.filter-1"]["subject"] == "Hi"
    assert rows["never-sent.filter-2"]["matched"] is False
    assert rows["never-sent.filter-2"]["reason"] == "550 no such user"
    [no_id_row] = [r for k, r in rows.items() if k.startswith("unknown:")]
    assert no_id_row["matched"] is False and no_id_row["toEmail"] == "user3@bounce.test"


def test_one_json_log_line_per_batch_with_counts_and_no_addresses_or_secrets(endpoint, caplog):
    web = endpoint()
    batch = [bounce(i) for i in range(5)] + [{"event": "bounce", "timestamp": 1, "email": ""}]
    with caplog.at_level(logging.INFO):
        status, _ = web.post(batch)
        web.post(batch)
    assert status == 200
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "handlers.webhook"]
    assert [line["message"] for line in lines] == ["webhook batch", "webhook batch"]
    assert {k: lines[0][k] for k in ("received", "accepted", "duplicates", "ignored", "rejected", "orphans")} == {
        "received": 6, "accepted": 5, "duplicates": 0, "ignored": 0, "rejected": 1, "orphans": 5}
    assert (lines[1]["accepted"], lines[1]["duplicates"]) == (0, 5)
    text = caplog.text
    assert "@" not in text and web.key.public_key_b64[:40] not in text


def test_a_refused_request_is_logged_without_its_body(endpoint, caplog):
    web = endpoint()
    with caplog.at_level(logging.INFO):
        web.post([bounce(1)], sign=False)
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "handlers.webhook"]
    assert line["status"] == 403 and "@" not in caplog.text


@pytest.mark.parametrize("timestamp", ["-0.5", "-1", "1764400000.5", '"-5"', '"1e9"', "true", "10e11"])
def test_a_timestamp_that_is_not_whole_seconds_since_1970_is_rejected_not_rounded(endpoint, timestamp):
    web = endpoint()
    event = json.dumps({**bounce(1), "timestamp": "T"}).replace('"T"', timestamp)  # the JSON as SendGrid sent it
    status, counts = web.post(body=f"[{event}]".encode())
    assert status == 200 and (counts["accepted"], counts["rejected"]) == (0, 1)
    [row] = scan("TABLE_REJECTS")
    assert row["reason"] == "event's 'timestamp' is not a whole number of seconds from 0 to 100000000000"
    assert scan("TABLE_BOUNCE") == []


@pytest.mark.parametrize("timestamp, stored", [(0, 0), (1764400000.0, 1764400000), (" 1764400000 ", 1764400000)])
def test_whole_seconds_are_stored_exactly(endpoint, timestamp, stored):
    web = endpoint()
    assert web.post([{**bounce(1), "timestamp": timestamp}])[1]["accepted"] == 1
    assert [r["timestamp"] for r in scan("TABLE_BOUNCE")] == [stored]


def test_reject_reasons_and_ignored_types_in_the_log_carry_no_value(endpoint, stack, caplog):
    web = endpoint()

    def fields(event):
        raise ValueError(f"cannot read {event['email']}")  # a plugin whose error quotes the address

    from handlers.manager import EventType
    web.plugins.event_types["dropped"] = EventType("dropped", fields, "tests")
    batch = [{**bounce(1), "timestamp": "at carol@example.com"},
             {**bounce(2), "event": "dropped", "email": "dave@example.com"},
             {**bounce(3), "event": "erin@example.com"}]
    with caplog.at_level(logging.INFO):
        status, counts = web.post(batch)
    assert status == 200 and (counts["rejected"], counts["ignored"]) == (2, 1)
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "handlers.webhook"]
    assert line["ignoredTypes"] == {"(other)": 1}
    assert sorted(line["rejectReasons"]) == ["dropped fields: ValueError",
                                             "event's 'timestamp' is not a whole number of seconds from 0 to "
                                             "100000000000"]
    assert "@" not in caplog.text
    detail = {r["reason"]: r.get("detail") for r in scan("TABLE_REJECTS")}
    assert detail["dropped fields: ValueError"] == "cannot read dave@example.com"  # kept for the operator


def test_a_503_is_logged_with_what_failed_and_no_address(endpoint, caplog):
    from handlers.manager import Sink

    def down(records):
        raise RuntimeError(f"queue full for {records[0]['email']}")

    web = endpoint("bounce", Sink("down", down, True, "tests"))
    with caplog.at_level(logging.INFO):
        assert web.post([bounce(1)])[0] == 503
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "handlers.webhook"]
    assert line["error"] == "RuntimeError: queue full for <address>" and "@" not in caplog.text
