"""Handing reconciled records to the sinks so each event takes effect once.

SendGrid posts every event at least once (often several times) and re-posts a
batch the webhook did not answer 2xx. The ``processed_events`` table
(``handlers.tables.PROCESSED_EVENTS``) remembers, for 7 days:

- ``event:<eventId>``: every sink has the event. A later copy reaches no sink.
- ``sink:<sink>:<eventId>``: a non-idempotent sink's claim on the event:
  ``claimed`` (by one delivery, ``owner``, at ``claimedAt``), ``done``, or
  ``released`` (the sink failed; the next delivery may claim it again).

Idempotent sinks (a keyed table write) get every record not yet marked
``event:``; a retry rewrites the same rows. A non-idempotent sink (a
notification) gets only the records whose claim this delivery won with a
conditional write, so two deliveries of the same batch running at once never
both hand it the same event: the loser answers "busy" and SendGrid re-posts
later, when the event is marked. A claim whose owner vanished (the function
timed out) is taken over after ``LEASE_SECONDS``, the longest a Lambda runs:
the one case where a sink may see an event twice (the owner may have written
it just before it died), chosen over losing the event.

When DynamoDB fails, the exception propagates (the webhook answers 5xx);
what was marked stays marked, so the retry does only what is left. A
non-idempotent sink's write gets the time budget minus
``SETTLE_RESERVE_SECONDS``, so its claims can still be settled when it runs
out of time.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Iterable

from handlers import aws, dynamo, retry
from handlers.manager import Sink
from handlers.tables import PROCESSED_EVENTS

log = logging.getLogger(__name__)

REMEMBER_SECONDS = 7 * 86400
LEASE_SECONDS = 900
SETTLE_ATTEMPTS = 5
SETTLE_RESERVE_SECONDS = aws.ATTEMPT_SECONDS + 1  # kept back from a non-idempotent sink to settle its claims

DONE, CLAIMED, RELEASED = "done", "claimed", "released"
CLAIMABLE = ("attribute_not_exists(#id) OR #state = :released "
             "OR (#state = :claimed AND #claimedAt < :stale)")


class PartiallyWritten(Exception):
    """Raised by a sink's ``write`` that stored only some records.

    ``written`` holds the ``eventId`` of each record that is stored; the rest
    count as not stored and are offered again on SendGrid's retry. A
    non-idempotent sink that writes record by record (SNS PublishBatch answers
    per entry) raises this so the stored ones are never sent twice.
    """

    def __init__(self, written: Iterable[str], message: str = "some records were not written"):
        super().__init__(message)
        self.written = frozenset(written)


class Busy(Exception):
    """Another delivery holds claims on some events of this batch (answer 5xx, SendGrid retries)."""


@dataclass
class Report:
    fresh: list[dict]
    """The records handed to the sinks (first copies of events not processed before)."""
    duplicates: int
    """Records skipped: repeated in the batch, or processed before."""


def _table() -> str:
    return os.environ[PROCESSED_EVENTS.env_var]


def event_key(event_id: str) -> str:
    return f"event:{event_id}"


def claim_key(sink: str, event_id: str) -> str:
    return f"sink:{sink}:{event_id}"


def now() -> float:
    """The clock (tests move it forward, as SendGrid's retry schedule does)."""
    return time.time()


def deliver(records: list[dict], sinks: list[Sink]) -> Report:
    """Hand ``records`` to ``sinks``, skipping events already processed.

    Raises what a sink or DynamoDB raised (nothing further is marked), or
    ``Busy`` when another delivery is handling some of these events right now.
    """
    unique = {r["eventId"]: r for r in reversed(records)}  # the first copy of each event wins
    fresh = [r for r in records if unique.get(r["eventId"]) is r]
    table = _table()
    known = dynamo.batch_get(table, PROCESSED_EVENTS.hash_key, [event_key(r["eventId"]) for r in fresh])
    fresh = [r for r in fresh if event_key(r["eventId"]) not in known]
    report = Report(fresh=fresh, duplicates=len(records) - len(fresh))
    if not fresh:
        return report

    for sink in sinks:
        if sink.idempotent:
            sink.write(fresh)
    busy: set[str] = set()
    for sink in sinks:
        if not sink.idempotent:
            busy |= _deliver_once(sink, fresh, table)

    clock = now()
    finished = [{"id": event_key(r["eventId"]), "state": DONE, "expiresAt": int(clock) + REMEMBER_SECONDS}
                for r in fresh if r["eventId"] not in busy]
    dynamo.batch_put(table, finished, (PROCESSED_EVENTS.hash_key,))
    if busy:
        raise Busy(f"{len(busy)} event(s) are being delivered by another request")
    return report


def _deliver_once(sink: Sink, records: list[dict], table: str) -> set[str]:
    """Give ``sink`` the records this delivery can claim; returns the eventIds another delivery holds."""
    owner, clock = uuid.uuid4().hex, now()
    by_key = {claim_key(sink.name, r["eventId"]): r for r in records}
    claims = [{"id": key, "state": CLAIMED, "owner": owner, "claimedAt": int(clock),
               "expiresAt": int(clock) + REMEMBER_SECONDS} for key in by_key]
    refused = dynamo.put_unless(
        table, claims, PROCESSED_EVENTS.hash_key, CLAIMABLE,
        names={"#id": PROCESSED_EVENTS.hash_key, "#state": "state", "#claimedAt": "claimedAt"},
        values={":released": RELEASED, ":claimed": CLAIMED, ":stale": int(clock) - LEASE_SECONDS},
    )
    current = dynamo.batch_get(table, PROCESSED_EVENTS.hash_key, refused) if refused else {}
    ours, busy = [], set()
    for key, record in by_key.items():
        item = current.get(key, {})
        if key not in refused or (item.get("state") == CLAIMED and item.get("owner") == owner):
            ours.append(record)  # claimed now, or by this very request on an attempt that went through
        elif item.get("state") != DONE:
            busy.add(record["eventId"])
    if not ours:
        return busy
    try:
        with retry.budget(retry.remaining() - SETTLE_RESERVE_SECONDS):
            sink.write(ours)
    except PartiallyWritten as exc:
        written = [r for r in ours if r["eventId"] in exc.written]
        _settle(table, sink, written, DONE, clock)
        _settle(table, sink, [r for r in ours if r["eventId"] not in exc.written], RELEASED, clock)
        raise
    except BaseException:
        _settle(table, sink, ours, RELEASED, clock)
        raise
    _settle(table, sink, ours, DONE, clock)
    return busy


def _settle(table: str, sink: Sink, records: list[dict], state: str, clock: float) -> None:
    """Record the outcome of ``sink``'s write on its claims, trying hard (inside the time budget).

    This write decides whether a retry hands the sink these records again, so
    it gets more attempts than any other: if it is lost after a successful
    write, the claims look held until the lease ends and are then delivered
    again (logged as a possible duplicate).
    """
    items = [{"id": claim_key(sink.name, r["eventId"]), "state": state,
              "expiresAt": int(clock) + REMEMBER_SECONDS} for r in records]
    if not items:
        return
    for attempt in range(SETTLE_ATTEMPTS):
        try:
            dynamo.batch_put(table, items, (PROCESSED_EVENTS.hash_key,))
            return
        except Exception as exc:
            error = exc
        if attempt == SETTLE_ATTEMPTS - 1 or not _waited(attempt):
            break
    log.error(json.dumps({"message": "claims not settled", "sink": sink.name, "state": state,
                          "count": len(items), "error": type(error).__name__}))
    raise error


def _waited(attempt: int) -> bool:
    """Back off before another attempt; False when the time budget has no room for one."""
    try:
        dynamo.backoff(attempt)
        return True
    except retry.OutOfTime:
        return False
