"""The sender's writes on a mail sender item: the claim, the rejection, the outcome.

Every write is conditional on the item still existing (a deleted item is not
brought back), and the first one (``take``: the claim, or a rejection before
any claim) also on the item being new (no ``status``) or ``failed``.

Every write fits in DynamoDB's 400 KB. The item's size is known from its stream
image (``handlers.item_size``); an item without ``OUTCOME_ROOM`` bytes to spare
for the sender's attributes at their largest is refused before its claim
(``TooLarge``), with an outcome that fits: the error, or at worst the bare
status. Later, an outcome that would still not fit (``suppressed`` is not
reserved: it lists every dropped address) is written without its extras, and
one DynamoDB refuses is written again as its bare status with the reason;
only when that fails too does the write raise ``OutcomeNotWritten``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import NamedTuple
from datetime import datetime, timezone

from handlers import dynamo, redact
from handlers.item_size import MAX_ITEM_BYTES, item_size
from handlers.mail import InvalidMail
from handlers.tables import MAIL_SENDER

log = logging.getLogger(__name__)

# What an outcome sets; any of them an outcome does not set is removed (left over from an earlier attempt).
OUTCOME_ATTRIBUTES = ("messageId", "sentAt", "error", "suppressed")
KEPT_ON_FALLBACK = ("status", "messageId", "sentAt")
MAX_MESSAGE_ID_BYTES = 128  # SendGrid's X-Message-Id has 22 characters
_TIMESTAMP = "2026-01-01T00:00:00+00:00"  # as long as every now_iso()
# The claim's attributes, at their largest.
CLAIM = {"claimedAt": _TIMESTAMP, "attempts": 999_999}
# Every attribute the sender may write but ``suppressed``, at its largest: an item must leave room for them.
LARGEST_OUTCOME = {"status": "rejected", **CLAIM, "messageId": "x" * MAX_MESSAGE_ID_BYTES,
                   "sentAt": _TIMESTAMP, "error": "x" * redact.MAX_ERROR_BYTES}
OUTCOME_ROOM = item_size(dynamo.serialize(LARGEST_OUTCOME))
# Every attribute the sender writes on an item (what a copy of the item made to send it again leaves out).
WRITTEN_ATTRIBUTES = (*LARGEST_OUTCOME, "suppressed")


class Done(Exception):
    """The item was handled before (``sent``, ``rejected``), or is gone: nothing to do."""


class Retry(Exception):
    """The record must be retried by Lambda: it goes into ``batchItemFailures``."""


class InFlight(Retry):
    """The item is ``sending``: another delivery is sending it, or one died mid-send."""


class OutcomeNotWritten(Retry):
    """Not even the bare status could be written: the item stays ``sending``."""


class TooLarge(InvalidMail):
    """The item leaves no room for the sender's attributes."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class MailItem(NamedTuple):
    """One mail sender item: its key and its image as the stream record carries it (wire format)."""

    id: str
    image: dict

    def check_room(self) -> None:
        """``TooLarge`` when the item cannot take the sender's attributes within DynamoDB's limit."""
        size, most = item_size(self.image), MAX_ITEM_BYTES - OUTCOME_ROOM
        if size > most:
            raise TooLarge(f"item too large: {size} bytes; a mail item may have {most}, leaving room "
                           f"for the sender's attributes within DynamoDB's {MAX_ITEM_BYTES}")

    def claim(self) -> None:
        """Mark the item ``sending`` if it is new (or ``failed``); ``Done`` / ``InFlight`` otherwise."""
        self.take({"status": "sending", "claimedAt": now_iso()}, add={"attempts": 1})

    def reject(self, error: str) -> None:
        """Mark a new (or ``failed``) item ``rejected`` before any claim: with the error if it fits.

        ``Done`` when it was taken already, or when not even the status fits (logged).
        """
        for values in ({"status": "rejected", "error": error}, {"status": "rejected"}):
            if self._fits(values, claimed=False):
                return self.take(values)
        log.error(json.dumps({"message": "item too large for any outcome: left without status", "id": self.id}))
        raise Done("too large to take even a status: left alone")

    def take(self, values: dict, add: dict | None = None) -> None:
        """Write ``values`` if the item is new (no ``status``) or ``failed``; ``Done`` / ``InFlight`` otherwise."""
        dynamodb = dynamo.client()
        try:
            self._write(values, add=add, condition="attribute_not_exists(#status) OR #status = :failed",
                        condition_values={":failed": "failed"}, ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except dynamodb.exceptions.ConditionalCheckFailedException as exc:
            old = dynamo.deserialize(exc.response.get("Item") or {})
            if not old:
                raise Done("deleted before it was sent") from None
            if old.get("status") == "sending":
                raise InFlight(f"item is 'sending' since {old.get('claimedAt')}: in flight elsewhere, "
                               "or its sender died mid-send (not re-sent)") from None
            raise Done(f"already {old.get('status')}") from None

    def settle(self, values: dict) -> None:
        """Write the outcome of a claimed item (fitted to the item's room); ``OutcomeNotWritten`` if impossible."""
        try:
            return self._settle(self._fitted(values))
        except Exception as exc:
            first = redact.describe(exc)
        fallback = {k: values[k] for k in KEPT_ON_FALLBACK if k in values}
        fallback["error"] = _joined(values.get("error"), f"the full outcome was not written: {first}")
        try:
            return self._settle(fallback)
        except Exception as exc:
            raise OutcomeNotWritten(f"the '{values['status']}' outcome was not written: {first}; "
                                    f"nor its bare status: {redact.describe(exc)}") from exc

    def _settle(self, values: dict) -> None:
        try:
            self._write(values)
        except dynamo.client().exceptions.ConditionalCheckFailedException:
            log.warning(json.dumps({"message": "item deleted before its outcome was written",
                                    "id": self.id, "outcome": values["status"]}))

    def _fitted(self, values: dict) -> dict:
        """``values`` as they fit on the claimed item: without ``suppressed``, or at worst without all but
        ``status``; ``error`` says what was left out."""
        values = _written(values)
        for left_out in ((), ("suppressed",), tuple(k for k in values if k not in ("status", "error"))):
            left_out = tuple(k for k in left_out if k in values)
            fitted = {k: v for k, v in values.items() if k not in left_out}
            if left_out:
                fitted["error"] = _joined(values.get("error"), f"not written, no room on the item: {', '.join(left_out)}")
            if self._fits(fitted, claimed=True):
                return fitted
        return fitted

    def _fits(self, values: dict, claimed: bool) -> bool:
        """Whether the item takes ``values`` (and, if ``claimed``, the claim's attributes) within the limit."""
        kept = {k: v for k, v in self.image.items() if k not in OUTCOME_ATTRIBUTES}
        try:
            written = dynamo.serialize({**(CLAIM if claimed else {}), **_written(values)})
            return item_size({**kept, **written}) <= MAX_ITEM_BYTES
        except Exception:  # an image that is not DynamoDB's wire format cannot be measured: DynamoDB judges
            return True

    def _write(self, values: dict, add: dict | None = None, condition: str | None = None,
               condition_values: dict | None = None, **extra) -> None:
        """One conditional UpdateItem: SET ``values``, ADD ``add``, REMOVE the outcome attributes not set."""
        values = _written(values)
        add = add or {}
        remove = [a for a in OUTCOME_ATTRIBUTES if a not in values]
        expression = "SET " + ", ".join(f"#{k} = :{k}" for k in values)
        if add:
            expression += " ADD " + ", ".join(f"#{k} :{k}" for k in add)
        if remove:
            expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
        dynamo.client().update_item(
            TableName=os.environ[MAIL_SENDER.env_var],
            Key={MAIL_SENDER.hash_key: {"S": self.id}},
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(#id)" + (f" AND ({condition})" if condition else ""),
            ExpressionAttributeNames={"#id": MAIL_SENDER.hash_key, "#status": "status",
                                      **{f"#{k}": k for k in (*values, *add, *remove)}},
            ExpressionAttributeValues=dynamo.serialize({**{f":{k}": v for k, v in {**values, **add}.items()},
                                                        **(condition_values or {})}),
            **extra,
        )


def _written(values: dict) -> dict:
    """``values`` as written: None ones left out, the error redacted and clipped."""
    values = {k: v for k, v in values.items() if v is not None}
    if "error" in values:
        values["error"] = redact.safe(values["error"])
    return values


def _joined(*notes: str | None) -> str:
    return "; ".join(n for n in notes if n)
