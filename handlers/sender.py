"""The sender Lambda: DynamoDB Streams records of the mail sender table in.

For each INSERT: check the item, claim it (so it is sent at most once), run
the ``before_send`` hooks, send it through SendGrid, record the sent log under
the X-Message-Id and write the outcome on the item. Returns a partial batch
response: records that failed transiently are listed for Lambda to retry.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from datetime import datetime, timezone

from handlers import dynamo, env
from handlers.mail import InvalidMail, Mail, parse
from handlers.manager import Plugins, enabled_plugins
from handlers.tables import MAIL_SENDER, SENT_LOG

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)

TIMEOUT_SECONDS = 10


class AlreadyClaimed(Exception):
    """Another delivery of this record claimed the item first."""


@functools.cache
def sendgrid_client():
    """The SendGrid API client, built once per cold start."""
    from sendgrid import SendGridAPIClient

    key = env.SENDGRID_API_KEY.get()
    if not key:
        raise RuntimeError("SENDGRID_API_KEY is not set")
    return SendGridAPIClient(api_key=key, host=env.SENDGRID_API_HOST.get())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def update_item(item_id: str, values: dict, condition: str | None = None, names: dict | None = None) -> None:
    values = {k: v for k, v in values.items() if v is not None}
    sets = ", ".join(f"#{k} = :{k}" for k in values)
    request = {
        "TableName": os.environ[MAIL_SENDER.env_var],
        "Key": {MAIL_SENDER.hash_key: {"S": item_id}},
        "UpdateExpression": f"SET {sets}",
        "ExpressionAttributeNames": {**{f"#{k}": k for k in values}, **(names or {})},
        "ExpressionAttributeValues": {f":{k}": v for k, v in dynamo.serialize(values).items()},
    }
    if condition:
        request["ConditionExpression"] = condition
    dynamo.client().update_item(**request)


def claim(item_id: str) -> None:
    """Mark the item ``sending`` unless any delivery touched it before."""
    dynamodb = dynamo.client()
    try:
        update_item(item_id, {"status": "sending", "claimedAt": now_iso()},
                    condition="attribute_not_exists(#status)")
    except dynamodb.exceptions.ConditionalCheckFailedException:
        raise AlreadyClaimed(item_id) from None


def send(mail: Mail) -> str:
    """Send through SendGrid; returns the X-Message-Id."""
    response = sendgrid_client().client.mail.send.post(
        request_body=mail.payload({"mailId": mail.id}), timeout=TIMEOUT_SECONDS
    )
    return response.headers.get("X-Message-Id")


def record_sent(mail: Mail, message_id: str, sent_at: str) -> None:
    days = int(env.SENT_LOG_TTL_DAYS.get())
    item = {
        "messageId": message_id,
        "from": mail.sender.to_json(),
        "to": [a.to_json() for a in mail.recipients],
        "subject": mail.subject,
        "mailId": mail.id,
        "sentAt": sent_at,
        "expiresAt": int(time.time()) + days * 86400 if days > 0 else None,
    }
    dynamo.client().put_item(TableName=os.environ[SENT_LOG.env_var], Item=dynamo.serialize(item))


def process(item: dict, plugins: Plugins) -> str:
    """Send one inserted item; returns its final status."""
    item_id = str(item["id"])
    claim(item_id)
    try:
        mail = parse(item)
    except InvalidMail as exc:
        update_item(item_id, {"status": "rejected", "error": str(exc)})
        return "rejected"
    plugins.hook.before_send(mail=mail)
    outcome = {"suppressed": dict(mail.dropped) or None}
    if mail.vetoed or not mail.recipients:
        update_item(item_id, {"status": "rejected", "error": mail.vetoed or "no recipient left", **outcome})
        return "rejected"
    message_id = send(mail)
    sent_at = now_iso()
    record_sent(mail, message_id, sent_at)
    update_item(item_id, {"status": "sent", "messageId": message_id, "sentAt": sent_at, **outcome})
    plugins.hook.after_send(mail=mail, message_id=message_id)
    return "sent"


def handle(records: list[dict], plugins: Plugins) -> dict:
    failures = []
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        item = dynamo.deserialize(record["dynamodb"]["NewImage"])
        try:
            status = process(item, plugins)
        except AlreadyClaimed:
            status = "already claimed"
        except Exception:
            log.exception("sending item %s failed", item.get("id"))
            failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            continue
        log.info(json.dumps({"message": "mail", "id": item.get("id"), "status": status}))
    return {"batchItemFailures": failures}


def lambda_handler(event, context):
    return handle(event.get("Records", []), enabled_plugins())
