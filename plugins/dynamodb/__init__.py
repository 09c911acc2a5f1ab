"""Sink ``dynamodb``: the seed's bounce table, one row per failed recipient message.

Stores the records of the events in ``STORED_EVENTS`` under ``fullMessageId``
(SendGrid's per-recipient message id), so a repeated event rewrites the same
row. The newest event of a message wins, also across batches SendGrid posts
out of order (a blocked bounce re-posted after the final bounce must not
replace it, or suppression would miss a hard bounce): each row is a put
conditioned on the stored row being absent or not newer
(``handlers.dynamo.put_newest``, 100 a TransactWriteItems call), so two
deliveries touching the same message at the same moment cannot both win, and
nothing is read first. A transactional write costs twice a plain put's write
units; the read it replaces cost read units and two round trips per 100 rows.
"""

from __future__ import annotations

import time

from handlers import dynamo
from handlers.delivery import put_rows
from handlers.env import Var
from handlers.hookspecs import hookimpl
from handlers.tables import WEBHOOK, Table, declared

STORED_EVENTS = frozenset({"bounce", "dropped"})

BOUNCE_TTL_DAYS = Var("BOUNCE_TTL_DAYS", "Days a bounce row is kept before TTL removes it; 0 keeps it forever.", "0")

BOUNCE = Table(
    name="bounce",
    hash_key="fullMessageId",
    ttl_attribute="expiresAt",
    access={WEBHOOK: ("dynamodb:PutItem",)},  # conditional puts, in TransactWriteItems (dynamo.put_newest)
)

# Seed fields first, then ours.
COLUMNS = ("fullMessageId", "fromEmail", "fromName", "toEmail", "toName", "subject", "timestamp",
           "event", "type", "reason", "status", "bounceClassification", "sgEventId", "matched",
           "messageId", "mailId")


def row(record: dict, now: float) -> dict:
    item = {k: record.get(k) for k in COLUMNS}
    if not item["toEmail"]:
        item["toEmail"] = record["email"]
    item["address"] = record["email"].lower()  # the recipient, for lookups by address (suppression)
    days = int(BOUNCE_TTL_DAYS.get())
    if days > 0:
        item["expiresAt"] = int(now) + days * 86400
    return item


def write(records: list[dict], events=STORED_EVENTS) -> None:
    """Store the newest storable row of each message; ``Rejected`` names the records whose row never can be.

    A row DynamoDB would refuse (an address too long for another plugin's
    index key, ...) is set aside before the newest is chosen, so it never
    hides a storable one.
    """
    now, checked = time.time(), declared(BOUNCE)
    newest, rejected = {}, {}
    for record in sorted(records, key=lambda r: r["timestamp"]):
        if record["event"] in events:
            item = row(record, now)
            problem = checked.key_problem(item)
            if problem:
                rejected[record["eventId"]] = problem
            else:
                newest[record["fullMessageId"]] = (record["eventId"], item)
    put_rows(BOUNCE, dict(newest.values()), rejected, put=_put_newest)


def _put_newest(table: Table, rows) -> None:
    dynamo.put_newest(table, rows, "timestamp")  # a stored row of a newer event stays


@hookimpl
def register_tables(register):
    register(BOUNCE)


@hookimpl
def register_sinks(register):
    register("dynamodb", write)
