"""The core step of the webhook: a parsed batch of SendGrid events in; records, reject rows and
ignored counts out (``Outcome``).

Each event becomes exactly one of these: a reject (it cannot be processed, or
it is of an enabled type and DynamoDB could not store it: ``problem``,
``unstorable``), ignored (a type no plugin enabled: counted by type), or a
record (its message looked up in the sent log, ``handlers.sent_log``, in
batches). It names no event type and no sink: what a type adds comes from its
plugin.

A reject is the row the ``rejects`` table stores (``reject``, written by
``keep_rejects``): ``eventId`` (``sha256:<hex>`` of the raw JSON, prefixed
``<sink>:`` when a sink refused the record), ``reason`` (logged: names the
field or limit, never the value), ``raw`` (cut at ``MAX_REJECT_CHARS``),
``rawLength``, ``sink``, ``detail`` (what failed, in its own words; None
when absent) and ``timestamp`` (the event's, when valid). A replay that
refuses the event again adds ``version`` and ``replayedAt`` (``handlers.replay``). ``handlers.delivery`` makes the rows of records a sink refused
here too.

A record is a dict with these keys (sinks may store any of them):

``eventId``        ``sg_event_id``, or ``sha256:<hex>`` of the event when absent
``sgEventId``      ``sg_event_id`` as sent (may be None)
``fullMessageId``  ``sg_message_id`` (per recipient), or ``unknown:<eventId>``
``messageId``      the X-Message-Id (``sg_message_id`` up to the first ``.``)
``event``          the SendGrid event type
``email``          the recipient address the event is about
``timestamp``      the event's Unix time (int)
``matched``        whether the sent log knew the message
``fromEmail`` ``fromName`` ``toEmail`` ``toName`` ``subject`` ``mailId``
                   from the sent log (None when not matched)
``sgEvent``        the whole event as received (nothing is lost)
plus the fields the event type's plugin adds (``type``, ``reason``, ...).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from typing import Callable, Mapping

from handlers import dynamo, sent_log
from handlers.manager import EventType
from handlers.tables import REJECTS

MAX_MAIL_ID_LOOKUPS = 25
MAX_EVENT_BYTES = 64 * 1024  # a SendGrid event is a few hundred bytes; a record must fit in a 400 KB item
MAX_EVENT_DEPTH = 24  # DynamoDB stores maps and lists nested 32 deep; records add a level or two
MAX_REJECT_CHARS = 32 * 1024  # of a rejected event's raw JSON (the rest is cut, ``rawLength`` says how much)
MAX_NOTE_CHARS = 1000  # of a reject's ``reason`` and ``detail``
# Fields that become (parts of) DynamoDB keys: strings, short enough for a key.
ID_FIELDS = ("sg_event_id", "sg_message_id")
MAX_ID_BYTES = 1000
MAX_TIMESTAMP = 10 ** 11  # year 5138: anything later is not a Unix time in seconds


class Outcome:
    """What became of each event of a batch."""

    def __init__(self):
        self.records: list[dict] = []
        self.rejects: list[dict] = []
        """Rows of the rejects table (``reject``)."""
        self.ignored: Counter = Counter()
        """Events of a type no plugin enabled, by type."""


def message_id(sg_message_id) -> str | None:
    """The X-Message-Id part of an ``sg_message_id`` (before the first dot)."""
    if not isinstance(sg_message_id, str) or not sg_message_id:
        return None
    return sg_message_id.split(".", 1)[0] or None


def event_id(event: Mapping) -> str:
    """``sg_event_id``, or a stable hash of the event when SendGrid sent none."""
    sg_event_id = event.get("sg_event_id")
    if isinstance(sg_event_id, str) and sg_event_id:
        return sg_event_id
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def problem(event) -> str | None:
    """Why ``event`` cannot be processed, or None when it can."""
    if not isinstance(event, dict):
        return f"event is a JSON {type(event).__name__}, not an object"
    if not isinstance(event.get("event"), str) or not event["event"]:
        return "event has no 'event' type"
    if not isinstance(event.get("email"), str) or not event["email"]:
        return "event has no 'email'"
    if _timestamp(event.get("timestamp")) is None:
        return f"event's 'timestamp' is not a whole number of seconds from 0 to {MAX_TIMESTAMP}"
    for name in ID_FIELDS:
        value = event.get(name)
        if value is not None and not (isinstance(value, str) and len(value.encode("utf-8", "replace")) <= MAX_ID_BYTES):
            return f"event's '{name}' is not a string of at most {MAX_ID_BYTES} bytes"
    return None


def unstorable(event: dict) -> str | None:
    """Why DynamoDB could not store ``event`` as a record's part, or None when it can."""
    try:
        size = len(json.dumps(event, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:
        return "event holds text that is not valid Unicode"
    if size > MAX_EVENT_BYTES:
        return f"event is larger than {MAX_EVENT_BYTES} bytes"
    stack = [(event, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_EVENT_DEPTH:
            return f"event is nested deeper than {MAX_EVENT_DEPTH} levels"
        if isinstance(value, dict):
            if "" in value:
                return "event has an empty field name"
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    try:
        dynamo.serialize({"event": event})
    except (TypeError, ValueError, ArithmeticError):
        return "event holds a number DynamoDB cannot store (over 38 digits or out of range)"
    return None


def _timestamp(value) -> int | None:
    """A Unix time in whole seconds, 0 up to ``MAX_TIMESTAMP``, from an integer, an integral float or a
    string of digits; None for anything else (negative, fractional, not finite, ...): such an event is
    rejected, never stored with another time than it said."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            return None
        value = int(value)
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit() and len(value) <= 12):
            return None
        value = int(value)
    if isinstance(value, int) and 0 <= value <= MAX_TIMESTAMP:
        return value
    return None


def reconcile(events: list, event_types: Mapping[str, EventType],
              lookup: Callable[[list[str]], Mapping[str, dict]] = sent_log.by_message_id,
              lookup_by_mail_id: Callable[[list[str]], Mapping[str, list[dict]]] | None = sent_log.by_mail_id,
              ) -> Outcome:
    """Turn a batch of SendGrid events into records.

    ``lookup(message_ids)`` returns the sent-log rows found, by message id;
    it is called once for the whole batch. Events it leaves unmatched that
    carry the sender's ``mailId`` custom arg are looked up once more with
    ``lookup_by_mail_id(mail_ids)`` (sent-log rows by mail id; at most
    ``MAX_MAIL_ID_LOOKUPS`` distinct ids a batch, since each costs a query;
    the rest stay orphans). Events that cannot be processed or stored
    become reject rows (with their raw JSON); events of a type no plugin
    enabled are counted in ``ignored``.
    """
    outcome = Outcome()
    accepted = []
    for event in events:
        # Only events of an enabled type are stored: the others are ignored, so they skip the costly check.
        enabled = isinstance(event, dict) and isinstance(event.get("event"), str) and event["event"] in event_types
        reason = (enabled and unstorable(event)) or problem(event)
        if reason:
            outcome.rejects.append(reject(event, reason))
        elif event["event"] not in event_types:
            outcome.ignored[event["event"]] += 1
        else:
            accepted.append(event)

    by_message_id = lookup([m for m in (message_id(e.get("sg_message_id")) for e in accepted) if m])
    by_mail_id: Mapping[str, list[dict]] = {}
    if lookup_by_mail_id:
        wanted = dict.fromkeys(e["mailId"] for e in accepted if isinstance(e.get("mailId"), str) and e["mailId"]
                               and message_id(e.get("sg_message_id")) not in by_message_id)
        if wanted:
            by_mail_id = lookup_by_mail_id(list(wanted)[:MAX_MAIL_ID_LOOKUPS])

    for event in accepted:
        try:
            outcome.records.append(build_record(event, event_types[event["event"]], by_message_id, by_mail_id))
        except Exception as exc:  # a plugin's fields() failed on this event: its message may hold a value
            outcome.rejects.append(reject(event, f"{event['event']} fields: {type(exc).__name__}", detail=str(exc)))
    return outcome


def build_record(event: dict, event_type: EventType, by_message_id: Mapping[str, dict],
                 by_mail_id: Mapping[str, list[dict]] | None = None) -> dict:
    """The record of an accepted ``event``, with its sent-log row's fields (rows found by message id, else
    by the event's ``mailId``)."""
    eid = event_id(event)
    mid = message_id(event.get("sg_message_id"))
    sent = by_message_id.get(mid) if mid else None
    if sent is None and by_mail_id:
        sent = sent_log.sent_to(by_mail_id.get(event.get("mailId")) or [], event["email"])
        mid = mid or (sent or {}).get("messageId")
    record = {
        "eventId": eid,
        "sgEventId": event.get("sg_event_id"),
        "fullMessageId": event.get("sg_message_id") or f"unknown:{eid}",
        "messageId": mid,
        "event": event["event"],
        "email": event["email"],
        "timestamp": _timestamp(event["timestamp"]),
        "matched": sent is not None,
        **sent_log.fields(sent, event["email"]),
        "sgEvent": event,
    }
    return {**event_type.fields(event), **record}  # a plugin never overwrites a core key (records.CORE_KEYS)


def reject(event, reason: str, detail: str | None = None, sink: str | None = None) -> dict:
    """The rejects table's row for ``event``, which could not be processed (or ``sink`` refused it for good).

    ``reason`` is logged: it names the field or limit, never the value.
    ``detail`` (the words of whatever failed, which may quote the value) is
    kept in the rejects table only.
    """
    raw = json.dumps(event, ensure_ascii=False, default=str)
    try:
        data = raw.encode()
    except UnicodeEncodeError:  # lone surrogates (JSON allows them, UTF-8 does not): keep them escaped
        raw = json.dumps(event, default=str)
        data = raw.encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return {
        "eventId": f"{sink}:{digest}" if sink else digest,  # one row per event and sink
        "reason": reason[:MAX_NOTE_CHARS],
        "raw": raw[:MAX_REJECT_CHARS],
        "rawLength": len(raw),
        "sink": sink,
        "detail": (detail or "")[:MAX_NOTE_CHARS] or None,
        # The event's own time when it has a valid one (``replay rejects --since``); the row stays the
        # same however often SendGrid posts the event again.
        "timestamp": _timestamp(event.get("timestamp")) if isinstance(event, dict) else None,
    }


def keep_rejects(rows: list[dict]) -> None:
    """Write reject rows (``reject``) to the rejects table."""
    if rows:
        dynamo.batch_put(REJECTS, rows)
