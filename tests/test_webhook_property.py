"""The whole webhook, under random batches and random faults (hypothesis).

Each example is a batch of valid events, malformed ones and events some sink
can never store (an address too long for the suppression index; a reason
only DynamoDB refuses, ``DDB_POISON``; one only SNS refuses, ``SNS_POISON``:
permanent faults are the items', so they happen on every run), or now and
then a body that is not JSON. It is posted once without faults (the
reference), then, on emptied tables, with DynamoDB and SNS failing at random
the ways they do (throttling, 5xx, unprocessed work, refused or timed-out
connections, lost answers), then again once the faults clear. Always:

- every answer within ``webhook.ANSWER_SECONDS`` (a fake clock: waits and
  timed-out attempts move it);
- 2xx: every storable valid event stored once and every other one in
  ``rejects``; 4xx: nothing written; 503: only when a fault was injected;
- after the faults clear (SendGrid re-posts minutes apart): 200, and the
  same tables as the reference; notifications: once per event, more only for
  the two at-least-once cases the README names (a PublishBatch answer lost;
  claims that could not be settled done, taken over after the lease), once
  more per occurrence.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import delivery, webhook
from plugins import sns
from tests.support import scan
from tests.webhook_support import (KINDS, Calls, FakeClock, Faults, Poison, endpoint,  # noqa: F401 (fixtures)
                                   notifications, notified, sns_entries)

PLUGINS = "bounce,dropped,dynamodb,suppression,history,sns"
DDB_POISON, SNS_POISON = "DDB-POISON", "SNS-POISON"
LONG_EMAIL = "x" * 2100 + "@example.com"
TABLES = ("bounce", "event_history", "rejects", "processed_events")
VOLATILE = {"expiresAt", "claimedAt", "owner"}
MALFORMED = [
    lambda e: {k: v for k, v in e.items() if k != "email"},
    lambda e: {**e, "timestamp": -0.5},
    lambda e: {**e, "sg_message_id": 12345},
    lambda e: ["not", "an", "object"],
]
# kind -> the sinks that reject such an event (None: malformed, the core rejects it)
KIND_REJECTED_BY = {"plain": set(), "long email": {"dynamodb"}, "ddb poison": {"dynamodb", "history"},
                    "sns poison": {"sns"}, "malformed": None}


@st.composite
def batches(draw):
    """[(kind, event)] with copies, in SendGrid's any order; message ids shared by some events."""
    n = draw(st.integers(1, 12))
    items = []
    for i in range(n):
        kind = draw(st.sampled_from(list(KIND_REJECTED_BY)))
        event = {"email": f"user{i}@example.com", "timestamp": 1764400000 + draw(st.integers(0, 5)),
                 "event": draw(st.sampled_from(["bounce", "dropped"])), "type": "bounce", "status": "5.1.1",
                 "reason": "550 no such user", "sg_event_id": f"ev-{i}",
                 "sg_message_id": f"m{draw(st.integers(0, 3))}.filter-{i}"}
        if kind == "long email":
            event["email"] = LONG_EMAIL
        elif kind == "ddb poison":
            event["reason"] = f"550 {DDB_POISON}"
        elif kind == "sns poison":
            event["reason"] = f"550 {SNS_POISON}"
        elif kind == "malformed":
            event = draw(st.sampled_from(MALFORMED))(event)
        items.append((kind, event))
    copies = draw(st.lists(st.sampled_from(items), max_size=3))
    return draw(st.permutations(items + copies))


def rows() -> dict[str, list]:
    return {name: sorted(({k: v for k, v in r.items() if k not in VOLATILE} for r in scan(f"TABLE_{name.upper()}")),
                         key=repr) for name in TABLES}


def empty(plugins) -> None:
    client = boto3.client("dynamodb")
    for name in TABLES:
        table = plugins.tables[name]
        for row in scan(table.env_var):
            client.delete_item(TableName=os.environ[table.env_var],
                               Key={k: {"S": row[k]} for k in table.key_names})


def timed(post, wall: list[float]):
    """``post``, checked to answer within the budget; SendGrid's next post comes 20 minutes later."""
    def run(clock: FakeClock, *args, **kwargs):
        started, real = clock.now, time.perf_counter()
        answer = post(*args, **kwargs)
        seconds = clock.now - started + time.perf_counter() - real
        assert seconds <= webhook.ANSWER_SECONDS, seconds
        wall[0] += 20 * 60
        return answer
    return run


def unsettled(monkeypatch) -> Counter:
    """Counts, per eventId, the deliveries whose claims could not be marked done (README: at least once)."""
    seen, settle = Counter(), delivery._settle

    def spy(sink, records, state, clock, scope):
        try:
            settle(sink, records, state, clock, scope)
        except Exception:
            if state == delivery.DONE:
                seen.update(r["eventId"] for r in records)
            raise
    monkeypatch.setattr(delivery, "_settle", spy)
    return seen


