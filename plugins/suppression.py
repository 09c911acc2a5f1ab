"""Sender plugin ``suppression``: do not mail addresses known to be bad.

Before a mail is sent, every recipient (to, cc, bcc) is looked up in the
bounce table (declared by the ``dynamodb`` plugin) through an index on
``address`` (the recipient in lower case) that this plugin adds, and dropped
when the address has

- a hard bounce (``bounce`` with ``type`` bounce, not ``blocked``),
- a ``dropped`` for Invalid, Bounced Address, Unsubscribed Address or Spam
  Reporting Address,
- a spam report (this plugin's sink stores ``spamreport`` events in the
  bounce table; enable the ``spamreport`` event type for them).

The sender writes who was suppressed and why on the mail sender item
(``suppressed``: address -> reason); a mail with no recipient left is
``rejected``. A row stops suppressing when its TTL (``BOUNCE_TTL_DAYS``)
removes it. Addresses are matched case-insensitively.
"""

from __future__ import annotations

import functools
import os
from datetime import datetime, timezone

from handlers import dynamo
from handlers.hookspecs import hookimpl
from handlers.tables import MAX_HASH_KEY_BYTES, SENDER, Index, Table
from plugins import dynamodb
from plugins.dynamodb import BOUNCE

ADDRESS_INDEX = Index("byAddress", hash_key="address")
SUPPRESSING_DROPS = frozenset({"Invalid", "Bounced Address", "Unsubscribed Address", "Spam Reporting Address"})


def why(item: dict) -> str | None:
    """Why a bounce-table row suppresses its address, or None when it does not."""
    event = item.get("event")
    if event == "bounce" and item.get("type") != "blocked":
        detail = " ".join(str(item[k]) for k in ("status", "bounceClassification") if item.get(k))
        return f"hard bounce: {detail}" if detail else "hard bounce"
    if event == "dropped" and item.get("reason") in SUPPRESSING_DROPS:
        return f"dropped: {item['reason']}"
    if event == "spamreport":
        return "spam report"
    return None


def rows_for(address: str, *, table: str | None = None, dynamodb=None) -> list[dict]:
    """The bounce-table rows of ``address`` (any case); none for an address too long to be an index key
    (the webhook never stores such a row: it is a reject there). ``table``, ``dynamodb``: another
    stack's table and client (the operator's command line), not the function's."""
    if len(address.lower().encode("utf-8")) > MAX_HASH_KEY_BYTES:
        return []
    dynamodb = dynamodb or dynamo.client()
    request = {
        "TableName": table or os.environ[BOUNCE.env_var],
        "IndexName": ADDRESS_INDEX.name,
        "KeyConditionExpression": "address = :a",
        "ExpressionAttributeValues": {":a": {"S": address.lower()}},
    }
    found = []
    while True:
        response = dynamodb.query(**request)
        found += [dynamo.deserialize(i) for i in response["Items"]]
        if "LastEvaluatedKey" not in response:
            return found
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def suppression(address: str) -> str | None:
    """The reason to suppress ``address`` (its latest suppressing row), or None."""
    return latest_reason(rows_for(address))


def latest_suppressing(rows: list[dict]) -> dict | None:
    """Of one address's bounce-table rows, the latest that suppresses it, or None."""
    return max((r for r in rows if why(r)), key=lambda r: r.get("timestamp") or 0, default=None)


def latest_reason(rows: list[dict]) -> str | None:
    """Of one address's bounce-table rows, the reason of the latest that suppresses it (with its day), or None."""
    row = latest_suppressing(rows)
    if row is None:
        return None
    at = row.get("timestamp")
    return f"{why(row)} ({datetime.fromtimestamp(at, timezone.utc):%Y-%m-%d})" if at else why(row)


@hookimpl
def before_send(mail):
    for address in dict.fromkeys(a.email.lower() for a in mail.recipients):
        reason = suppression(address)
        if reason:
            mail.drop(address, reason)


@hookimpl
def register_tables(register):
    register(Table(name=BOUNCE.name, indexes=(ADDRESS_INDEX,), access={SENDER: ("dynamodb:Query",)}))


@hookimpl
def register_sinks(register):
    # spam reports go into the bounce table too, so the next mail to the address is suppressed
    register("suppression", functools.partial(dynamodb.write, events=frozenset({"spamreport"})))
