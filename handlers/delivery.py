"""Handing reconciled records to the sinks so each event takes effect once.

SendGrid posts every event at least once (often several times) and re-posts a
batch the webhook did not answer 2xx. The ``processed_events`` table
(``handlers.tables.PROCESSED_EVENTS``) remembers, for 7 days:

- ``event:<eventId>``: every sink is done with the event. A later copy reaches no sink.
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

What a sink says about its records:

- returns: every record is stored.
- raises ``Rejected(reasons)``: every record is stored except those, which it
  can never store (a key too long for DynamoDB, a notification too long for
  SNS). They go to the rejects table (``keep``) with the reason and count as
  done: a retry changes nothing. The batch is still answered 2xx.
- raises ``PartiallyWritten(written, rejected=...)``: only ``written`` (and
  the ``rejected`` ones, kept as above) are done; the rest is not stored.
- raises anything else: nothing is stored (transient: throttling, timeouts,
  a service down).

When a sink or DynamoDB fails, the exception propagates (the webhook answers
5xx); what was marked stays marked, so the retry does only what is left.
A non-idempotent sink's write gets the budget minus ``SETTLE_RESERVE_SECONDS``,
so its claims can still be settled when it runs out of time.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from typing import Callable, Iterable, Mapping

from handlers.apigw import Refused
from handlers import aws, dynamo, retry
from handlers.manager import Sink
from handlers.reconcile import reject
from handlers.tables import PROCESSED_EVENTS, Table

log = logging.getLogger(__name__)

REMEMBER_SECONDS = 7 * 86400
LEASE_SECONDS = 900
SETTLE_ATTEMPTS = 5
SETTLE_RESERVE_SECONDS = aws.ATTEMPT_SECONDS + 1  # kept back from a non-idempotent sink to settle its claims

DONE, CLAIMED, RELEASED = "done", "claimed", "released"
CLAIMABLE = ("attribute_not_exists(#id) OR #state = :released "
             "OR (#state = :claimed AND #claimedAt < :stale)")


class Rejected(Exception):
    """Raised by a sink's ``write`` that stored every record but some it can never store.

    ``reasons`` maps the ``eventId`` of each such record to why (name the
    field or limit, never the value: reasons are logged); ``details`` may add
    what the service answered (kept with the reject, not logged). Those
    records go to the rejects table and count as done; the others as stored.
    ``Rejected(event_ids, reason)`` gives many records one reason.
    """

    def __init__(self, reasons: Mapping[str, str] | Iterable[str], reason: str = "",
                 details: Mapping[str, str] | None = None):
        self.reasons = dict(reasons) if isinstance(reasons, Mapping) else dict.fromkeys(reasons, reason)
        self.details = dict(details or {})
        super().__init__(f"{len(self.reasons)} record(s) can never be stored")


class PartiallyWritten(Exception):
    """Raised by a sink's ``write`` that stored only some records.

    ``written`` holds the ``eventId`` of each record that is stored; the rest
    count as not stored and are offered again on SendGrid's retry. A
    non-idempotent sink that writes record by record (SNS PublishBatch answers
    per entry) raises this so the stored ones are never sent twice.
    ``rejected``: records it can never store, as ``Rejected.reasons`` (with
    ``details``); they count as done.
    """

    def __init__(self, written: Iterable[str], message: str = "some records were not written", *,
                 rejected: Mapping[str, str] | None = None, details: Mapping[str, str] | None = None):
        super().__init__(message)
        self.written = frozenset(written)
        self.rejected = dict(rejected or {})
        self.details = dict(details or {})


class Busy(Refused):
    """Another delivery holds claims on some events of this batch (answer 503, SendGrid retries)."""

    status = 503


class Report:
    def __init__(self, fresh: list[dict], duplicates: int):
        self.fresh = fresh
        """The records handed to the sinks (first copies of events not processed before)."""
        self.duplicates = duplicates
        """Records skipped: repeated in the batch, or processed before."""
        self.rejected: list[dict] = []
        """Reject rows (``handlers.reconcile.reject``, with ``sink``) of records a sink refused."""
        self.refused: set[str] = set()
        """The eventIds of the fresh records some sink refused for good (each has a reject per sink)."""


def _table() -> str:
    return os.environ[PROCESSED_EVENTS.env_var]


def event_key(event_id: str, scope: str = "") -> str:
    return f"{scope}event:{event_id}"


def claim_key(sink: str, event_id: str, scope: str = "") -> str:
    return f"{scope}sink:{sink}:{event_id}"


def now() -> float:
    """The clock (tests move it forward, as SendGrid's retry schedule does)."""
    return time.time()


Keep = Callable[[list[dict]], None]


def deliver(records: list[dict], sinks: list[Sink], keep: Keep, scope: str = "") -> Report:
    """Hand ``records`` to ``sinks``, skipping events already processed.

    ``keep(rejects)`` stores the rejects of records a sink refused for good
    (before they are marked done). Raises what a sink or DynamoDB raised
    (nothing further is marked), or ``Busy`` when another delivery is
    handling some of these events right now. ``scope`` prefixes every mark
    and claim: a delivery under another scope is another once (a replay of
    what a sink refused, ``handlers.replay``).
    """
    unique = {r["eventId"]: r for r in reversed(records)}  # the first copy of each event wins
    fresh = [r for r in records if unique.get(r["eventId"]) is r]
    table = _table()
    known = dynamo.batch_get(table, PROCESSED_EVENTS.hash_key, [event_key(r["eventId"], scope) for r in fresh])
    fresh = [r for r in fresh if event_key(r["eventId"], scope) not in known]
    report = Report(fresh=fresh, duplicates=len(records) - len(fresh))
    if not fresh:
        return report

    kept: list[dict] = []
    for sink in sinks:
        if sink.idempotent:
            _written, rejected, failure = _write(sink, fresh)
            if failure:
                raise failure
            kept += rejected.values()
            report.refused |= set(rejected)
    keep(kept)
    busy: set[str] = set()
    for sink in sinks:
        if not sink.idempotent:
            held, rejected = _deliver_once(sink, fresh, table, keep, scope)
            busy |= held
            kept += rejected.values()
            report.refused |= set(rejected)

    clock = now()
    finished = [{"id": event_key(r["eventId"], scope), "state": DONE, "expiresAt": int(clock) + REMEMBER_SECONDS}
                for r in fresh if r["eventId"] not in busy]
    dynamo.put_all(table, finished, PROCESSED_EVENTS.hash_key)  # 100 marks a call (BatchWriteItem: 25)
    if busy:
        raise Busy(f"{len(busy)} event(s) are being delivered by another request")
    report.rejected = kept
    return report


def put_rows(table: Table, rows: Mapping[str, dict], rejected: Mapping[str, str] | None = None,
             put: Callable[[Table, Iterable[dict]], object] = dynamo.batch_put) -> None:
    """For a sink writing one row per record (``rows``: eventId -> row) into a DynamoDB table.

    Writes the rows (``put``: ``handlers.dynamo.batch_put``, or another writer
    raising its ``Unstorable``), then raises ``Rejected`` for the records whose
    row DynamoDB can never store, and those in ``rejected`` (eventId -> reason)
    the sink set aside itself.
    """
    reasons, details = dict(rejected or {}), {}
    try:
        put(table, rows.values())
    except dynamo.Unstorable as exc:
        owner = {tuple(row.get(k) for k in table.key_names): event_id for event_id, row in rows.items()}
        for refusal in exc.refused:
            event_id = owner[tuple(refusal.item.get(k) for k in table.key_names)]
            reasons[event_id], details[event_id] = refusal.reason, refusal.detail
    if reasons:
        raise Rejected(reasons, details=details)


def _write(sink: Sink, records: list[dict]) -> tuple[set[str], dict[str, dict], BaseException | None]:
    """``sink.write(records)``: the eventIds stored, eventId -> reject of those refused for good, and
    the failure (None when it returned)."""
    ids = {r["eventId"] for r in records}
    try:
        sink.write(records)
    except Rejected as exc:
        return ids - set(exc.reasons), _rejects(sink, records, exc.reasons, exc.details), None
    except PartiallyWritten as exc:
        return set(exc.written) & ids, _rejects(sink, records, exc.rejected, exc.details), exc
    except BaseException as exc:  # re-raised by the caller
        return set(), {}, exc
    return ids, {}, None


def _rejects(sink: Sink, records: list[dict], reasons: Mapping[str, str],
             details: Mapping[str, str]) -> dict[str, dict]:
    """eventId -> a reject for each record ``sink`` refused: one row per event and sink (``<sink>:sha256:...``)."""
    rows = {}
    for record in records:
        if record["eventId"] in reasons:
            rows[record["eventId"]] = reject(record["sgEvent"], f"{sink.name}: {reasons[record['eventId']]}",
                                             detail=details.get(record["eventId"]), sink=sink.name)
    return rows


def _deliver_once(sink: Sink, records: list[dict], table: str, keep: Keep,
                  scope: str) -> tuple[set[str], dict[str, dict]]:
    """Give ``sink`` the records this delivery can claim.

    Returns the eventIds another delivery holds, and the rejects of the
    records the sink refused for good (kept before their claims are settled).
    """
    owner, clock = uuid.uuid4().hex, now()
    by_key = {claim_key(sink.name, r["eventId"], scope): r for r in records}
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
        return busy, {}
    with retry.budget(retry.remaining() - SETTLE_RESERVE_SECONDS):
        written, rejected, failure = _write(sink, ours)
    if rejected:
        try:
            keep(list(rejected.values()))
        except Exception as exc:  # the refused records are offered again (and refused again) next time
            failure, rejected = failure or exc, {}
    done = written | set(rejected)
    _settle(sink, [r for r in ours if r["eventId"] in done], DONE, clock, scope)
    _settle(sink, [r for r in ours if r["eventId"] not in done], RELEASED, clock, scope)
    if failure:
        raise failure
    return busy, rejected


def _settle(sink: Sink, records: list[dict], state: str, clock: float, scope: str) -> None:
    """Record the outcome of ``sink``'s write on its claims, trying hard (inside the time budget).

    This write decides whether a retry hands the sink these records again, so
    it gets more attempts than any other: if it is lost after a successful
    write, the claims look held until the lease ends and are then delivered
    again (logged as a possible duplicate).
    """
    items = [{"id": claim_key(sink.name, r["eventId"], scope), "state": state,
              "expiresAt": int(clock) + REMEMBER_SECONDS} for r in records]
    if not items:
        return
    for attempt in range(SETTLE_ATTEMPTS):
        try:
            dynamo.batch_put(PROCESSED_EVENTS, items)
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
