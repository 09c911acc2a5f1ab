"""Helpers for the webhook tests: signed posts, recording sinks, DynamoDB call counts and faults."""

from __future__ import annotations

import io
import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from devstack.eventwebhook import WebhookKey
from handlers import dynamo, webhook
from handlers.manager import Sink
from tests.support import proxy_event

WRITES = {"BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"}


@dataclass
class Recorder:
    """A sink that remembers every record it was handed (``fail``: raise instead, once per call)."""

    name: str = "recorder"
    idempotent: bool = False
    seen: list[dict] = field(default_factory=list)
    fail: int = 0
    block: threading.Event | None = None
    entered: threading.Event = field(default_factory=threading.Event)

    def write(self, records: list[dict]) -> None:
        self.entered.set()
        if self.block is not None:
            assert self.block.wait(10), "the test never released the sink"
        if self.fail:
            self.fail -= 1
            raise RuntimeError("sink down")
        self.seen.extend(records)

    @property
    def sink(self) -> Sink:
        return Sink(self.name, self.write, self.idempotent, "tests")

    def counts(self) -> Counter:
        return Counter(r["eventId"] for r in self.seen)


class Calls:
    """Counts the API calls made with the handlers' DynamoDB client (``dynamo.client()``)."""

    def __init__(self):
        self.made: Counter = Counter()
        dynamo.client().meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model, **_):
        self.made[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.made.values())

    @property
    def writes(self) -> int:
        return sum(n for name, n in self.made.items() if name in WRITES)


class _Raw(io.BytesIO):
    def stream(self, **_):
        while chunk := self.read(65536):
            yield chunk


def _response(status: int, body: dict) -> AWSResponse:
    return AWSResponse("https://dynamodb.local/", status, {"Content-Type": "application/x-amz-json-1.0"},
                       _Raw(json.dumps(body).encode()))


class Faults:
    """DynamoDB failing at random, the ways it does.

    Before a request reaches moto: a throttle (400), an internal error (500),
    or, for batch calls, everything handed back unprocessed. After moto has
    applied a request: the call raises anyway (the answer was lost).
    """

    def __init__(self, rate: float, seed: int = 7):
        self.rate, self.random, self.injected = rate, random.Random(seed), Counter()
        self.on = True
        events = dynamo.client().meta.events
        events.register_first("before-send.dynamodb", self._before)
        events.register("after-call.dynamodb", self._after)

    def _before(self, request, **_):
        if not self.on or self.random.random() >= self.rate:
            return None
        operation = request.headers["X-Amz-Target"].decode().split(".")[-1]
        kind = self.random.choice(["throttle", "internal", "unprocessed"])
        self.injected[kind] += 1
        if kind == "unprocessed" and operation == "BatchWriteItem":
            return _response(200, {"UnprocessedItems": json.loads(request.body)["RequestItems"]})
        if kind == "unprocessed" and operation == "BatchGetItem":
            return _response(200, {"Responses": {}, "UnprocessedKeys": json.loads(request.body)["RequestItems"]})
        if kind == "internal":
            return _response(500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                                   "message": "injected"})
        return _response(400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                               "message": "injected"})

    def _after(self, model, **_):
        if self.on and model.name in WRITES and self.random.random() < self.rate / 2:
            self.injected["lost answer"] += 1
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected after"}}, model.name)


class Endpoint:
    """The webhook as SendGrid sees it: signed posts in, (status, answer) out."""

    def __init__(self, plugins, key: WebhookKey):
        self.plugins, self.key = plugins, key

    def post(self, events=None, *, body: bytes | None = None, headers: dict | None = None,
             sign: bool = True, base64_encoded: bool = False, timestamp: int | None = None):
        if body is None:  # as SendGrid writes it, but with \u escapes, which can carry lone surrogates
            body = json.dumps(events, separators=(",", ":")).encode() + b"\r\n"
        signed = self.key.headers(body, timestamp) if sign else {}
        event = proxy_event(body, {**signed, **(headers or {})}, base64_encoded=base64_encoded)
        answer = webhook.handle(event, lambda: self.plugins)
        return answer["statusCode"], json.loads(answer["body"])


@pytest.fixture
def endpoint(stack, monkeypatch):
    """``endpoint(names, *extra_sinks)``: an ``Endpoint`` with a fresh stack and a fresh signing key."""
    key = WebhookKey()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEYS", key.public_key_b64)
    monkeypatch.delenv("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", raising=False)
    monkeypatch.delenv("SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE", raising=False)

    def make(names="bounce,dropped,dynamodb", *sinks: Sink) -> Endpoint:
        plugins = stack(names)
        plugins.sinks.extend(sinks)
        return Endpoint(plugins, key)
    return make


def bounce(n: int, message: str = "msg", **extra) -> dict:
    """A bounce event (its own ``sg_event_id`` and per-recipient message id)."""
    return {"email": f"user{n}@bounce.test", "timestamp": 1764400000 + n, "event": "bounce", "type": "bounce",
            "status": "5.1.1", "reason": "550 no such user", "bounce_classification": "Invalid Address",
            "sg_event_id": f"ev-{message}-{n}", "sg_message_id": f"{message}.filter-{n}", **extra}
