"""The sender against the SendGrid stand-in (real HTTP on 127.0.0.1) and moto.

Each test is one of the sender guarantees (docs/architecture.md): INSERT alone sends, at most
once per item, the outcome on the item, transient errors retried and then
reported, hooks that drop, veto and follow up.
"""

import json
import time

import pytest

from devstack.sendgrid import Scripted
from handlers import sender, sendgrid_api
from handlers.hookspecs import hookimpl
from tests.sender_support import alice, items
from tests.support import inserted, put_item, scan, seed_item, stream_record


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    """Backoff waits of milliseconds: the tests count attempts, not seconds."""
    monkeypatch.setattr(sendgrid_api, "BASE_DELAY", 0.01)


def test_insert_sends_once_and_writes_the_outcome_on_the_item(stack, sendgrid, monkeypatch):
    monkeypatch.setenv("SENDGRID_EVENTS_STACK", "dev")
    plugins = stack()
    assert sender.handle(inserted(alice()), plugins) == {"batchItemFailures": []}

    [accepted] = sendgrid.accepted
    assert accepted.payload["custom_args"] == {"mailId": "m1", "stack": "dev"}
    item = items()["m1"]
    assert (item["status"], item["messageId"], item["attempts"]) == ("sent", accepted.message_id, 1)
    assert item["sentAt"] and "error" not in item
    [logged] = scan("TABLE_SENT_LOG")
    assert logged["messageId"] == accepted.message_id and logged["mailId"] == "m1"
    assert logged["from"] == {"email": "sender@example.com", "name": "Sender"}
    assert logged["expiresAt"] > time.time() + 300 * 86400


def test_modify_and_remove_records_never_send(stack, sendgrid):
    plugins = stack()
    item = alice()
    put_item("TABLE_MAIL_SENDER", item)
    edited = {**item, "subject": "edited"}
    records = [stream_record(edited, "MODIFY", old=item), stream_record(item, "REMOVE", old=item)]
    assert sender.handle(records, plugins) == {"batchItemFailures": []}
    assert sendgrid.requests == 0
    assert "status" not in items()["m1"]


def test_the_same_batch_delivered_twice_sends_once(stack, sendgrid):
    plugins = stack()
    records = inserted(alice("m1"), alice("m2"))
    assert sender.handle(records, plugins) == {"batchItemFailures": []}
    assert sender.handle(records + records, plugins) == {"batchItemFailures": []}
    assert sorted(a.payload["custom_args"]["mailId"] for a in sendgrid.accepted) == ["m1", "m2"]
    assert {i["attempts"] for i in items().values()} == {1}


