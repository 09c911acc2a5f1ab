"""Failures injected at each step after the claim, and a clock running out: never an item left ``sending``
when an outcome can be written, never an answer after the invocation's end.
"""

import threading

import pytest

from devstack.sendgrid import Scripted
from handlers import sender, sendgrid_api
from handlers.hookspecs import hookimpl
from handlers.mail import Mail
from tests.sender_support import Context, FailingWrites, alice, items, join_sender_threads
from tests.support import inserted


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(sendgrid_api, "BASE_DELAY", 0.01)


def reported(records: list[dict], *indexes: int) -> dict:
    return {"batchItemFailures": [{"itemIdentifier": records[i]["dynamodb"]["SequenceNumber"]} for i in indexes]}


# --- an error at each step after the claim ends 'failed', and the retry sends ---------------------------

def raise_(exc):
    def fail(*_, **__):
        raise exc
    return fail


@pytest.mark.parametrize("target, exc, error", [
    ((Mail, "payload"), RecursionError("maximum recursion depth exceeded"),
     "RecursionError: maximum recursion depth exceeded"),
    ((sendgrid_api, "send"), TypeError("Object of type set is not JSON serializable"),
     "TypeError: Object of type set is not JSON serializable"),
    ((sendgrid_api.api_key, "api_key"), MemoryError(), "MemoryError"),
    ((Mail, "refusal"), KeyError("carol@example.com"), "KeyError: '<address>'"),
])
def test_an_unexpected_error_after_the_claim_ends_failed_and_the_retry_sends(stack, sendgrid, monkeypatch,
                                                                            target, exc, error):
    plugins = stack()
    records = inserted(alice())
    with monkeypatch.context() as patched:
        patched.setattr(*target, raise_(exc))
        assert sender.handle(records, plugins) == reported(records, 0)
    item = items()["m1"]
    assert (item["status"], item["error"]) == ("failed", error)

    assert sender.handle(records, plugins) == reported(records)
    item = items()["m1"]
    assert (item["status"], item["attempts"], len(sendgrid.accepted)) == ("sent", 2, 1) and "error" not in item


# --- the outcome write fails ----------------------------------------------------------------------------

@pytest.mark.parametrize("status, script", [("failed", 500), ("rejected", 400), ("sent", 202)])
def test_an_outcome_refused_once_is_written_again_as_its_bare_status(stack, sendgrid, monkeypatch, status, script):
    monkeypatch.setattr(sendgrid_api, "ATTEMPTS", 1)
    plugins = stack()
    writes = FailingWrites()
    writes.fail(status)
    sendgrid.script.append(Scripted(script))
    records = inserted(alice())
    assert sender.handle(records, plugins) == reported(records, *([0] if status == "failed" else []))
    item = items()["m1"]
    assert item["status"] == status and writes.refused == [status]
    assert "the full outcome was not written: ClientError" in item["error"] and "injected" in item["error"]
    if status == "sent":
        assert item["messageId"] == sendgrid.accepted[0].message_id


def test_when_not_even_failed_can_be_written_the_record_is_reported_and_never_resent(stack, sendgrid, caplog):
    class Failing:
        @hookimpl
        def before_send(self, mail):
            raise ConnectionError("suppression list unreachable")

    plugins = stack()
    hook = Failing()
    plugins.pm.register(hook)
    writes = FailingWrites()
    writes.fail("failed", times=2)
    records = inserted(alice())
    assert sender.handle(records, plugins) == reported(records, 0)
    assert items()["m1"]["status"] == "sending" and writes.refused == ["failed", "failed"]
    assert "the 'failed' outcome was not written: ClientError" in caplog.text
    assert "nor its bare status: ClientError" in caplog.text

    plugins.pm.unregister(hook)  # Lambda's retry: the item is 'sending', its fate unknown: not sent
    assert sender.handle(records, plugins) == reported(records, 0)
    assert sendgrid.requests == 0 and "in flight elsewhere, or its sender died mid-send" in caplog.text


