"""The sender Lambda: DynamoDB Streams records of the mail sender table in.

Each INSERT record is one mail, sent at most once, its fate written on the item:

1. Claim: a conditional update sets ``status`` to ``sending`` only if the item
   exists and has no ``status`` yet (or ``failed``: a retry). A retried batch,
   a duplicate record or a concurrent invocation finds the claim taken and
   does not send. An item found in ``sending`` is another delivery's mail in
   flight, or one whose sender died mid-send: it is logged and reported as a
   batch item failure, never re-sent (README "Operating" says what to do).
2. Check the item (``handlers.mail``) and run the ``before_send`` hooks.
   Invalid, vetoed or left without recipients: ``rejected`` + ``error``.
3. Send (``handlers.sendgrid_api``: timeouts, retries). Accepted: the sent log
   row, then ``sent`` + ``messageId`` + ``sentAt`` on the item, then the
   ``after_send`` hooks. Refused by SendGrid (4xx): ``rejected`` + ``error``.
   Transient trouble that outlasted the retries: ``failed`` + ``error``, and
   the record goes into ``batchItemFailures``; Lambda retries it (the claim
   takes ``failed`` items again) and, past the mapping's retry limit, sends it
   to the on-failure destination.

Once SendGrid accepted a mail, nothing marks it ``failed`` (that would send it
again): later errors are logged and leave ``sent`` or ``sending`` behind.

MODIFY and REMOVE records (edits, deletes, TTL expiry) never send. The records
of a batch run on a bounded thread pool; every failed record is reported by its
sequence number, so Lambda's checkpoint (the lowest one) is right whatever
order they finished in.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from handlers import dynamo, env, sendgrid_api
from handlers.mail import InvalidMail, Mail, parse
from handlers.manager import Plugins, enabled_plugins
from handlers.tables import MAIL_SENDER, SENT_LOG

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

# Seconds kept back from the invocation's remaining time for writing outcomes.
SAFETY_SECONDS = 5.0
# Deadline when there is no Lambda context (tests, the local stack).
DEFAULT_SECONDS = 60.0


class Retry(Exception):
    """The record must be retried by Lambda: it goes into ``batchItemFailures``."""


class InFlight(Retry):
    """The item is ``sending``: another delivery is sending it, or one died mid-send."""


class Done(Exception):
    """The item was handled before (``sent``, ``rejected``), or is gone: nothing to do."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _table() -> str:
    return os.environ[MAIL_SENDER.env_var]


def _key(item_id: str) -> dict:
    return {MAIL_SENDER.hash_key: {"S": item_id}}


def update_item(item_id: str, values: dict, remove: tuple[str, ...] = ()) -> None:
    """Set ``values`` (None ones skipped) and remove ``remove`` on an item that still exists.

    A deleted item is not brought back by its outcome: the write is skipped.
    """
    values = {k: v for k, v in values.items() if v is not None}
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in values)
    if remove:
        expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
    try:
        dynamo.client().update_item(
            TableName=_table(),
            Key=_key(item_id),
            UpdateExpression=expression,
            ConditionExpression="attribute_exists(#id)",
            ExpressionAttributeNames={"#id": MAIL_SENDER.hash_key, **{f"#{k}": k for k in (*values, *remove)}},
            ExpressionAttributeValues={f":{k}": v for k, v in dynamo.serialize(values).items()},
        )
    except dynamo.client().exceptions.ConditionalCheckFailedException:
        log.warning(json.dumps({"message": "item deleted before its outcome was written",
                                "id": item_id, "outcome": values}))


