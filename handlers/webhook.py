"""The webhook Lambda: SendGrid Event Webhook POST (API Gateway proxy) in.

A request goes through, in order: its size, its signature
(``handlers.signature``), its shape (a non-empty JSON array); then the batch
goes to ``handlers.reconcile`` (each event a record, a reject row or ignored),
its rejects are kept and its records go to ``handlers.delivery`` (each new
event to every sink once). What it answers, and why SendGrid cares (it
re-posts on anything but 2xx, for 24 hours):

- 200: the batch is stored; events that could not be processed are kept as
  rejects (``rejects`` table, raw JSON and reason), duplicates skipped.
- 403: not signed by a configured key. 400 / 413: not a batch of events.
  Nothing is written for either, whatever the body holds.
- 503: storing failed for a transient reason (DynamoDB, a sink: throttling,
  timeouts, errors, or the time budget ran out) or another delivery is
  handling the same events: SendGrid's retry finishes the work, without
  repeating what this attempt did. An event a sink can never store is a
  reject, not a 503 (``handlers.delivery.Rejected``).

Every answer comes within ``ANSWER_SECONDS`` (API Gateway gives up at 29 s):
the handler runs inside a time budget (``handlers.retry.budget``) that every
retry loop and AWS call below it respects.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from typing import Callable

from handlers import aws, delivery, metrics, retry, signature
from handlers.apigw import BadRequest, Refused, raw_body, refusal, response
from handlers.manager import Plugins, enabled_plugins
from handlers.reconcile import keep_rejects, reconcile
from handlers.redact import describe

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

MAX_BODY_BYTES = 1024 * 1024  # SendGrid posts at most 768 KB
EVENT_TYPE_NAME = re.compile(r"[a-z_]{1,40}")  # what an event type logged by name looks like
ANSWER_SECONDS = 20.0  # every answer, 503 included, within this (API Gateway waits 29 s)
MARGIN_SECONDS = 1.0  # of it, kept for building the answer; and kept from Lambda's own remaining time


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_batch(body: bytes) -> list:
    if not body:
        raise BadRequest("body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None
    try:
        batch = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise BadRequest("body is nested too deeply") from None
    except ValueError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(batch, list):
        raise BadRequest("body is not a JSON array of events")
    if not batch:
        raise BadRequest("body is an empty array")
    return batch


def receive(body: bytes, plugins: Plugins) -> dict:
    """Process one verified webhook batch; returns the counts (raises when it could not store it)."""
    events = parse_batch(body)
    outcome = reconcile(events, plugins.event_types)
    keep_rejects(outcome.rejects)
    report = delivery.deliver(outcome.records, plugins.sinks, keep_rejects)
    accepted = [r for r in report.fresh if r["eventId"] not in report.refused]
    counts = {
        "received": len(events),
        "accepted": len(accepted),
        "duplicates": report.duplicates,
        "ignored": sum(outcome.ignored.values()),
        "rejected": len(outcome.rejects) + len(report.refused),
        "orphans": sum(1 for r in accepted if not r["matched"]),
    }
    rejects = outcome.rejects + report.rejected
    for name, count in counts.items():
        metrics.WEBHOOK.add(metrics.WEBHOOK_COUNTS[name], count)
    metrics.WEBHOOK.note(acceptedTypes=loggable(Counter(r["event"] for r in accepted)))
    log.info(json.dumps({"message": "webhook batch", **counts, "ignoredTypes": loggable(outcome.ignored),
                         "rejectReasons": sorted({r["reason"][:120] for r in rejects})[:10]}))
    return counts


def loggable(types: Counter) -> dict[str, int]:
    """Ignored event types for the log: names as SendGrid's look; anything else (a sender may post an
    address as a type) is counted as ``(other)``."""
    named = Counter()
    for name, count in types.items():
        named[name if EVENT_TYPE_NAME.fullmatch(name) else "(other)"] += count
    return dict(named.most_common(20))


def lambda_handler(event, context):
    if "Records" in event:  # ``ingest: queue``: a batch of queued posts (``handlers.ingest``)
        from handlers import ingest

        return ingest.consume(event, context=context)
    if "replay" in event:  # invoked directly by the operator (handlers.replay), not through API Gateway
        from handlers import replay  # only then: not on a cold start's path

        with retry.budget(budget_seconds(context)):
            return replay.replay(event, enabled_plugins())
    return handle(event, context=context)


def handle(event: dict, plugins: Callable[[], Plugins] = enabled_plugins, context=None) -> dict:
    """Answer one API Gateway proxy event (``plugins`` gives the plugin set; tests pass their own), then
    write the invocation's metrics line (``handlers.metrics.WEBHOOK``)."""
    started = time.monotonic()
    metrics.WEBHOOK.start()
    result = _answer(event, plugins, context)
    record(result["statusCode"], started)
    metrics.WEBHOOK.note(status=result["statusCode"])
    metrics.WEBHOOK.emit()
    return result


def record(status: int, started: float) -> None:
    """Count one post answered ``status`` (a refusal by its status) and its duration, since ``started``."""
    recorder = metrics.WEBHOOK
    recorder.add("WebhookPosts")
    if status in metrics.REFUSED_STATUSES:
        recorder.add(metrics.webhook_refused(status))
    recorder.observe("WebhookDuration", metrics.since(started))


def budget_seconds(context) -> float:
    """The seconds this invocation may work: ``ANSWER_SECONDS`` less the margin, or less if Lambda has less."""
    seconds = ANSWER_SECONDS - MARGIN_SECONDS
    if context is not None:
        seconds = min(seconds, context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS)
    return seconds


def _answer(event: dict, plugins: Callable[[], Plugins], context) -> dict:
    try:
        body = raw_body(event, MAX_BODY_BYTES)
    except Refused as exc:  # a bad request
        return refusal("webhook", exc, log)
    return answer(body, event.get("headers"), time.time(), plugins, context)


def answer(body: bytes, headers: dict | None, now: float, plugins: Callable[[], Plugins], context) -> dict:
    """Verify one post (its signature's age as of ``now``: when it was received) and store its batch; the
    answer (200 + counts, a refusal, or 503). The direct path and the queue's consumer (``handlers.ingest``)."""
    try:
        signature.verify(body, headers, signature.settings(), now)
        with retry.budget(budget_seconds(context)):
            counts = receive(body, plugins())
    except Refused as exc:  # a bad request, a bad signature, a broken setting, a concurrent delivery
        return refusal("webhook", exc, log)
    except Exception as exc:  # DynamoDB, a sink, the time budget: not stored, SendGrid posts the batch again
        log.error(json.dumps({"message": "webhook batch not stored", "status": 503,
                              "code": aws.error_code(exc), "error": describe(exc)}))
        return response(503, {"error": "the batch could not be stored; it will be accepted on retry"})
    return response(200, counts)
