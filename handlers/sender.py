"""The sender Lambda: DynamoDB Streams records of the mail sender table in.

Each INSERT record of an item inserted without ``status`` is one mail, sent at
most once, its fate written on the item (``handlers.sender_item`` writes):

1. Read, before any claim: the item's size (``TooLarge`` without room for the
   sender's attributes) and its mail (``handlers.mail``). Whatever the item
   holds, this ends in a mail or a ``rejected`` item with an ``error`` naming
   the field (never quoting an address).
2. Claim: a conditional update sets ``status`` to ``sending`` only if the item
   exists and has no ``status`` yet (or ``failed``: a retry). A retried batch,
   a duplicate record or a concurrent invocation finds the claim taken and
   does not send. An item found in ``sending`` is another delivery's mail in
   flight, or one whose sender died mid-send: it is logged and reported as a
   batch item failure, never re-sent (README "Operating" says what to do).
3. The ``before_send`` hooks: vetoed or left without recipients: ``rejected``.
4. Send (``handlers.sendgrid_api``: timeouts, retries). Accepted: the sent log
   row, then ``sent`` + ``messageId`` + ``sentAt`` on the item, then the
   ``after_send`` hooks. Refused by SendGrid (4xx): ``rejected`` + ``error``.
   Anything else between the claim and SendGrid's answer (transient trouble
   that outlasted the retries, a failing hook, any error): ``failed`` +
   ``error`` (type and message, addresses redacted), and the record goes into
   ``batchItemFailures``; Lambda retries it (the claim takes ``failed`` items
   again) and, past the mapping's retry limit, sends it to the on-failure
   destination. An outcome that cannot be written at all is reported the same
   way (the item stays ``sending``).

Once SendGrid accepted a mail, nothing marks it ``failed`` (that would send it
again): later errors are logged and noted in ``error``.

MODIFY and REMOVE records (edits, deletes, TTL expiry) never send. The records
of a batch run on a bounded thread pool; every failed record is reported by its
sequence number, so Lambda's checkpoint (the lowest one) is right whatever
order they finished in. Time: sends end ``SAFETY_SECONDS`` before the
invocation does (time for the outcomes); a record is not started without time
for one Mail Send attempt, and the handler answers ``ANSWER_MARGIN_SECONDS``
before the end whatever is still running: records not started or not finished
by then are reported for a retry.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, wait
from typing import NamedTuple

from handlers import dynamo, env, metrics, sendgrid_api, sent_log
from handlers.mail import InvalidMail, Mail, parse
from handlers.manager import Plugins, enabled_plugins
from handlers.redact import describe, safe, where
from handlers.sender_item import Done, MailItem, Retry, TooLarge, now_iso
from handlers.tables import MAIL_SENDER

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

# Seconds kept back from the invocation's remaining time for writing outcomes.
SAFETY_SECONDS = 5.0
# Seconds before the invocation's end by which the handler answers, whatever is still running.
ANSWER_MARGIN_SECONDS = 1.0
# Deadline when there is no Lambda context (tests, the local stack).
DEFAULT_SECONDS = 60.0


class Refused(Exception):
    """The hooks left the mail unsendable (a veto, no recipient left)."""


class Budget(NamedTuple):
    """One invocation's times (``time.monotonic()``): every send over by ``sends_end``, the answer by ``answer_by``."""

    sends_end: float
    answer_by: float

    @classmethod
    def of(cls, context) -> "Budget":
        seconds = context.get_remaining_time_in_millis() / 1000 if context is not None else DEFAULT_SECONDS
        now = time.monotonic()
        return cls(sends_end=now + max(seconds - SAFETY_SECONDS, seconds / 2),
                   answer_by=now + max(seconds - ANSWER_MARGIN_SECONDS, seconds * 0.9))

    def may_start(self) -> bool:
        """Time is left to claim a mail and make one Mail Send attempt."""
        return time.monotonic() + sendgrid_api.MIN_ATTEMPT_SECONDS <= self.sends_end


def read(item: MailItem) -> Mail:
    """The item's mail, checked; ``InvalidMail`` (``TooLarge``) otherwise, and nothing else."""
    try:
        item.check_room()
        return parse(dynamo.deserialize(item.image))
    except InvalidMail:
        raise
    except Exception as exc:  # an image the deserializer cannot read
        raise InvalidMail(f"the item cannot be read: {describe(exc)}") from exc


def _sent_log_note(mail: Mail, message_id: str, sent_at: str) -> str | None:
    """Write the sent-log row; what went wrong, for the item's ``error`` (None: all well)."""
    if not message_id:
        return "SendGrid answered without X-Message-Id: no sent-log row"
    try:
        sent_log.write(mail, message_id, sent_at)
    except Exception as exc:
        log.error(json.dumps({"message": "sent-log write failed", "id": mail.id, "messageId": message_id,
                              "error": describe(exc), "where": where(exc)}))
        return f"sent, but the sent-log write failed: {type(exc).__name__}"
    return None


def _accepted(item: MailItem, mail: Mail, message_id: str, plugins: Plugins) -> None:
    """Record a mail SendGrid accepted. Nothing here may lead to a resend."""
    sent_at = now_iso()
    note = _sent_log_note(mail, message_id, sent_at)
    try:
        item.settle({"status": "sent", "messageId": message_id or None, "sentAt": sent_at, "error": note,
                     "suppressed": dict(mail.dropped) or None})
    finally:
        try:
            plugins.hook.after_send(mail=mail, message_id=message_id)
        except Exception as exc:
            log.error(json.dumps({"message": "an after_send hook failed", "id": mail.id,
                                  "error": describe(exc), "where": where(exc)}))