def claim(item_id: str) -> None:
    """Mark the item ``sending`` if it is new (or ``failed``); ``Done`` / ``InFlight`` otherwise."""
    dynamodb = dynamo.client()
    try:
        dynamodb.update_item(
            TableName=_table(),
            Key=_key(item_id),
            UpdateExpression="SET #status = :sending, #claimedAt = :now ADD #attempts :one",
            ConditionExpression="attribute_exists(#id) AND (attribute_not_exists(#status) OR #status = :failed)",
            ExpressionAttributeNames={"#id": MAIL_SENDER.hash_key, "#status": "status",
                                      "#claimedAt": "claimedAt", "#attempts": "attempts"},
            ExpressionAttributeValues={":sending": {"S": "sending"}, ":failed": {"S": "failed"},
                                       ":now": {"S": now_iso()}, ":one": {"N": "1"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except dynamodb.exceptions.ConditionalCheckFailedException as exc:
        old = dynamo.deserialize(exc.response.get("Item") or {})
        if not old:
            raise Done("deleted before it was sent") from None
        if old.get("status") == "sending":
            raise InFlight(f"item is 'sending' since {old.get('claimedAt')}: in flight elsewhere, "
                           "or its sender died mid-send (not re-sent)") from None
        raise Done(f"already {old.get('status')}") from None


def record_sent(mail: Mail, message_id: str, sent_at: str) -> None:
    """The sent-log row the webhook reconciles events with."""
    days = int(env.SENT_LOG_TTL_DAYS.get())
    cc, bcc = mail.kept(mail.cc), mail.kept(mail.bcc)
    item = {
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
    dynamo.client().put_item(TableName=os.environ[SENT_LOG.env_var], Item=dynamo.serialize(item))


def _accepted(mail: Mail, message_id: str, plugins: Plugins, outcome: dict) -> str:
    """Record a mail SendGrid accepted. Errors are logged; none may lead to a resend."""
    sent_at = now_iso()
    note = None
    if not message_id:
        note = "SendGrid answered without X-Message-Id: no sent-log row"
    else:
        try:
            record_sent(mail, message_id, sent_at)
        except Exception as exc:
            log.exception("sent-log write failed for item %s (messageId %s)", mail.id, message_id)
            note = f"sent, but the sent-log write failed: {type(exc).__name__}"
    update_item(mail.id, {"status": "sent", "messageId": message_id or None, "sentAt": sent_at,
                          "error": note, **outcome}, remove=() if note else ("error",))
    try:
        plugins.hook.after_send(mail=mail, message_id=message_id)
    except Exception:
        log.exception("an after_send hook failed for item %s", mail.id)
    return "sent"


def process(item: dict, plugins: Plugins, deadline: float) -> str:
    """Send one inserted item at most once; returns its final status (or raises ``Retry`` / ``Done``)."""
    item_id = str(item["id"])
    claim(item_id)
    try:
        mail = parse(item)
    except InvalidMail as exc:
        update_item(item_id, {"status": "rejected", "error": str(exc)})
        return "rejected"
    outcome = {}
    try:
        plugins.hook.before_send(mail=mail)
        outcome = {"suppressed": dict(mail.dropped) or None}
        refusal = mail.refusal()
        if refusal:
            update_item(item_id, {"status": "rejected", "error": refusal, **outcome})
            return "rejected"
        message_id = sendgrid_api.send(mail.payload(env.SENDGRID_EVENTS_STACK.get()), deadline)
    except sendgrid_api.Rejected as exc:
        update_item(item_id, {"status": "rejected", "error": str(exc), **outcome})
        return "rejected"
    except Exception as exc:  # not sent: SendGrid unavailable, a hook or DynamoDB failed
        error = str(exc) if isinstance(exc, sendgrid_api.Failed) else f"{type(exc).__name__}: {exc}"
        update_item(item_id, {"status": "failed", "error": error, **outcome})
        raise Retry(error) from exc
    return _accepted(mail, message_id, plugins, outcome)


def deadline_of(context) -> float:
    """The ``time.monotonic()`` by which every send of this invocation must be over."""
    seconds = context.get_remaining_time_in_millis() / 1000 if context is not None else DEFAULT_SECONDS
    return time.monotonic() + max(seconds - SAFETY_SECONDS, seconds / 2)


def _one(record: dict, plugins: Plugins, deadline: float) -> bool:
    """Handle one record; False when it must be reported to Lambda for a retry."""
    if record.get("eventName") != "INSERT":
        return True
    keys = record.get("dynamodb", {})
    item_id = dynamo.deserialize(keys.get("Keys", {})).get(MAIL_SENDER.hash_key)
    line = {"message": "mail", "id": item_id, "sequenceNumber": keys.get("SequenceNumber")}
    try:
        if "NewImage" not in keys:
            raise Retry("INSERT record without NewImage: the stream must be NEW_IMAGE")
        line["status"] = process(dynamo.deserialize(keys["NewImage"]), plugins, deadline)
    except Done as exc:
        line.update(status="skipped", reason=str(exc))
    except Retry as exc:
        line.update(status="retry", error=str(exc))
        log.error(json.dumps(line))
        return False
    except Exception as exc:
        log.exception("item %s: %s", item_id, exc)
        return False
    log.info(json.dumps(line))
    return True


def handle(records: list[dict], plugins: Plugins, context=None) -> dict:
    """Send the INSERTs among ``records``; a partial batch response for Lambda."""
    deadline = deadline_of(context)
    if not records:
        return {"batchItemFailures": []}
    with ThreadPoolExecutor(max_workers=min(sendgrid_api.CONCURRENCY, len(records))) as pool:
        done = list(pool.map(lambda r: _one(r, plugins, deadline), records))
    return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
                                  for r, ok in zip(records, done) if not ok]}


def lambda_handler(event, context):
    return handle(event.get("Records", []), enabled_plugins(), context)
