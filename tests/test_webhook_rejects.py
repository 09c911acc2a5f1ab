"""An event a sink can never store is a reject, not a jammed batch: the rest is stored, 2xx, and a
retry changes nothing."""

import json
import logging
from collections import Counter

from botocore.exceptions import ClientError

from handlers import delivery, dynamo
from handlers.manager import Sink
from tests.support import scan
from tests.webhook_support import Faults, Poison, Recorder, bounce, endpoint  # noqa: F401 (fixture)

LONG_EMAIL = "u" * 2100 + "@bounce.test"  # 2112 bytes: a fine JSON string, too long for an index key


def rejects_by_sink() -> dict:
    return {r.get("sink"): r for r in scan("TABLE_REJECTS")}


def test_an_address_too_long_for_the_suppression_index_is_rejected_and_the_batch_stored(endpoint, caplog):
    web = endpoint("bounce,dropped,dynamodb,suppression")
    batch = [bounce(1), bounce(2, email=LONG_EMAIL), bounce(3)]
    with caplog.at_level(logging.INFO):
        status, counts = web.post(batch)
    assert status == 200 and (counts["accepted"], counts["rejected"]) == (2, 1)
    assert sorted(r["fullMessageId"] for r in scan("TABLE_BOUNCE")) == ["msg.filter-1", "msg.filter-3"]
    [row] = scan("TABLE_REJECTS")
    assert row["sink"] == "dynamodb" and row["eventId"].startswith("dynamodb:sha256:")
    assert row["reason"] == "dynamodb: 'address' (partition key of index byAddress) is 2112 bytes, over DynamoDB's 2048"
    assert json.loads(row["raw"]) == batch[1]
    assert "u" * 20 not in caplog.text  # the log names the limit, not the address

    assert web.post(batch)[1]["duplicates"] == 3  # marked processed: a retry changes nothing
    assert scan("TABLE_REJECTS") == [row]


def test_an_item_only_dynamodb_refuses_is_isolated_from_its_batch(endpoint, caplog):
    web = endpoint("bounce,dropped,dynamodb")
    poison = Poison()
    batch = [bounce(i, message=f"m{i}") for i in range(30)]
    batch[17]["reason"] = "POISON"
    with caplog.at_level(logging.INFO):
        status, counts = web.post(batch)
    assert status == 200 and (counts["accepted"], counts["rejected"]) == (29, 1)
    assert len(scan("TABLE_BOUNCE")) == 29 and poison.refused["dynamodb"] == 1  # the transaction names the item
    [row] = scan("TABLE_REJECTS")
    assert row["reason"] == "dynamodb: DynamoDB refused it (ValidationError)"
    assert "injected" in row["detail"] and "injected" not in caplog.text  # DynamoDB's words: kept, not logged
    assert json.loads(row["raw"]) == batch[17]


def test_a_transient_failure_is_still_a_503(endpoint):
    web = endpoint("bounce,dropped,dynamodb")
    faults = Faults(1.0, kinds=("internal",), lost=0, operations=frozenset({"BatchWriteItem", "TransactWriteItems"}))
    batch = [bounce(1), bounce(2, email=LONG_EMAIL)]
    assert web.post(batch)[0] == 503
    faults.on = False
    assert web.post(batch)[0] == 200


def refusing(name: str, idempotent: bool, bad: set[str], seen: list):
    """A sink storing every record but those of ``bad`` event ids, which it rejects."""
    def write(records):
        seen.extend(r["eventId"] for r in records)
        refused = [r["eventId"] for r in records if r["eventId"] in bad]
        if refused:
            raise delivery.Rejected(refused, "too odd to store")
    return Sink(name, write, idempotent, "tests")


def test_a_sink_rejecting_records_marks_them_done_and_keeps_one_reject_per_sink(endpoint):
    notify_seen, store_seen = [], []
    web = endpoint("bounce", refusing("notify", False, {"ev-msg-1"}, notify_seen),
                   refusing("store", True, {"ev-msg-1", "ev-msg-2"}, store_seen))
    batch = [bounce(i) for i in range(4)]
    status, counts = web.post(batch)
    assert status == 200 and (counts["accepted"], counts["rejected"]) == (2, 2)
    rejects = sorted((r["sink"], json.loads(r["raw"])["sg_event_id"], r["reason"]) for r in scan("TABLE_REJECTS"))
    assert rejects == [("notify", "ev-msg-1", "notify: too odd to store"),
                       ("store", "ev-msg-1", "store: too odd to store"),
                       ("store", "ev-msg-2", "store: too odd to store")]
    assert web.post(batch)[1]["duplicates"] == 4
    assert Counter(notify_seen) == Counter(store_seen) == {e["sg_event_id"]: 1 for e in batch}


def test_rejects_of_a_non_idempotent_sink_are_kept_before_its_claims_are_settled(endpoint, monkeypatch):
    """When the rejects cannot be written, the rejected records' claims are released, not marked done."""
    seen = []
    web = endpoint("bounce", refusing("notify", False, {"ev-msg-1"}, seen))
    batch = [bounce(i) for i in range(3)]
    original = dynamo.batch_put

    def put(table, items, **kwargs):
        if table.name == "rejects":
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, "BatchWriteItem")
        return original(table, items, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(dynamo, "batch_put", put)
        assert web.post(batch)[0] == 503
    assert web.post(batch)[0] == 200
    assert Counter(seen) == {"ev-msg-0": 1, "ev-msg-1": 2, "ev-msg-2": 1}  # only the rejected one again
    assert [json.loads(r["raw"])["sg_event_id"] for r in scan("TABLE_REJECTS")] == ["ev-msg-1"]


def test_a_sink_reporting_rejects_with_a_partial_write_marks_both_done(endpoint):
    calls = []

    def publish(records):
        calls.append([r["eventId"] for r in records])
        if len(calls) == 1:
            raise delivery.PartiallyWritten(["ev-msg-0"], rejected={"ev-msg-1": "too long"})

    web = endpoint("bounce", Sink("sns", publish, False, "tests"))
    batch = [bounce(i) for i in range(3)]
    assert [web.post(batch)[0] for _ in range(2)] == [503, 200]
    assert calls == [["ev-msg-0", "ev-msg-1", "ev-msg-2"], ["ev-msg-2"]]
    [row] = scan("TABLE_REJECTS")
    assert row["reason"] == "sns: too long"