def test_a_sent_mail_whose_outcome_cannot_be_written_is_reported_never_failed_or_resent(stack, sendgrid):
    class Follows:
        sent = []

        @hookimpl
        def after_send(self, mail, message_id):
            self.sent.append(message_id)

    plugins = stack()
    follows = Follows()
    plugins.pm.register(follows)
    FailingWrites().fail("sent", times=2)
    records = inserted(alice())
    assert sender.handle(records, plugins) == reported(records, 0)
    assert sender.handle(records, plugins) == reported(records, 0)
    assert items()["m1"]["status"] == "sending" and len(sendgrid.accepted) == 1
    assert follows.sent == [sendgrid.accepted[0].message_id]  # the after_send hooks ran all the same


@pytest.mark.parametrize("status, item", [("sending", alice()), ("rejected", alice(subject=None))])
def test_a_claim_or_rejection_dynamodb_refuses_leaves_the_item_untouched_for_the_retry(stack, sendgrid, status, item):
    plugins = stack()
    FailingWrites().fail(status)
    records = inserted({k: v for k, v in item.items() if v is not None})
    assert sender.handle(records, plugins) == reported(records, 0)
    assert "status" not in items()["m1"] and sendgrid.requests == 0

    assert sender.handle(records, plugins) == reported(records)
    assert items()["m1"]["status"] == ("sent" if status == "sending" else "rejected")


# --- the time budget ------------------------------------------------------------------------------------

def test_records_without_time_for_one_attempt_are_reported_and_not_claimed(stack, sendgrid):
    plugins = stack()
    records = inserted(alice("m1"), alice("m2"), alice("m3"))
    assert sender.handle(records, plugins, Context(1.5)) == reported(records, 0, 1, 2)
    assert sendgrid.requests == 0 and all("status" not in i for i in items().values())


class Slow:
    """A sender plugin that holds the mail with subject 'slow' until released (or ``seconds`` pass)."""

    def __init__(self, seconds: float | None = None):
        self.seconds = seconds
        self.release = threading.Event()

    @hookimpl
    def before_send(self, mail):
        if mail.subject == "slow":
            self.release.wait(self.seconds)


def test_a_record_queued_behind_a_slow_one_is_not_started_late(stack, sendgrid, monkeypatch):
    monkeypatch.setattr(sendgrid_api, "CONCURRENCY", 1)  # one worker: m2 waits for m1
    plugins = stack()
    plugins.pm.register(Slow(seconds=1.0))
    records = inserted(alice("m1", subject="slow"), alice("m2"))
    # 3.5 s: sends end at 1.75 s; m2 could start at 1.0 s, with less than one attempt's 1 s left
    assert sender.handle(records, plugins, Context(3.5)) == reported(records, 1)
    stored = items()
    assert stored["m1"]["status"] == "sent" and "status" not in stored["m2"]


def test_the_answer_comes_before_the_invocation_ends_whatever_is_still_running(stack, sendgrid, caplog):
    plugins = stack()
    slow = Slow()
    plugins.pm.register(slow)
    records = inserted(alice("m1"), alice("m2", subject="slow"), alice("m3"))
    context = Context(2.5)
    try:
        assert sender.handle(records, plugins, context) == reported(records, 1)
        assert context.get_remaining_time_in_millis() > 0
        assert "records unfinished when the invocation had to answer" in caplog.text and '"ids": ["m2"]' in caplog.text
    finally:
        slow.release.set()
        join_sender_threads()
    stored = items()
    assert (stored["m1"]["status"], stored["m3"]["status"]) == ("sent", "sent")
    # The thread left running ends its item when it wakes up: past the deadline, 'failed', not 'sending'.
    assert stored["m2"]["status"] == "failed" and "no time left" in stored["m2"]["error"]
    assert len(sendgrid.accepted) == 2
