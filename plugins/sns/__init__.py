"""Sink ``sns``: one SNS notification per accepted event of the configured types.

``SNS_EVENTS`` (default ``bounce,dropped``) names the event types notified
about. Each notification has a readable subject (``SendGrid bounce:
nobody@example.com - Invalid Address``), the record as a JSON body and message
attributes for subscription filter policies: ``event``, ``type`` and
``bounceClassification`` (when the event has them). Published with
PublishBatch: at most ten entries and 256 KiB (bodies and attributes) per
call; entries SNS failed on its side are retried inside the time budget. A
notification SNS can never take (over 256 KiB even as compact JSON, or
refused as an invalid parameter) is reported as ``Rejected``: its event goes
to the rejects table and the rest of the batch is answered 2xx.

A PublishBatch whose answer is lost (a read timeout, a dropped connection)
leaves unknown whether SNS published its entries; they count as not
published, so SendGrid's retry (or botocore's own retry of that call)
publishes them again: in that case a notification may arrive twice, never
not at all.

A notification cannot be taken back, so the sink registers with
``idempotent=False``: the core hands it each event once (webhook dedup).
The topic (encrypted with the stack's KMS key, or ``alias/aws/sns``) and its
e-mail subscriptions (config ``snsEmails``) come from ``infrastructure``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from datetime import datetime, timezone

from handlers import aws, retry
from handlers.delivery import PartiallyWritten, Rejected
from handlers.env import Var
from handlers.hookspecs import hookimpl

log = logging.getLogger(__name__)

SNS_TOPIC_ARN = Var("SNS_TOPIC_ARN", "The topic the sns plugin publishes to.")
SNS_EVENTS = Var("SNS_EVENTS", "Comma-separated event types the sns plugin notifies about.", "bounce,dropped")

BATCH = 10  # PublishBatch takes at most ten entries ...
MAX_BYTES = 256 * 1024  # ... whose bodies and attributes add up to 256 KiB at most; one message too
ATTEMPTS = 5
BASE_DELAY, MAX_DELAY = 0.05, 0.8  # seconds: backoff between PublishBatch retries
SUBJECT_MAX = 99  # SNS: ASCII, no line breaks, under 100 characters
ATTRIBUTES = ("event", "type", "bounceClassification")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")  # the stack config's snsEmails
EVENT_TYPE = re.compile(r"[a-z_]+")  # SendGrid's event names; snsEvents


class NotPublished(RuntimeError):
    """SNS refused or kept failing some notifications; ``published``: the entry ids that did go out."""

    def __init__(self, message: str, published=frozenset()):
        super().__init__(message)
        self.published = frozenset(published)


@functools.cache
def client():
    return aws.client("sns")


def notified_events() -> frozenset[str]:
    return frozenset(e.strip() for e in SNS_EVENTS.get().split(",") if e.strip())


def subject(record: dict) -> str:
    kind = record["event"]
    if record.get("type") and record["type"] not in (kind, "dropped"):
        kind = f"{kind} ({record['type']})"
    text = f"SendGrid {kind}: {record['email']}"
    detail = record.get("bounceClassification") or record.get("reason")
    if detail:
        text += f" - {detail}"
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text if len(text) <= SUBJECT_MAX else text[:SUBJECT_MAX - 3] + "..."


def body(record: dict) -> str:
    """The record as JSON, indented for people; compact when indented it would be too long for SNS."""
    at = datetime.fromtimestamp(record["timestamp"], timezone.utc).isoformat()
    data = {"time": at, **record}
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return text


def entry(entry_id: str, record: dict) -> dict:
    return {
        "Id": entry_id,
        "Subject": subject(record),
        "Message": body(record),
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": str(record[name])}
            for name in ATTRIBUTES if record.get(name) not in (None, "")
        },
    }


def size(entry_: dict) -> int:
    """The bytes SNS counts for an entry: its body, subject and every attribute's name, type and value."""
    parts = [entry_["Message"], entry_["Subject"]]
    for name, value in entry_["MessageAttributes"].items():
        parts += [name, value["DataType"], value["StringValue"]]
    return sum(len(p.encode("utf-8", "surrogatepass")) for p in parts)