def test_an_item_left_sending_is_reported_and_not_resent(stack, sendgrid, caplog):
    plugins = stack()
    put_item("TABLE_MAIL_SENDER", {**alice(), "status": "sending", "claimedAt": "2026-01-01T00:00:00+00:00"})
    record = stream_record(alice())
    assert sender.handle([record], plugins) == {
        "batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    assert sendgrid.requests == 0 and items()["m1"]["status"] == "sending"
    assert "'sending' since 2026-01-01T00:00:00+00:00" in caplog.text


def test_an_item_deleted_before_sending_is_neither_sent_nor_recreated(stack, sendgrid):
    plugins = stack()
    assert sender.handle([stream_record(alice())], plugins) == {"batchItemFailures": []}
    assert sendgrid.requests == 0 and items() == {}


def test_sendgrid_400_marks_the_item_rejected_with_sendgrids_message(stack, sendgrid):
    plugins = stack()
    sendgrid.script.append(Scripted(400, body={"errors": [
        {"message": "The from address does not match a verified Sender Identity.", "field": "from"}]}))
    assert sender.handle(inserted(alice()), plugins) == {"batchItemFailures": []}
    item = items()["m1"]
    assert item["status"] == "rejected"
    assert item["error"] == "SendGrid 400: The from address does not match a verified Sender Identity. (from)"
    assert sendgrid.requests == 1 and scan("TABLE_SENT_LOG") == []


def test_permanent_500_fails_after_the_retries_and_the_lambda_retry_sends_it(stack, sendgrid, monkeypatch):
    monkeypatch.setattr(sendgrid_api, "ATTEMPTS", 3)
    plugins = stack()
    sendgrid.script.extend(Scripted(500) for _ in range(3))
    records = inserted(alice())
    assert sender.handle(records, plugins) == {
        "batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    item = items()["m1"]
    assert sendgrid.requests == 3 and item["status"] == "failed"
    assert item["error"].startswith("SendGrid 500: scripted 500") and "after 3 attempts" in item["error"]

    # Lambda delivers the record again: the failed item is claimed again and sent.
    assert sender.handle(records, plugins) == {"batchItemFailures": []}
    item = items()["m1"]
    assert (item["status"], item["attempts"], len(sendgrid.accepted)) == ("sent", 2, 1)
    assert "error" not in item


def test_401_is_a_failure_to_retry_later_not_a_rejection(stack, sendgrid, monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong")
    plugins = stack()
    assert len(sender.handle(inserted(alice()), plugins)["batchItemFailures"]) == 1
    item = items()["m1"]
    assert sendgrid.requests == 1 and item["status"] == "failed" and "check the API key" in item["error"]
    assert "SG.wrong" not in item["error"]


@pytest.mark.parametrize("changes, field", [
    ({"from": None}, "'from' is missing"),
    ({"to": '[{"email": "a@example.com"'}, "'to' is not valid JSON"),
    ({"subject": None}, "'subject' is missing"),
    ({"content": None}, "'content' (or 'html') is missing"),
    ({"to": json.dumps([{"email": f"u{i}@example.com"} for i in range(1001)])}, "1001 recipients"),
])
def test_malformed_item_is_rejected_with_a_message_naming_the_field(stack, sendgrid, changes, field):
    plugins = stack()
    item = {k: v for k, v in {**alice(), **changes}.items() if v is not None}
    assert sender.handle(inserted(item), plugins) == {"batchItemFailures": []}
    stored = items()["m1"]
    assert stored["status"] == "rejected" and field in stored["error"]
    assert sendgrid.requests == 0


def test_rich_item_reaches_sendgrid_and_the_sent_log_lists_cc_and_bcc(stack, sendgrid):
    plugins = stack()
    item = alice(cc=[{"email": "carol@example.com"}], bcc=[{"email": "bob@example.com"}],
                 html="<p>hi</p>", categories=["news"], customArgs={"campaign": "c-7"})
    sender.handle(inserted(item), plugins)
    [accepted] = sendgrid.accepted
    assert accepted.payload["personalizations"][0]["bcc"] == [{"email": "bob@example.com"}]
    assert accepted.payload["custom_args"] == {"campaign": "c-7", "mailId": "m1"}
    [logged] = scan("TABLE_SENT_LOG")
    assert (logged["cc"], logged["bcc"]) == ([{"email": "carol@example.com"}], [{"email": "bob@example.com"}])


class Suppress:
    """A sender plugin: drops bob (wherever he is), vetoes subjects with 'SPAM', fails on 'BOOM'."""

    def __init__(self):
        self.sent = []

    @hookimpl
    def before_send(self, mail):
        if "SPAM" in mail.subject:
            mail.veto("looks like spam")
        if "BOOM" in mail.subject:
            raise ConnectionError("suppression list unreachable")
        for address in mail.recipients:
            if address.email.startswith("bob@"):
                mail.drop(address.email, "bounced before")

    @hookimpl
    def after_send(self, mail, message_id):
        self.sent.append((mail.id, message_id))
        raise RuntimeError("after_send failures are only logged")


def test_hooks_drop_veto_and_follow_up_and_their_reasons_land_on_the_item(stack, sendgrid):
    plugins = stack()
    hooks = Suppress()
    plugins.pm.register(hooks)
    dropped = alice("drop", cc=[{"email": "bob@example.com"}])
    vetoed = alice("veto", subject="SPAM offer")
    only_bob = {**seed_item("bob", [("bob@example.com", "Bob")])}
    assert sender.handle(inserted(dropped, vetoed, only_bob), plugins) == {"batchItemFailures": []}

    [accepted] = sendgrid.accepted
    assert "cc" not in accepted.payload["personalizations"][0]
    stored = items()
    assert stored["drop"]["status"] == "sent"
    assert stored["drop"]["suppressed"] == {"bob@example.com": "bounced before"}
    assert (stored["veto"]["status"], stored["veto"]["error"]) == ("rejected", "vetoed: looks like spam")
    assert (stored["bob"]["status"], stored["bob"]["error"]) == ("rejected", "every recipient was dropped")
    assert hooks.sent == [("drop", accepted.message_id)]


def test_a_failing_before_send_hook_is_a_transient_failure(stack, sendgrid):
    plugins = stack()
    plugins.pm.register(Suppress())
    records = inserted(alice("ok"), alice("boom", subject="BOOM"))
    assert sender.handle(records, plugins) == {
        "batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]}
    stored = items()
    assert stored["ok"]["status"] == "sent"
    assert (stored["boom"]["status"], stored["boom"]["error"]) == (
        "failed", "ConnectionError: suppression list unreachable")


def test_every_failed_record_of_a_concurrent_batch_is_reported(stack, sendgrid):
    """Lambda checkpoints at the lowest reported sequence number, whatever order threads finish in."""
    plugins = stack()
    plugins.pm.register(Suppress())
    batch = [alice(f"m{i}", subject="BOOM" if i in (3, 7, 12) else "fine") for i in range(15)]
    records = inserted(*batch)
    sendgrid.latency = 0.02
    failures = sender.handle(records, plugins)["batchItemFailures"]
    assert failures == [{"itemIdentifier": records[i]["dynamodb"]["SequenceNumber"]} for i in (3, 7, 12)]
    assert len(sendgrid.accepted) == 12


def test_twenty_records_are_sent_concurrently(stack, sendgrid):
    plugins = stack()
    records = inserted(*(alice(f"m{i}") for i in range(20)))
    sendgrid.latency = latency = 0.5
    started = time.monotonic()
    assert sender.handle(records, plugins) == {"batchItemFailures": []}
    elapsed = time.monotonic() - started
    assert len(sendgrid.accepted) == 20
    # One after another this takes >= 20 * latency (10 s); concurrently about 1-2 * latency.
    assert elapsed < 20 * latency / 2.5, elapsed
    # Requests answered at the same time (counted by the stand-in, whatever the machine's load: the
    # arrivals' spread was, and a busy machine spreads the claims before them).
    assert sendgrid.most_in_flight >= 3


def test_the_dynamodb_connection_pool_holds_every_sender_thread(aws):
    from handlers import dynamo, sendgrid_api

    assert dynamo.client().meta.config.max_pool_connections >= sendgrid_api.CONCURRENCY


def test_a_sent_log_failure_after_sendgrid_accepted_never_leads_to_a_resend(stack, sendgrid, monkeypatch):
    plugins = stack()
    monkeypatch.setenv("TABLE_SENT_LOG", "no-such-table")
    records = inserted(alice())
    assert sender.handle(records, plugins) == {"batchItemFailures": []}
    assert sender.handle(records, plugins) == {"batchItemFailures": []}
    item = items()["m1"]
    assert len(sendgrid.accepted) == 1 and item["status"] == "sent"
    assert item["messageId"] == sendgrid.accepted[0].message_id
    assert item["error"] == "sent, but the sent-log write failed: ResourceNotFoundException"
