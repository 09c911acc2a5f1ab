"""The webhook Lambda: SendGrid Event Webhook POST (API Gateway proxy) in.

The handler only adapts the proxy event; ``receive`` does the work: parse the
batch, reconcile it with the sent log, hand the records to every enabled sink.
"""

from __future__ import annotations

import base64
import json
import logging
import os

from handlers import dynamo
from handlers.manager import Plugins, enabled_plugins
from handlers.reconcile import reconcile
from handlers.tables import SENT_LOG

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)


class BadRequest(ValueError):
    """The request is not a batch of events; answered with 400."""


def response(status: int, body: dict) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def raw_body(event: dict) -> bytes:
    """The request body exactly as received."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except ValueError:
            raise BadRequest("body is not valid base64") from None
    return body.encode("utf-8")


def parse_batch(body: bytes) -> list:
    if not body:
        raise BadRequest("body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None
    try:
        batch = json.loads(text)
    except ValueError:
        raise BadRequest("body is not JSON") from None
    if not isinstance(batch, list):
        raise BadRequest("body is not a JSON array of events")
    return batch


def lookup_sent_log(message_ids: list[str]) -> dict[str, dict]:
    return dynamo.batch_get(os.environ[SENT_LOG.env_var], SENT_LOG.hash_key, message_ids)


def receive(body: bytes, plugins: Plugins) -> dict:
    """Process one webhook batch; returns the counts."""
    outcome = reconcile(parse_batch(body), plugins.event_types, lookup_sent_log)
    for sink in plugins.sinks:
        sink.write(outcome.records)
    counts = {
        "received": len(outcome.records) + len(outcome.rejects) + sum(outcome.ignored.values()),
        "accepted": len(outcome.records),
        "rejected": len(outcome.rejects),
        "ignored": sum(outcome.ignored.values()),
        "orphans": outcome.orphans,
    }
    log.info(json.dumps({"message": "webhook batch", **counts, "ignoredTypes": dict(outcome.ignored)}))
    return counts


def lambda_handler(event, context):
    try:
        counts = receive(raw_body(event), enabled_plugins())
    except BadRequest as exc:
        return response(400, {"error": str(exc)})
    return response(200, counts)
