"""The sender's writes on a mail sender item: the claim, the rejection, the outcome.

Every write is conditional on the item still existing (a deleted item is not
brought back), and the first one (``take``: the claim, or a rejection before
any claim) also on the item being new (no ``status``) or ``failed``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone

from handlers import dynamo, redact
from handlers.tables import MAIL_SENDER

log = logging.getLogger(__name__)

# What an outcome sets; any of them an outcome does not set is removed (left over from an earlier attempt).
OUTCOME_ATTRIBUTES = ("messageId", "sentAt", "error", "suppressed")


class Done(Exception):
    """The item was handled before (``sent``, ``rejected``), or is gone: nothing to do."""


class Retry(Exception):
    """The record must be retried by Lambda: it goes into ``batchItemFailures``."""


class InFlight(Retry):
    """The item is ``sending``: another delivery is sending it, or one died mid-send."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class MailItem:
    """One mail sender item: its key and its image as the stream record carries it (wire format)."""

    id: str
    image: dict

    def claim(self) -> None:
        """Mark the item ``sending`` if it is new (or ``failed``); ``Done`` / ``InFlight`` otherwise."""
        self.take({"status": "sending", "claimedAt": now_iso()}, add={"attempts": 1})

    def reject(self, error: str) -> None:
        """Mark a new (or ``failed``) item ``rejected`` before any claim; ``Done`` / ``InFlight`` otherwise."""
        self.take({"status": "rejected", "error": error})

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
        """Write the outcome of a claimed item."""
        try:
            self._write(values)
        except dynamo.client().exceptions.ConditionalCheckFailedException:
            log.warning(json.dumps({"message": "item deleted before its outcome was written",
                                    "id": self.id, "outcome": values}))

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

