"""Helpers for the webhook tests: signed posts, recording sinks, DynamoDB call counts and faults."""

from __future__ import annotations

import io
import json
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from moto.core.models import botocore_stubber

from devstack.eventwebhook import WebhookKey
from handlers import aws, dynamo, ingest, retry, webhook
from handlers.manager import Sink
from infra.config import INGEST_MODES
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


def _xml(status: int, body: str) -> AWSResponse:
    return AWSResponse("https://sns.local/", status, {"Content-Type": "text/xml"}, _Raw(body.encode()))


SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"


def _sns_error(status: int, code: str) -> AWSResponse:
    kind = "Sender" if status < 500 else "Receiver"
    return _xml(status, f'<ErrorResponse xmlns="{SNS_NS}"><Error><Type>{kind}</Type><Code>{code}</Code>'
                        f"<Message>injected</Message></Error><RequestId>r</RequestId></ErrorResponse>")


def sns_entries(request) -> dict[str, str]:
    """A PublishBatch request's entries: Id -> Message."""
    body = request.body if isinstance(request.body, str) else request.body.decode()
    form = {k: v[0] for k, v in parse_qs(body).items()}
    ids = {k.rsplit(".", 1)[0]: v for k, v in form.items() if k.endswith(".Id")}
    return {entry_id: form.get(f"{prefix}.Message", "") for prefix, entry_id in ids.items()}


def sns_failed(failed: dict[str, tuple[str, bool]]) -> AWSResponse:
    """A PublishBatch answer: each entry Id -> (Code, SenderFault) failed, none published."""
    members = "".join(f"<member><Id>{i}</Id><Code>{code}</Code><SenderFault>{str(fault).lower()}</SenderFault>"
                      f"<Message>injected {code}</Message></member>" for i, (code, fault) in failed.items())
    return _xml(200, f'<PublishBatchResponse xmlns="{SNS_NS}"><PublishBatchResult><Successful/>'
                     f"<Failed>{members}</Failed></PublishBatchResult>"
                     f"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></PublishBatchResponse>")


def operation(service: str, request) -> str:
    if service == "dynamodb":
        return request.headers["X-Amz-Target"].decode().split(".")[-1]
    body = request.body if isinstance(request.body, str) else request.body.decode()
    return parse_qs(body).get("Action", [""])[0]


class FakeClock:
    """Time for the handlers' budget that passes only when something waits: botocore's and the
    handlers' sleeps (``time.sleep``) and calls a fault makes slow (``advance``)."""

    def __init__(self, monkeypatch):
        self.now = 1000.0
        monkeypatch.setattr(retry, "clock", lambda: self.now)
        monkeypatch.setattr(time, "sleep", self.advance)

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


# How an attempt fails, per service: (before it reaches the service) -> response, or raises.
def _throttle(service, request, clock):
    if service == "dynamodb":
        return _response(400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                               "message": "injected"})
    return _sns_error(400, "Throttling")


def _internal(service, request, clock):
    if service == "dynamodb":
        return _response(500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                               "message": "injected"})
    return _sns_error(500, "InternalError")


def _unprocessed(service, request, clock):
    """DynamoDB hands the batch back; SNS fails every entry on its side."""
    name = operation(service, request)
    if name == "BatchWriteItem":
        return _response(200, {"UnprocessedItems": json.loads(request.body)["RequestItems"]})
    if name == "BatchGetItem":
        return _response(200, {"Responses": {}, "UnprocessedKeys": json.loads(request.body)["RequestItems"]})
    if name == "PublishBatch":
        return sns_failed({i: ("InternalError", False) for i in sns_entries(request)})
    return _internal(service, request, clock)


def _refused(service, request, clock):
    raise EndpointConnectionError(endpoint_url=request.url)


def _blackhole(service, request, clock):
    clock.advance(aws.CONNECT_TIMEOUT)
    raise ConnectTimeoutError(endpoint_url=request.url)


def _slow(service, request, clock):
    clock.advance(aws.ATTEMPT_SECONDS)
    raise ReadTimeoutError(endpoint_url=request.url)


KINDS = {"throttle": _throttle, "internal": _internal, "unprocessed": _unprocessed, "refused": _refused,
         "blackhole": _blackhole, "slow": _slow}
QUICK = ("throttle", "internal", "unprocessed")


def intercept(client, handler) -> None:
    """Put ``handler(request)`` in front of moto for ``client``'s calls: its answer (or exception)
    replaces moto's, which then never applies the request; None passes the request on.

    (Every before-send handler runs and the first answer wins, so a handler registered beside
    moto's would answer while moto still applied the request.)
    """
    chain = client.meta.__dict__.setdefault("test_front", [])
    if not chain:
        def front(request, **kwargs):
            for each in chain:
                answer = each(request)
                if answer is not None:
                    return answer
            return botocore_stubber(request=request, **kwargs)
        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register("before-send", front)
    chain.append(handler)


