"""The webhook function's queue consumer (``ingest: queue``): SQS batches of queued posts.

API Gateway put each post on the queue as it came (``infra.ingest``): the raw
body, the signature headers and its receive time as message attributes
(``RECEIVED_AT``, ``SIGNATURE``, ``TIMESTAMP``). Each message is one post, and
goes through the direct path's own step (``handlers.webhook.answer``): the
signature (its age as of the receive time, not now: a post that waited in the
queue is as old as when SendGrid sent it), reconcile, the sinks, exactly once.
Then, by the answer the direct path would have given:

- 200: stored; 4xx (forged, unsigned, not a batch): counted
  (``WebhookRefused403`` ...), logged, never stored, never retried. Either
  way the message is deleted (Lambda deletes what is not reported).
- 503 (DynamoDB or a sink down, the budget, a concurrent delivery, a broken
  key setting): reported in ``batchItemFailures``; SQS hands it out again
  after the visibility timeout, and after ``MAX_RECEIVES`` receives
  (``infra.ingest``) it moves to the dead-letter queue, to be re-driven.

Messages are taken one after the other, each inside its own 20 s budget; one
is not started with less than ``START_SECONDS`` of the invocation left (it
is reported for a retry instead). One metrics line per batch.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable

from handlers import metrics, webhook
from handlers.apigw import BadRequest, refusal
from handlers.manager import Plugins, enabled_plugins
from handlers.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

RECEIVED_AT = "receivedAt"  # API Gateway's $context.requestTimeEpoch: milliseconds
SIGNATURE = "signature"
TIMESTAMP = "timestamp"
START_SECONDS = 5.0  # a message is not started with less of the invocation left


def consume(event: dict, plugins: Callable[[], Plugins] = enabled_plugins, context=None) -> dict:
    """Process an SQS event's records; the partial batch response (the messages to receive again)."""
    metrics.WEBHOOK.start()
    retry = []
    for message in event.get("Records") or []:
        if context is not None and context.get_remaining_time_in_millis() / 1000 < START_SECONDS:
            retry.append(message["messageId"])
            continue
        started = time.monotonic()
        status = process(message, plugins, context)["statusCode"]
        webhook.record(status, started)
        if status >= 500:
            retry.append(message["messageId"])
    metrics.WEBHOOK.add("QueueRetries", len(retry))
    metrics.WEBHOOK.emit()
    if retry:
        log.warning(json.dumps({"message": "queued posts left for a retry", "count": len(retry)}))
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in retry]}


def process(message: dict, plugins: Callable[[], Plugins], context=None) -> dict:
    """One queued post: the answer the direct path would have given it (``handlers.webhook.answer``)."""
    received = received_at(message)
    if received is None:
        return refusal("webhook", BadRequest(f"queued post without a receive time ({RECEIVED_AT})"), log)
    metrics.WEBHOOK.observe("QueueWait", max(0.0, time.time() - received) * 1000)
    body = (message.get("body") or "").encode("utf-8")
    headers = {header: value for header, value in ((SIGNATURE_HEADER, _attribute(message, SIGNATURE)),
                                                   (TIMESTAMP_HEADER, _attribute(message, TIMESTAMP))) if value}
    return webhook.answer(body, headers, received, plugins, context)


def received_at(message: dict) -> float | None:
    """When API Gateway received the post (seconds): its ``RECEIVED_AT`` attribute, else when SQS got it."""
    for value in (_attribute(message, RECEIVED_AT), (message.get("attributes") or {}).get("SentTimestamp")):
        if isinstance(value, str) and value.isdigit():
            return int(value) / 1000
    return None


def _attribute(message: dict, name: str) -> str | None:
    found = (message.get("messageAttributes") or {}).get(name)
    return found.get("stringValue") if isinstance(found, dict) else None
