"""The sent log: one row per mail SendGrid accepted, written by the sender, read back by the webhook.

A row of ``handlers.tables.SENT_LOG`` (``write`` makes it):

``messageId``        SendGrid's X-Message-Id (the key)
``from``             the sender, ``{"email", "name"}``
``to`` ``cc`` ``bcc``  the recipients sent to (suppressed ones left out), lists of
                     ``{"email", "name"}``; ``cc`` / ``bcc`` absent when empty
``subject``          the mail's subject
``mailId``           the mail sender item's id, also sent as a custom arg (index ``mailId``)
``sentAt``           when SendGrid accepted it (ISO 8601)
``expiresAt``        the TTL: ``SENT_LOG_TTL_DAYS`` after the write (absent when 0: kept)

Read back by message id (``by_message_id``, one batched read) or, for events
without a usable ``sg_message_id``, by mail id (``by_mail_id``, a Query per
id); ``fields`` gives what a reconciled record takes from a row. Rows put
there by hand (the seed) may hold ``from`` and the recipients as JSON strings
or bare addresses: the readers take either.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Iterable, Mapping

from handlers import dynamo, env
from handlers.tables import SENT_LOG

if TYPE_CHECKING:  # the webhook reads rows without loading the mail module
    from handlers.mail import Mail

RECIPIENT_FIELDS = ("to", "cc", "bcc")


def write(mail: Mail, message_id: str, sent_at: str) -> None:
    """Put the row of ``mail``, accepted by SendGrid as ``message_id`` at ``sent_at``."""
    days = int(env.SENT_LOG_TTL_DAYS.get())
    cc, bcc = mail.kept(mail.cc), mail.kept(mail.bcc)
    row = {
        "messageId": message_id,
        "from": mail.sender.to_json(),
        "to": [a.to_json() for a in mail.kept(mail.to)],
        "cc": [a.to_json() for a in cc] or None,
        "bcc": [a.to_json() for a in bcc] or None,
        "subject": mail.subject,
        "mailId": mail.id,
        "sentAt": sent_at,
        "expiresAt": int(time.time()) + days * 86400 if days > 0 else None,
    }
    dynamo.client().put_item(TableName=os.environ[SENT_LOG.env_var], Item=dynamo.serialize(row))


def by_message_id(message_ids: Iterable[str]) -> dict[str, dict]:
    """The rows of ``message_ids`` that exist: message id -> row."""
    return dynamo.batch_get(os.environ[SENT_LOG.env_var], SENT_LOG.hash_key, message_ids)


def by_mail_id(mail_ids: Iterable[str]) -> dict[str, list[dict]]:
    """The rows of each of ``mail_ids`` (one Query each: callers bound how many): mail id -> rows."""
    [index] = SENT_LOG.indexes
    return dynamo.query_each(os.environ[SENT_LOG.env_var], index.name, index.hash_key, mail_ids)


def sent_to(rows: list[dict], email: str) -> dict | None:
    """Of one mail id's rows, the one that went to ``email`` (or else the first; None when none)."""
    return next((row for row in rows if recipient(row, email)), rows[0] if rows else None)


def fields(row: Mapping | None, email: str) -> dict:
    """What a record of an event about ``email`` takes from its row (all None when there is none)."""
    if not row:
        return {"fromEmail": None, "fromName": None, "toEmail": None, "toName": None,
                "subject": None, "mailId": None}
    sender = address(row.get("from"))
    sent_to = recipient(row, email) or {}
    return {
        "fromEmail": sender.get("email"),
        "fromName": sender.get("name"),
        "toEmail": sent_to.get("email", email),
        "toName": sent_to.get("name"),
        "subject": row.get("subject"),
        "mailId": row.get("mailId"),
    }


def _json_value(value):
    """An attribute stored as a JSON string (the seed) or natively."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def address(value) -> dict:
    """A row's ``from`` or recipient entry as ``{"email", "name"}`` (a JSON string, a dict or a bare address)."""
    value = _json_value(value)
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return {"email": value}
    return {}


def recipients(row: Mapping) -> list[dict]:
    """Every to, cc and bcc entry of ``row``, as ``{"email", "name"}``."""
    return [address(entry) for name in RECIPIENT_FIELDS for entry in _json_value(row.get(name)) or []]


def recipient(row: Mapping, email: str) -> dict | None:
    """The to/cc/bcc entry of ``row`` for ``email`` (case-insensitive), None when the mail did not go there."""
    email = email.lower()
    return next((entry for entry in recipients(row) if str(entry.get("email", "")).lower() == email), None)