def _attempt(mail: Mail, plugins: Plugins, deadline: float) -> str:
    """The hooks, then Mail Send: the X-Message-Id; ``Refused``, ``sendgrid_api.Rejected`` or any error."""
    plugins.hook.before_send(mail=mail)
    refusal = mail.refusal()
    if refusal:
        raise Refused(refusal)
    return sendgrid_api.send(mail.payload(env.SENDGRID_EVENTS_STACK.get()), deadline)


def _suppressed(mail: Mail) -> dict:
    """Log fields for the dropped recipients: how many, and why (never who)."""
    if not mail.dropped:
        return {}
    return {"suppressed": len(mail.dropped), "suppressedReasons": Counter(safe(r) for r in mail.dropped.values())}


def process(item: MailItem, plugins: Plugins, budget: Budget) -> dict:
    """Send one inserted item at most once; its log fields (``status``...), or ``Retry`` / ``Done``."""
    if "status" in item.image:
        raise Done("inserted with a status: left alone")
    try:
        mail = read(item)
    except InvalidMail as exc:
        item.reject(str(exc))
        return {"status": "rejected", "reason": "too large" if isinstance(exc, TooLarge) else "invalid"}
    item.claim()
    try:
        message_id = _attempt(mail, plugins, budget.sends_end)
    except (Refused, sendgrid_api.Rejected) as exc:
        item.settle({"status": "rejected", "error": str(exc), "suppressed": dict(mail.dropped) or None})
        return {"status": "rejected", **_suppressed(mail)}
    except Exception as exc:  # not sent: SendGrid unavailable, a hook failed, anything unexpected
        error = str(exc) if isinstance(exc, sendgrid_api.Failed) else describe(exc)
        item.settle({"status": "failed", "error": error, "suppressed": dict(mail.dropped) or None})
        raise Retry(error) from exc
    _accepted(item, mail, message_id, plugins)
    return {"status": "sent", **_suppressed(mail)}


def _item_id(record: dict) -> str | None:
    return (record.get("dynamodb", {}).get("Keys", {}).get(MAIL_SENDER.hash_key) or {}).get("S")


# A mail's outcome (its log line's ``status``) -> the metric counting it; "skipped" counts nowhere.
OUTCOMES = {"sent": "MailsSent", "rejected": "MailsRejected", "retry": "MailsFailed", "error": "MailsFailed"}


def _one(record: dict, plugins: Plugins, budget: Budget) -> bool:
    """Handle one record; False when it must be reported to Lambda for a retry. Its outcome is counted
    in the batch's metrics (``handlers.metrics.SENDER``)."""
    if record.get("eventName") != "INSERT":
        return True
    started = time.monotonic()
    keys = record.get("dynamodb", {})
    line = {"message": "mail", "id": _item_id(record), "sequenceNumber": keys.get("SequenceNumber")}
    try:
        return _handled(record, line, plugins, budget)
    finally:
        _count(line, started)


def _count(line: dict, started: float) -> None:
    outcome = OUTCOMES.get(line.get("status"))
    if outcome is not None:
        metrics.SENDER.add(outcome)
        metrics.SENDER.add("RecipientsSuppressed", line.get("suppressed", 0))
        metrics.SENDER.observe("SendDuration", metrics.since(started))


def _handled(record: dict, line: dict, plugins: Plugins, budget: Budget) -> bool:
    """``_one``'s work: ``line`` gets the outcome's log fields, and is logged."""
    keys = record.get("dynamodb", {})
    item_id = line["id"]
    try:
        if not budget.may_start():
            raise Retry("not attempted: too little time left in this invocation")
        if "NewImage" not in keys:
            raise Retry("INSERT record without NewImage: the stream must be NEW_IMAGE")
        line.update(process(MailItem(item_id, keys["NewImage"]), plugins, budget))
    except Done as exc:
        line.update(status="skipped", reason=str(exc))
    except Retry as exc:
        line.update(status="retry", error=safe(str(exc)))
        log.error(json.dumps(line))
        return False
    except Exception as exc:
        line.update(status="error", error=describe(exc), where=where(exc))
        log.error(json.dumps(line))
        return False
    log.info(json.dumps(line))
    return True


def handle(records: list[dict], plugins: Plugins, context=None) -> dict:
    """Send the INSERTs among ``records``; a partial batch response for Lambda, given in time."""
    budget = Budget.of(context)
    if not records:
        return {"batchItemFailures": []}
    pool = ThreadPoolExecutor(max_workers=min(sendgrid_api.CONCURRENCY, len(records)), thread_name_prefix="sender")
    try:
        futures = [pool.submit(_one, r, plugins, budget) for r in records]
        finished, _ = wait(futures, timeout=max(0.0, budget.answer_by - time.monotonic()))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    late = [_item_id(r) for r, f in zip(records, futures) if f not in finished]
    if late:
        log.error(json.dumps({"message": "records unfinished when the invocation had to answer: reported for "
                                         "a retry", "count": len(late), "ids": late}))
    answer = {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
                                    for r, f in zip(records, futures)
                                    if not (f in finished and f.exception() is None and f.result())]}
    metrics.SENDER.emit()
    return answer


def lambda_handler(event, context):
    return handle(event.get("Records", []), enabled_plugins(), context)