class Faults:
    """A service failing at random, the ways it does (``kinds``; ``rate`` 1: always).

    Before a request reaches moto: one of ``kinds`` (see ``KINDS``); the slow
    ones move ``clock``. After moto has applied a write (``lost`` > 0): the
    call raises anyway (the answer was lost; ``lost_requests`` keeps those
    requests). ``on = False`` clears it.
    """

    def __init__(self, rate: float, seed: int = 7, *, client=None, kinds=QUICK, lost: float | None = None,
                 clock: FakeClock | None = None, operations: frozenset[str] | None = None):
        self.rate, self.random, self.injected = rate, random.Random(seed), Counter()
        self.kinds, self.lost, self.clock, self.operations = kinds, rate / 2 if lost is None else lost, clock, operations
        self.on, self.lost_requests, self._last = True, [], None
        client = client or dynamo.client()
        self.service = client.meta.service_model.service_id.hyphenize()
        intercept(client, self._before)
        client.meta.events.register(f"after-call.{self.service}", self._after)

    def _wanted(self, name: str) -> bool:
        return self.on and (self.operations is None or name in self.operations)

    def _before(self, request):
        if not self._wanted(operation(self.service, request)) or self.random.random() >= self.rate:
            self._last = request
            return None
        kind = self.random.choice(self.kinds)
        self.injected[kind] += 1
        return KINDS[kind](self.service, request, self.clock)

    def _after(self, model, **_):
        # Only a request this front passed on to moto was applied: one answered before it (by a fault
        # of its own, or by a handler ahead of it in the chain, e.g. Poison) leaves none here, and its
        # lost answer is one more error, not a request to count as applied.
        request, self._last = self._last, None
        writes = WRITES | {"PublishBatch"}
        if self._wanted(model.name) and model.name in writes and self.random.random() < self.lost:
            self.injected["lost answer"] += 1
            if request is not None:
                self.lost_requests.append(request)  # applied, but the caller cannot know
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected after"}}, model.name)


