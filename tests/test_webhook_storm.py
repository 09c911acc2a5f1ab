"""A bounce storm: 1000 bounce/dropped events across 500 messages, default plugins, in at most 60 round trips.

Counted as the benchmark counts them (``bench/webhook_batch.py``): HTTP
requests the handlers' DynamoDB client sends (botocore's ``before-send``),
retries included. What each one buys: bench/README.md.
"""

from __future__ import annotations

import random
from collections import Counter

from handlers import dynamo
from tests.support import scan
from tests.webhook_support import bounce, endpoint  # noqa: F401 (fixture)

MESSAGES = 500
ROUND_TRIP_BOUND = 60


class Requests:
    """HTTP requests sent by the handlers' DynamoDB client, by operation."""

    def __init__(self):
        self.sent: Counter = Counter()
        self._operation = ""
        events = dynamo.client().meta.events
        events.register("before-call.dynamodb", self._call)
        events.register("before-send.dynamodb", self._send)

    def _call(self, model, **_):
        self._operation = model.name

    def _send(self, **_):
        self.sent[self._operation] += 1

    @property
    def total(self) -> int:
        return sum(self.sent.values())


def storm(tag: str = "") -> list[dict]:
    """Each message's bounce (older) and dropped (newer), shuffled."""
    events = []
    for i in range(2 * MESSAGES):
        message = i % MESSAGES
        kind = {"event": "dropped", "reason": "Bounced Address"} if i >= MESSAGES else {}
        events.append(bounce(i, message=f"m{message}{tag}", sg_message_id=f"m{message}.filter-{message}",
                             email=f"user{message}@bounce.test", **kind))
    random.Random(5).shuffle(events)
    return events


def test_a_bounce_storm_costs_at_most_60_round_trips_and_keeps_every_guarantee(endpoint):
    web = endpoint()  # bounce, dropped, dynamodb
    requests = Requests()
    status, counts = web.post(storm())
    assert status == 200 and counts["accepted"] == 2 * MESSAGES and counts["duplicates"] == 0
    assert requests.total <= ROUND_TRIP_BOUND, requests.sent
    rows = scan("TABLE_BOUNCE")
    assert len(rows) == MESSAGES and {r["event"] for r in rows} == {"dropped"}  # the newer event of each message

    requests.sent.clear()
    status, counts = web.post(storm())  # SendGrid posts the batch again
    assert status == 200 and counts["duplicates"] == 2 * MESSAGES and counts["accepted"] == 0
    assert set(requests.sent) == {"BatchGetItem"}, requests.sent  # looked up, nothing written

    older = [e for e in storm("-late") if e["event"] == "bounce"]  # new events, older than what is stored
    assert web.post(older)[0] == 200
    assert {r["event"] for r in scan("TABLE_BOUNCE")} == {"dropped"}  # newest wins across batches
