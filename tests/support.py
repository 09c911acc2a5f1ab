"""Builders for the events the handlers receive, from the samples in tests/events/."""

from __future__ import annotations

import base64
import copy
import itertools
import json
from pathlib import Path

from handlers import dynamo

EVENTS = Path(__file__).parent / "events"
_sequence = itertools.count(1000)


def sample(name: str):
    return json.loads((EVENTS / name).read_text())


def proxy_event(body: bytes | str, headers: dict | None = None, *, base64_encoded: bool = False) -> dict:
    """An API Gateway REST proxy event carrying ``body`` (as API Gateway would)."""
    event = sample("apigw_proxy.json")
    raw = body if isinstance(body, bytes) else body.encode()
    if base64_encoded:
        event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
    else:
        event["body"] = raw.decode("utf-8")
    event["headers"].update(headers or {})
    return event


def stream_record(item: dict, event_name: str = "INSERT", old: dict | None = None) -> dict:
    """A DynamoDB Streams record (Lambda's shape) for the mail sender table."""
    record = copy.deepcopy(sample("stream_insert.json")["Records"][0])
    record["eventName"] = event_name
    record["eventID"] = f"event-{next(_sequence)}"
    ddb = record["dynamodb"]
    ddb["Keys"] = {"id": {"S": str(item["id"])}}
    ddb["SequenceNumber"] = str(next(_sequence)).rjust(28, "0")
    ddb.pop("NewImage")
    if event_name != "REMOVE":
        ddb["NewImage"] = dynamo.serialize(item)
    if old is not None:
        ddb["OldImage"] = dynamo.serialize(old)
    return record


def inserted(*items: dict) -> list[dict]:
    """Put ``items`` into the mail sender table; their INSERT stream records."""
    for item in items:
        put_item("TABLE_MAIL_SENDER", item)
    return [stream_record(item) for item in items]


def seed_item(item_id: str, to: list[tuple[str, str]], subject: str = "Test mail") -> dict:
    """A mail sender item in the seed's format (from / to as JSON strings)."""
    return {
        "id": item_id,
        "from": json.dumps({"email": "sender@example.com", "name": "Sender"}),
        "to": json.dumps([{"email": e, "name": n} for e, n in to]),
        "subject": subject,
        "content": "Hello from sendgrid-events.",
    }


def scan(env_var: str) -> list[dict]:
    """Every item of the table named by ``env_var``, as plain Python."""
    import os

    import boto3

    items = boto3.client("dynamodb").scan(TableName=os.environ[env_var])["Items"]
    return [dynamo.deserialize(i) for i in items]


def put_item(env_var: str, item: dict) -> None:
    import os

    import boto3

    boto3.client("dynamodb").put_item(TableName=os.environ[env_var], Item=dynamo.serialize(item))