def batches(entries: list[dict]):
    """``entries`` in PublishBatch calls: at most ``BATCH`` entries and ``MAX_BYTES`` each, in order."""
    batch, total = [], 0
    for entry_ in entries:
        n = size(entry_)
        if batch and (len(batch) == BATCH or total + n > MAX_BYTES):
            yield batch
            batch, total = [], 0
        batch.append(entry_)
        total += n
    if batch:
        yield batch


class Outcome:
    """What PublishBatch calls did: entry ids published, and those SNS refused for good (id -> why)."""

    def __init__(self):
        self.published: set[str] = set()
        self.refused: dict[str, tuple[str, str]] = {}

    def publish(self, topic_arn: str, entries: list[dict]) -> None:
        """PublishBatch ``entries``; retry the ones SNS failed on its side, inside the time budget.

        An entry SNS refuses as invalid is recorded in ``refused``; one it
        refuses otherwise (its KMS key, authorization: the topic's trouble,
        not the entry's), or still failing after the last attempt, raises
        ``NotPublished``. A whole request refused as invalid raises that
        error (``aws.isolate`` splits the batch).
        """
        for attempt in range(ATTEMPTS):
            response = client().publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
            self.published |= {s["Id"] for s in response.get("Successful") or []}
            failed = response.get("Failed") or []
            for f in failed:
                if f.get("SenderFault") and f.get("Code") in aws.PERMANENT_CODES:
                    self.refused[f["Id"]] = (f"SNS refused the notification ({f['Code']})", f.get("Message") or "")
            trouble = [f["Code"] for f in failed if f.get("SenderFault") and f["Id"] not in self.refused]
            if trouble:
                raise NotPublished(f"SNS refused notifications: {sorted(set(trouble))}", self.published)
            again = {f["Id"] for f in failed if f["Id"] not in self.refused}
            if not again:
                return
            entries = [e for e in entries if e["Id"] in again]
            if attempt < ATTEMPTS - 1:
                retry.pause(retry.full_jitter(attempt, BASE_DELAY, MAX_DELAY), then=aws.ATTEMPT_SECONDS)
        raise NotPublished(f"{len(entries)} notifications still failing after {ATTEMPTS} attempts", self.published)


def write(records: list[dict]) -> None:
    """Publish the notified records.

    Records that need no notification are done at once. A notification SNS
    can never take raises ``Rejected`` (after the others are published);
    when publishing fails midway, ``PartiallyWritten`` says which went out,
    so the webhook marks those done and SendGrid's retry does not notify
    them again.
    """
    wanted = notified_events()
    chosen = [r for r in records if r["event"] in wanted]
    done = [r["eventId"] for r in records if r["event"] not in wanted]  # nothing to publish: done
    if not chosen:
        return
    entries, rejected, details = [], {}, {}
    for i, record in enumerate(chosen):
        entry_ = entry(str(i), record)
        if size(entry_) > MAX_BYTES:
            rejected[record["eventId"]] = f"notification is {size(entry_)} bytes, over SNS's {MAX_BYTES}"
        else:
            entries.append(entry_)
    topic_arn, outcome = os.environ[SNS_TOPIC_ARN.name], Outcome()
    try:
        for batch in batches(entries):
            for refused, exc in aws.isolate(batch, functools.partial(outcome.publish, topic_arn)):
                outcome.refused[refused["Id"]] = (f"SNS refused the notification ({aws.error_code(exc)})",
                                                  str(exc)[:1000])
    except Exception as exc:
        failure = exc
    else:
        failure = None
    for i, (reason, detail) in outcome.refused.items():
        event_id = chosen[int(i)]["eventId"]
        rejected[event_id], details[event_id] = reason, detail
    if failure is not None:
        done += [chosen[int(i)]["eventId"] for i in outcome.published]
        if done or rejected:
            raise PartiallyWritten(done, f"{len(done)} of {len(records)} records done: {failure}",
                                   rejected=rejected, details=details) from failure
        raise failure
    log.info(json.dumps({"message": "sns notifications", "published": len(outcome.published),
                         "rejected": len(rejected)}))
    if rejected:
        raise Rejected(rejected, details=details)


@hookimpl
def register_sinks(register):
    register("sns", write, idempotent=False)