def check_stored(items: list[tuple[str, object]], notices: Counter | None) -> None:
    """After a 2xx: every valid event processed and stored where it can be, every other one a reject;
    each notified once (``notices``; None: not checked)."""
    distinct = {json.dumps(e, sort_keys=True): (kind, e) for kind, e in items}.values()
    stored = rows()
    rejects = Counter((r.get("sink"), r["raw"]) for r in stored["rejects"])
    marks = {r["id"] for r in stored["processed_events"]}
    history = {r["eventId"] for r in stored["event_history"]}
    newest: dict[str, int] = {}
    for kind, event in distinct:
        raw = json.dumps(event, ensure_ascii=False)
        refused_by = KIND_REJECTED_BY[kind]
        if refused_by is None:
            assert rejects[None, raw] == 1, event
            continue
        assert f"event:{event['sg_event_id']}" in marks, event
        assert {sink for (sink, r) in rejects if r == raw} == refused_by, (kind, event)
        assert (event["sg_event_id"] in history) == ("history" not in refused_by), (kind, event)
        if notices is not None:
            assert notices[event["sg_event_id"]] == (0 if "sns" in refused_by else 1), (kind, notices)
        if "dynamodb" not in refused_by:
            message = event["sg_message_id"]
            newest[message] = max(newest.get(message, 0), event["timestamp"])
    assert {r["fullMessageId"]: r["timestamp"] for r in stored["bounce"]} == newest


def expected_counts(items: list[tuple[str, object]]) -> dict:
    """The counts of a first post: malformed ones (copies too) and events some sink refused are rejected."""
    valid = [(kind, e["sg_event_id"]) for kind, e in items if KIND_REJECTED_BY[kind] is not None]
    distinct = set(valid)
    refused = sum(1 for kind, _ in distinct if KIND_REJECTED_BY[kind])
    return {"received": len(items), "accepted": len(distinct) - refused, "duplicates": len(valid) - len(distinct),
            "ignored": 0, "rejected": len(items) - len(valid) + refused}


def test_any_batch_under_any_faults(endpoint, notifications, monkeypatch):
    web = endpoint(PLUGINS)
    clock, wall = FakeClock(monkeypatch), [1_800_000_000.0]
    monkeypatch.setattr(delivery, "now", lambda: wall[0])
    post = timed(web.post, wall)
    not_settled = unsettled(monkeypatch)
    Poison(DDB_POISON)
    Poison(SNS_POISON, tables=(), sns_client=sns.client())
    ddb = Faults(0.0, kinds=tuple(KINDS), clock=clock)
    topic = Faults(0.0, client=sns.client(), kinds=tuple(KINDS), clock=clock)
    calls = Calls()

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(items=batches(), broken=st.integers(0, 9), rates=st.tuples(st.floats(0.05, 0.9), st.floats(0.05, 0.9)),
           kinds=st.tuples(*[st.lists(st.sampled_from(list(KINDS)), min_size=1, max_size=3, unique=True)] * 2),
           seed=st.integers(0, 2 ** 16), attempts=st.integers(1, 3))
    def check(items, broken, rates, kinds, seed, attempts):
        for faults in (ddb, topic):
            faults.on, faults.lost_requests = False, []
        not_settled.clear()
        empty(web.plugins)
        notifications()
        events = [e for _, e in items]
        if broken == 0:  # a body that is not a batch: 4xx, nothing written, faults or not
            writes = calls.writes
            ddb.on = topic.on = True
            assert post(clock, body=b'[{"event": "bounce"') [0] == 400
            assert calls.writes == writes
            return

        status, counts = post(clock, events)
        assert status == 200, counts
        assert {k: counts[k] for k in expected_counts(items)} == expected_counts(items)
        check_stored(items, notified(notifications()))
        expected = rows()
        empty(web.plugins)

        for faults, rate, ways in zip((ddb, topic), rates, kinds):
            faults.random.seed(seed)
            faults.rate, faults.lost, faults.kinds, faults.on = rate, rate / 3, tuple(ways), True
        for _ in range(attempts):  # SendGrid posts again until 2xx, the faults still on
            injected = sum(ddb.injected.values()) + sum(topic.injected.values())
            status, counts = post(clock, events)
            assert status in (200, 503), (status, counts)
            if status == 503:
                assert sum(ddb.injected.values()) + sum(topic.injected.values()) > injected
            else:
                check_stored(items, None)
        ddb.on = topic.on = False
        assert post(clock, events)[0] == 200
        assert rows() == expected

        notices = notified(notifications())
        again = not_settled + Counter(json.loads(message)["eventId"] for request in topic.lost_requests
                                      for message in sns_entries(request).values())
        for kind, event in items:
            if KIND_REJECTED_BY[kind] is not None:
                wanted = 0 if "sns" in KIND_REJECTED_BY[kind] else 1
                assert wanted <= notices[event["sg_event_id"]] <= wanted + again[event["sg_event_id"]], (kind, again)

    check()
