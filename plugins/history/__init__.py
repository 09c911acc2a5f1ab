"""Sink ``history``: every accepted event in the event-history table.

A message's whole story, in order, even when SendGrid posted it out of order:
the table's key is ``messageId`` (the X-Message-Id, as on the mail sender item
and in the sent log; ``fullMessageId`` for an event that has none), then
``eventKey``: the event's Unix time, zero-padded so it sorts as text, then
its event id. A Query on ``messageId`` returns the events in time order; a
repeated event rewrites its own row. SendGrid's times are whole seconds and
``processed`` and ``delivered`` often share one, so within a second the key
orders events by their place in a mail's life (``STAGES``) before the id. Each row is the whole record, the raw
event (``sgEvent``) included, so fields unknown to any plugin are kept.

The sender adds a ``sent`` row when SendGrid accepts a mail (``after_send``),
so the story starts with what was sent to whom. Its key sorts before every
event's (``SENT_KEY_TIME``; its time is in ``timestamp``): the sender reads its
clock after SendGrid's answer (and the sent-log write), while SendGrid stamps
``processed`` with its own clock, in whole seconds, when it takes the mail, so
the ``processed`` event is often a second "earlier" than the send. Nothing of
a message happens before it is sent, so the send opens the story whatever the
two clocks say.
"""

from __future__ import annotations

import time

from handlers import dynamo
from handlers.delivery import put_rows
from handlers.env import Var
from handlers.hookspecs import hookimpl
from handlers.tables import SENDER, WEBHOOK, Table

HISTORY_TTL_DAYS = Var("HISTORY_TTL_DAYS", "Days an event-history row is kept before TTL removes it; 0 keeps it.",
                       "400")

HISTORY = Table(
    name="event_history",
    hash_key="messageId",
    range_key="eventKey",
    ttl_attribute="expiresAt",
    access={WEBHOOK: ("dynamodb:BatchWriteItem",), SENDER: ("dynamodb:BatchWriteItem",)},
)


# Place in a mail's life; an event type not listed sorts after these within its second.
STAGES = {"sent": 0, "processed": 1, "dropped": 2, "deferred": 2, "delivered": 3, "bounce": 3,
          "open": 4, "click": 5}
LATER = 6


SENT_KEY_TIME = 0  # the sent row's key time: before every event of its message


def event_key(timestamp: int, event: str, event_id: str) -> str:
    """``<time, 10 digits>#<stage>#<event id>``: sorts as text in time, then life, order."""
    return f"{timestamp:010d}#{STAGES.get(event, LATER)}#{event_id}"


def _expiry(now: float) -> int | None:
    days = int(HISTORY_TTL_DAYS.get())
    return int(now) + days * 86400 if days > 0 else None


def row(record: dict, now: float) -> dict:
    return {
        **record,
        "messageId": record["messageId"] or record["fullMessageId"],
        "eventKey": event_key(record["timestamp"], record["event"], record["eventId"]),
        "expiresAt": _expiry(now),
    }


def write(records: list[dict]) -> None:
    now = time.time()
    put_rows(HISTORY, {r["eventId"]: row(r, now) for r in records})


@hookimpl
def register_tables(register):
    register(HISTORY)


@hookimpl
def register_sinks(register):
    register("history", write)


@hookimpl
def after_send(mail, message_id):
    now = time.time()
    dynamo.batch_put(HISTORY, [{
        "messageId": message_id,
        "eventKey": event_key(SENT_KEY_TIME, "sent", f"sent:{mail.id}"),
        "event": "sent",
        "timestamp": int(now),
        "mailId": mail.id,
        "to": [a.email for a in mail.recipients],
        "suppressed": dict(mail.dropped) or None,
        "expiresAt": _expiry(now),
    }])
