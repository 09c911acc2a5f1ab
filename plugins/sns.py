"""Sink ``sns``: one SNS notification per accepted event of the configured types.

``SNS_EVENTS`` (default ``bounce,dropped``) names the event types notified
about. Each notification has a readable subject (``SendGrid bounce:
nobody@example.com - Invalid Address``), the record as a JSON body and message
attributes for subscription filter policies: ``event``, ``type`` and
``bounceClassification`` (when the event has them). Published with
PublishBatch, ten per call, failed entries retried inside the time budget.

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
from handlers.delivery import PartiallyWritten
from handlers.env import Var
from handlers.hookspecs import hookimpl

log = logging.getLogger(__name__)

SNS_TOPIC_ARN = Var("SNS_TOPIC_ARN", "The topic the sns plugin publishes to.")
SNS_EVENTS = Var("SNS_EVENTS", "Comma-separated event types the sns plugin notifies about.", "bounce,dropped")

BATCH = 10  # PublishBatch takes at most ten entries
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
    at = datetime.fromtimestamp(record["timestamp"], timezone.utc).isoformat()
    return json.dumps({"time": at, **record}, ensure_ascii=False, indent=2, default=str)


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


def publish(topic_arn: str, entries: list[dict]) -> None:
    """PublishBatch ``entries`` (at most ten); retry the ones SNS failed on its side."""
    published: set[str] = set()
    for attempt in range(ATTEMPTS):
        response = client().publish_batch(TopicArn=topic_arn, PublishBatchRequestEntries=entries)
        published |= {s["Id"] for s in response.get("Successful") or []}
        failed = response.get("Failed") or []
        refused = [f for f in failed if f.get("SenderFault")]
        if refused:
            raise NotPublished(f"SNS refused notifications: {refused}", published)
        if not failed:
            return
        again = {f["Id"] for f in failed}
        entries = [e for e in entries if e["Id"] in again]
        retry.pause(retry.full_jitter(attempt, BASE_DELAY, MAX_DELAY), then=aws.ATTEMPT_SECONDS)
    raise NotPublished(f"{len(entries)} notifications still failing after {ATTEMPTS} attempts", published)


def write(records: list[dict]) -> None:
    """Publish the notified records; when some fail, say which went out (``PartiallyWritten``).

    The webhook then marks those done, so SendGrid's retry does not notify them again.
    """
    wanted = notified_events()
    chosen = [r for r in records if r["event"] in wanted]
    done = [r["eventId"] for r in records if r["event"] not in wanted]  # nothing to publish: done
    if not chosen:
        return
    entries = [entry(str(i), r) for i, r in enumerate(chosen)]
    topic_arn = os.environ[SNS_TOPIC_ARN.name]
    try:
        for start in range(0, len(entries), BATCH):
            chunk = entries[start:start + BATCH]
            try:
                publish(topic_arn, chunk)
            except NotPublished as exc:
                done += [chosen[int(i)]["eventId"] for i in exc.published]
                raise
            done += [chosen[int(e["Id"])]["eventId"] for e in chunk]
    except Exception as exc:
        if len(done) > len(records) - len(chosen):
            raise PartiallyWritten(done, f"{len(done)} of {len(records)} records done: {exc}") from exc
        raise
    log.info(json.dumps({"message": "sns notifications", "published": len(entries)}))


@hookimpl
def register_sinks(register):
    register("sns", write, idempotent=False)


@hookimpl
def stack_settings(config):
    """The stack config ``snsEmails`` (addresses to subscribe) and ``snsEvents`` (types notified)."""
    from infra.config import ConfigError, string_list

    emails = string_list(config, "snsEmails", [])
    events = string_list(config, "snsEvents", []) or SNS_EVENTS.default.split(",")
    for email in emails:
        if not EMAIL.fullmatch(email):
            raise ConfigError("snsEmails", f"not an e-mail address: {email!r}")
    for event in events:
        if not EVENT_TYPE.fullmatch(event):
            raise ConfigError("snsEvents", f"not a SendGrid event type (like bounce): {event!r}")
    return {"emails": emails, "events": events}


@hookimpl
def infrastructure(stack):
    import pulumi_aws as aws

    settings = stack.settings["sns"]
    topic = aws.sns.Topic(
        "sns-notify",
        name=f"{stack.prefix}-notify",
        kms_master_key_id=stack.kms_key_arn or "alias/aws/sns",
        opts=stack.child_opts(),
    )
    for i, address in enumerate(settings["emails"]):
        aws.sns.TopicSubscription(
            f"sns-notify-email-{i}", topic=topic.arn, protocol="email", endpoint=address,
            opts=stack.child_opts(),
        )
    stack.add_env("webhook", SNS_TOPIC_ARN.name, topic.arn)
    stack.add_env("webhook", SNS_EVENTS.name, ",".join(settings["events"]))
    stack.allow("webhook", ["sns:Publish"], [topic.arn])
    stack.allow_key("webhook")  # publishing to a topic encrypted with the stack's key
    stack.export("snsTopicArn", topic.arn)