class Poison:
    """What only the real services refuse, for good, whenever it is sent (moto takes it).

    DynamoDB: a BatchWriteItem into one of ``tables`` (logical names) holding
    ``marker`` anywhere is refused whole with a ValidationException, as
    DynamoDB refuses a batch with one bad item; a TransactWriteItems putting
    such an item is cancelled, with a ValidationError for that put (and
    "None" for the others), as DynamoDB cancels one. SNS (``sns_client``): a
    PublishBatch entry holding it fails as InvalidParameter (sender's fault);
    the entries beside it fail on SNS's side, to be sent again.
    """

    def __init__(self, marker: str = "POISON", tables=("bounce", "event_history"), sns_client=None):
        self.marker, self.tables, self.refused = marker, tables, Counter()
        intercept(dynamo.client(), self._dynamodb)
        if sns_client is not None:
            intercept(sns_client, self._sns)

    def _names(self) -> set:
        """The deployed names of ``tables``."""
        return {os.environ.get(f"TABLE_{t.upper()}") for t in self.tables}

    def _dynamodb(self, request):
        called = operation("dynamodb", request)
        if called == "TransactWriteItems":
            return self._transaction(request)
        if called != "BatchWriteItem":
            return None
        names = self._names()
        items = json.loads(request.body)["RequestItems"]
        if not any(name in names and self.marker in json.dumps(puts) for name, puts in items.items()):
            return None
        self.refused["dynamodb"] += 1
        return _response(400, {"__type": "com.amazon.coral.validate#ValidationException",
                               "message": "One or more parameter values were invalid: injected"})

    def _transaction(self, request):
        names = self._names()
        puts = [action.get("Put", {}) for action in json.loads(request.body)["TransactItems"]]
        bad = [put.get("TableName") in names and self.marker in json.dumps(put.get("Item")) for put in puts]
        if not any(bad):
            return None
        self.refused["dynamodb"] += 1
        reasons = [{"Code": "ValidationError", "Message": "One or more parameter values were invalid: injected"}
                   if refused else {"Code": "None"} for refused in bad]
        return _response(400, {"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                               "message": "Transaction cancelled", "CancellationReasons": reasons})

    def _sns(self, request):
        if operation("sns", request) != "PublishBatch":
            return None
        entries = sns_entries(request)
        if not any(self.marker in message for message in entries.values()):
            return None
        self.refused["sns"] += 1
        return sns_failed({i: ("InvalidParameter", True) if self.marker in message else ("InternalError", False)
                           for i, message in entries.items()})


def body_of(events) -> bytes:
    """A post's body as SendGrid writes it, but with \\u escapes, which can carry lone surrogates."""
    return json.dumps(events, separators=(",", ":")).encode() + b"\r\n"


def queued(body: bytes, headers: dict, received_ms: int | None = None) -> dict:
    """The SQS record Lambda hands the webhook for a post that API Gateway queued (``ingest: queue``): the
    program's own request template rendered, the form SQS would read, the message it would keep."""
    from devstack import vtl
    from devstack.queue_poller import lambda_message
    from infra.ingest import REQUEST_TEMPLATE

    received_ms = int(time.time() * 1000) if received_ms is None else received_ms
    form = parse_qs(vtl.render(REQUEST_TEMPLATE, vtl.Scope(body.decode("utf-8"), headers,
                                                           {"requestTimeEpoch": received_ms})),
                    keep_blank_values=True, strict_parsing=True)
    attributes, i = {}, 1
    while f"MessageAttribute.{i}.Name" in form:
        [name], [kind], [value] = (form[f"MessageAttribute.{i}.{part}"]
                                   for part in ("Name", "Value.DataType", "Value.StringValue"))
        attributes[name] = {"DataType": kind, "StringValue": value}
        i += 1
    assert form["Action"] == ["SendMessage"]
    return lambda_message({"MessageId": f"m-{random.getrandbits(64):x}", "ReceiptHandle": "r",
                           "Body": form["MessageBody"][0], "Attributes": {"SentTimestamp": str(received_ms)},
                           "MessageAttributes": attributes}, "arn:aws:sqs:us-east-1:123456789012:ingest", "us-east-1")


class Endpoint:
    """The webhook as SendGrid sees it: signed posts in, (status, answer) out.

    ``ingest``: ``direct`` (API Gateway invokes the function) or ``queue``
    (the post is queued as API Gateway's template makes it, and the answer is
    what the function's queue consumer made of it: ``handlers.ingest.process``).
    """

    def __init__(self, plugins, key: WebhookKey, ingest: str = "direct"):
        self.plugins, self.key, self.ingest = plugins, key, ingest

    def post(self, events=None, *, body: bytes | None = None, headers: dict | None = None,
             sign: bool = True, base64_encoded: bool = False, timestamp: int | None = None, context=None):
        if body is None:
            body = body_of(events)
        signed = self.key.headers(body, timestamp) if sign else {}
        if self.ingest == "queue":
            answer = ingest.process(queued(body, {**signed, **(headers or {})}), lambda: self.plugins, context)
        else:
            event = proxy_event(body, {**signed, **(headers or {})}, base64_encoded=base64_encoded)
            answer = webhook.handle(event, lambda: self.plugins, context)
        return answer["statusCode"], json.loads(answer["body"])


def _endpoints(stack, monkeypatch, ingest: str):
    key = WebhookKey()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEYS", key.public_key_b64)
    monkeypatch.delenv("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", raising=False)
    monkeypatch.delenv("SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE", raising=False)

    def make(names="bounce,dropped,dynamodb", *sinks: Sink) -> Endpoint:
        plugins = stack(names)
        plugins.sinks.extend(sinks)
        return Endpoint(plugins, key, ingest)
    return make


@pytest.fixture
def endpoint(stack, monkeypatch):
    """``endpoint(names, *extra_sinks)``: an ``Endpoint`` with a fresh stack and a fresh signing key."""
    return _endpoints(stack, monkeypatch, "direct")


@pytest.fixture(name="endpoint", params=INGEST_MODES)
def endpoint_either_ingest(request, stack, monkeypatch):
    """``endpoint``, once per ingest mode (a test module imports this one instead, to run in both)."""
    return _endpoints(stack, monkeypatch, request.param)


@pytest.fixture
def notifications(aws, monkeypatch):
    """A moto topic (SNS_TOPIC_ARN) with an SQS subscription; returns a reader of what was published."""
    from plugins import sns

    sns.client.cache_clear()
    topic_arn = boto3.client("sns").create_topic(Name="notify")["TopicArn"]
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="notify-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("SNS_TOPIC_ARN", topic_arn)

    def read() -> list[dict]:
        messages = []
        while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
            for m in batch:
                messages.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        return messages

    yield read
    sns.client.cache_clear()


def notified(messages: list[dict]) -> Counter:
    """How many notifications each event got (by eventId)."""
    return Counter(json.loads(m["Message"])["eventId"] for m in messages)


def bounce(n: int, message: str = "msg", **extra) -> dict:
    """A bounce event (its own ``sg_event_id`` and per-recipient message id)."""
    return {"email": f"user{n}@bounce.test", "timestamp": 1764400000 + n, "event": "bounce", "type": "bounce",
            "status": "5.1.1", "reason": "550 no such user", "bounce_classification": "Invalid Address",
            "sg_event_id": f"ev-{message}-{n}", "sg_message_id": f"{message}.filter-{n}", **extra}
