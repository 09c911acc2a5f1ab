"""Duplicates reach no sink twice; failures are answered 5xx and the retry finishes the work.

Every test runs in both ingest modes: ``direct`` (the answer SendGrid gets) and ``queue`` (what the queue
consumer makes of a queued post: 503 leaves the message for a retry)."""

import threading
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from handlers import delivery, dynamo
from handlers.manager import Sink
from tests.support import scan
from tests.webhook_support import Recorder, bounce, endpoint_either_ingest  # noqa: F401 (fixture: both modes)


def test_a_reposted_batch_reaches_no_sink_twice(endpoint):
    notify, store = Recorder(), Recorder("store", idempotent=True)
    web = endpoint("bounce,dropped,dynamodb", notify.sink, store.sink)
    batch = [bounce(i) for i in range(30)]
    assert web.post(batch)[0] == 200
    rows = scan("TABLE_BOUNCE")
    status, counts = web.post(batch[10:] + batch[:10])  # SendGrid's copies need not be in order
    assert status == 200 and (counts["accepted"], counts["duplicates"]) == (0, 30)
    assert notify.counts() == store.counts() == Counter({e["sg_event_id"]: 1 for e in batch})
    assert sorted(scan("TABLE_BOUNCE"), key=lambda r: r["fullMessageId"]) == sorted(
        rows, key=lambda r: r["fullMessageId"])


def test_copies_within_a_batch_and_events_without_an_id_are_delivered_once(endpoint):
    notify = Recorder()
    web = endpoint("bounce,dynamodb", notify.sink)
    no_id = {k: v for k, v in bounce(7).items() if k != "sg_event_id"}
    status, counts = web.post([bounce(1), bounce(1), no_id, dict(no_id), bounce(2)])
    assert status == 200 and (counts["accepted"], counts["duplicates"]) == (3, 2)
    assert web.post([no_id])[1]["duplicates"] == 1
    assert sorted(notify.counts().values()) == [1, 1, 1]
    assert any(r["eventId"].startswith("sha256:") for r in notify.seen)


def test_a_failing_sink_gets_a_503_and_the_retry_delivers_each_event_once(endpoint):
    notify, flaky = Recorder(), Recorder("flaky", fail=1)
    web = endpoint("bounce,dynamodb", notify.sink, flaky.sink)
    batch = [bounce(i) for i in range(5)]
    assert web.post(batch)[0] == 503
    assert len(notify.seen) == 5 and flaky.seen == []
    assert web.post(batch)[0] == 200
    assert web.post(batch)[0] == 200
    assert notify.counts() == flaky.counts() == Counter({e["sg_event_id"]: 1 for e in batch})


def test_records_a_sink_stored_before_failing_are_not_sent_again(endpoint):
    sent = []

    def publish(records):  # stores two records per call, then fails
        sent.extend(records[:2])
        raise delivery.PartiallyWritten([r["eventId"] for r in records[:2]])

    web = endpoint("bounce", Sink("sns", publish, False, "tests"))
    batch = [bounce(i) for i in range(5)]
    answers = [web.post(batch)[0] for _ in range(5)]
    assert answers == [503, 503, 503, 200, 200]
    assert Counter(r["eventId"] for r in sent) == Counter({e["sg_event_id"]: 1 for e in batch})


def test_two_deliveries_of_the_same_batch_at_once_notify_once(endpoint):
    """The first delivery holds its claims while the second runs from start to end."""
    notify = Recorder(block=threading.Event())
    store = Recorder("store", idempotent=True)
    web = endpoint("bounce,dynamodb", notify.sink, store.sink)
    batch = [bounce(i) for i in range(10)]
    first = {}
    thread = threading.Thread(target=lambda: first.update(answer=web.post(batch)))
    thread.start()
    assert notify.entered.wait(10)
    second_status, second = web.post(batch)
    notify.block.set()
    thread.join(10)
    assert first["answer"][0] == 200
    assert second_status == 503 and "another request" in second["error"]
    assert web.post(batch)[1]["duplicates"] == 10  # SendGrid's retry of the second: nothing left to do
    assert notify.counts() == Counter({e["sg_event_id"]: 1 for e in batch})


def test_a_claim_left_by_a_delivery_that_died_is_taken_over_after_the_lease(endpoint, monkeypatch):
    clock = [1_800_000_000.0]
    monkeypatch.setattr(delivery, "now", lambda: clock[0])
    dying = Recorder("sns", block=threading.Event())
    web = endpoint("bounce", dying.sink)
    batch = [bounce(1)]
    thread = threading.Thread(target=web.post, args=(batch,), daemon=True)
    thread.start()
    assert dying.entered.wait(10)  # the first delivery holds the claim and never returns
    web.plugins.sinks[0] = (survivor := Recorder("sns")).sink
    assert web.post(batch)[0] == 503
    clock[0] += delivery.LEASE_SECONDS + 1
    assert web.post(batch)[0] == 200
    assert survivor.counts() == Counter({"ev-msg-1": 1})
    dying.block.set()
    thread.join(10)


def fail_once(when):
    """Make the first DynamoDB call for which ``when(operation, params)`` holds raise (retries exhausted)."""
    state = {"armed": True}

    def hook(model, params, **_):
        if state["armed"] and when(model.name, params):
            state["armed"] = False
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "x"}},
                              model.name)
    dynamo.client().meta.events.register("before-parameter-build.dynamodb", hook)
    return state


def _marks(params, prefix):
    """The puts of a BatchWriteItem or a TransactWriteItems whose ``id`` starts with ``prefix``."""
    puts = [r.get("PutRequest", {}) for items in params.get("RequestItems", {}).values() for r in items]
    puts += [action.get("Put", {}) for action in params.get("TransactItems", [])]
    return [put for put in puts if put.get("Item", {}).get("id", {}).get("S", "").startswith(prefix)]


CLAIM = ("the claim", lambda op, params: op == "TransactWriteItems" and _marks(params, "sink:"), 503)
SETTLE = ("marking the claims done", lambda op, params: op == "BatchWriteItem" and _marks(params, "sink:"), 200)
DONE = ("marking the events done", lambda op, params: op == "TransactWriteItems" and _marks(params, "event:"), 503)


@pytest.mark.parametrize("step, when, first_answer", [CLAIM, SETTLE, DONE], ids=lambda v: v if isinstance(v, str) else "")
def test_a_dynamodb_failure_at_any_step_is_answered_and_the_retry_notifies_nobody_twice(endpoint, step, when,
                                                                                        first_answer):
    notify = Recorder()
    web = endpoint("bounce,dynamodb", notify.sink)
    armed = fail_once(when)
    batch = [bounce(i) for i in range(3)]
    assert web.post(batch)[0] == first_answer
    assert not armed["armed"], f"{step} was never attempted"
    assert web.post(batch)[0] == 200
    assert notify.counts() == Counter({e["sg_event_id"]: 1 for e in batch})
    assert len(scan("TABLE_BOUNCE")) == 3
