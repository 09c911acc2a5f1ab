"""The webhook function's queue consumer (``handlers.ingest``, ``ingest: queue``) on moto, in-process.

Each message is a post queued as API Gateway's applied template queues it
(``tests.webhook_support.queued``). What is checked: which messages the
partial batch response leaves for a retry (only transient failures), that
forged posts are counted and never stored, that a signature's age is measured
at the receive time, and the invocation's remaining time.
"""

from __future__ import annotations

import json
import time

import pytest

from devstack.eventwebhook import WebhookKey
from handlers import ingest, webhook
from tests import emf
from tests.support import proxy_event, scan
from tests.sender_support import Context
from tests.webhook_support import Faults, body_of, bounce, endpoint, queued  # noqa: F401 (endpoint: a fixture)

DAY = 86400


@pytest.fixture
def consumer(endpoint):
    """(plugins, key): a fresh stack with the default plugins and the key the function accepts."""
    web = endpoint()
    return web.plugins, web.key


def lines(capsys) -> list[dict]:
    """The metrics lines written since the last call, each a valid EMF document."""
    found = [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert all(emf.problems(line) == [] for line in found)
    return [json.loads(line) for line in found]


def test_stored_and_forged_posts_are_deleted_only_a_transient_failure_is_retried(consumer, capsys):
    plugins, key = consumer
    good, later = body_of([bounce(1)]), body_of([bounce(2)])
    forged = body_of([bounce(3)])
    messages = [queued(good, key.headers(good)), queued(forged, WebhookKey().headers(forged)),
                queued(forged, {}), queued(later, key.headers(later))]
    faults = Faults(1.0, kinds=("throttle",), lost=0.0, operations=frozenset({"BatchWriteItem", "TransactWriteItems"}))
    faults.on = False
    answer = ingest.consume({"Records": messages[:3]}, lambda: plugins)
    assert answer == {"batchItemFailures": []}  # stored, forged, unsigned: none is received again
    faults.on = True  # DynamoDB throttled, beyond the retries
    retried = ingest.consume({"Records": messages[3:]}, lambda: plugins)
    assert retried == {"batchItemFailures": [{"itemIdentifier": messages[3]["messageId"]}]}
    first, second = lines(capsys)
    assert (first["WebhookPosts"], first["WebhookRefused403"], first["EventsAccepted"], first["QueueRetries"]) == (
        3, 2, 1, 0)  # the forged posts are counted, never stored
    assert (second["WebhookRefused503"], second["QueueRetries"]) == (1, 1)
    assert len(first["QueueWait"]) == 3
    assert [r["sgEventId"] for r in scan("TABLE_BOUNCE")] == ["ev-msg-1"]

    faults.on = False  # DynamoDB back: the message received again is stored, once
    assert ingest.consume({"Records": messages[3:]}, lambda: plugins) == {"batchItemFailures": []}
    assert ingest.consume({"Records": messages}, lambda: plugins) == {"batchItemFailures": []}  # redelivered
    assert sorted(r["sgEventId"] for r in scan("TABLE_BOUNCE")) == ["ev-msg-1", "ev-msg-2"]


def test_the_signatures_age_is_measured_when_api_gateway_received_the_post(consumer, monkeypatch):
    plugins, key = consumer
    monkeypatch.setenv("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", str(DAY))
    signed_at = int(time.time()) - 5 * DAY  # the post waited in the queue for five days (a long outage)
    body = body_of([bounce(1)])
    headers = key.headers(body, signed_at)
    on_time = queued(body, headers, received_ms=(signed_at + 60) * 1000)
    assert ingest.process(on_time, lambda: plugins)["statusCode"] == 200
    late = queued(body_of([bounce(2)]), key.headers(body_of([bounce(2)]), signed_at),
                  received_ms=(signed_at + 2 * DAY) * 1000)  # already too old when it came: a replay
    answer = ingest.process(late, lambda: plugins)
    assert answer["statusCode"] == 403 and "older than" in json.loads(answer["body"])["error"]
    # The direct path measures the same post's age now: refused.
    assert webhook.handle(proxy_event(body, headers), lambda: plugins)["statusCode"] == 403
    assert [r["sgEventId"] for r in scan("TABLE_BOUNCE")] == ["ev-msg-1"]


def test_without_the_receive_time_attribute_sqs_sent_time_counts_and_without_both_it_is_refused(consumer):
    plugins, key = consumer
    body = body_of([bounce(1)])
    message = queued(body, key.headers(body))
    del message["messageAttributes"][ingest.RECEIVED_AT]
    assert ingest.received_at(message) == int(message["attributes"]["SentTimestamp"]) / 1000
    assert ingest.process(message, lambda: plugins)["statusCode"] == 200
    del message["attributes"]["SentTimestamp"]
    answer = ingest.process(message, lambda: plugins)
    assert answer["statusCode"] == 400 and "receive time" in json.loads(answer["body"])["error"]


def test_a_message_is_not_started_without_time_for_it_and_is_left_for_a_retry(consumer):
    plugins, key = consumer
    bodies = [body_of([bounce(i)]) for i in range(3)]
    messages = [queued(b, key.headers(b)) for b in bodies]
    short = Context(ingest.START_SECONDS - 0.5)
    assert ingest.consume({"Records": messages}, lambda: plugins, short) == {
        "batchItemFailures": [{"itemIdentifier": m["messageId"]} for m in messages]}
    assert scan("TABLE_BOUNCE") == []
    assert ingest.consume({"Records": messages}, lambda: plugins, Context(29)) == {"batchItemFailures": []}
    assert len(scan("TABLE_BOUNCE")) == 3


def test_the_functions_handler_takes_both_shapes(consumer):
    _plugins, key = consumer  # the handler builds its own: the default plugins, as the fixture's
    body = body_of([bounce(1)])
    assert webhook.lambda_handler({"Records": [queued(body, key.headers(body))]}, Context(29)) == {
        "batchItemFailures": []}
    assert len(scan("TABLE_BOUNCE")) == 1


def test_the_template_queues_the_body_exactly_as_received(consumer):
    """Whatever the body holds ('+', '&', '%', '=', non-ASCII, a trailing CRLF), the message is its bytes."""
    plugins, key = consumer
    event = {**bounce(1), "reason": "550 5.1.1 a+b&c=d%20e <x@y> ü 日本 \\u00e9"}
    body = json.dumps([event], ensure_ascii=False).encode("utf-8") + b"\r\n"
    message = queued(body, key.headers(body))
    assert message["body"].encode("utf-8") == body
    assert ingest.process(message, lambda: plugins)["statusCode"] == 200
    assert scan("TABLE_BOUNCE")[0]["reason"] == event["reason"]

