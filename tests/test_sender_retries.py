"""The SendGrid call: rate limits honoured, timeouts, retries inside the deadline, the API key."""

import logging
import socket
import time
from email.utils import format_datetime
from datetime import datetime, timezone

import boto3
import pytest

from devstack.sendgrid import API_KEY, Scripted
from handlers import api_key, aws, sender, sendgrid_api
from tests.sender_support import Context, alice, items
from tests.support import inserted


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch):
    monkeypatch.setattr(sendgrid_api, "BASE_DELAY", 0.01)


def item_status(item_id="m1") -> dict:
    return items()[item_id]


@pytest.mark.parametrize("header", ["Retry-After", "X-RateLimit-Reset"])
def test_429_then_202_sends_once_after_waiting_as_told(stack, sendgrid, header):
    plugins = stack()
    value = "1" if header == "Retry-After" else str(int(time.time()) + 2)  # reset: a Unix time 1-2 s ahead
    sendgrid.script.append(Scripted(429, headers={header: value, "X-RateLimit-Remaining": "0"}))
    wall, monotonic = time.time(), time.monotonic()
    assert sender.handle(inserted(alice()), plugins) == {"batchItemFailures": []}
    assert sendgrid.requests == 2 and len(sendgrid.accepted) == 1
    if header == "Retry-After":  # seconds from the 429 answer
        assert sendgrid.arrivals[1] - sendgrid.arrivals[0] >= 0.95
    else:  # a point in Unix time: the retry comes at or after it, however late the 429 arrived
        assert wall + (sendgrid.arrivals[1] - monotonic) >= int(value) - 0.05
    assert item_status()["status"] == "sent"


def test_a_wait_longer_than_the_invocation_has_left_is_not_waited(stack, sendgrid):
    plugins = stack()
    sendgrid.script.append(Scripted(429, headers={"Retry-After": "60"}))
    started = time.monotonic()
    failures = sender.handle(inserted(alice()), plugins, Context(8))["batchItemFailures"]
    assert len(failures) == 1 and time.monotonic() - started < 5
    item = item_status()
    assert sendgrid.requests == 1 and item["status"] == "failed"
    assert "SendGrid 429" in item["error"] and "no time left" in item["error"]


def test_a_hanging_sendgrid_trips_the_read_timeout(stack, sendgrid, monkeypatch):
    monkeypatch.setattr(sendgrid_api, "READ_TIMEOUT", 0.3)
    monkeypatch.setattr(sendgrid_api, "ATTEMPTS", 2)
    plugins = stack()
    sendgrid.script.extend([Scripted(delay=3), Scripted(delay=3)])
    started = time.monotonic()
    assert len(sender.handle(inserted(alice()), plugins)["batchItemFailures"]) == 1
    assert time.monotonic() - started < 3  # less than one hang: the timeout cut both calls short
    item = item_status()
    assert sendgrid.requests == 2 and item["status"] == "failed"
    assert "ReadTimeoutError" in item["error"] and "after 2 attempts" in item["error"]


def test_a_timeout_then_success_sends(stack, sendgrid, monkeypatch):
    monkeypatch.setattr(sendgrid_api, "READ_TIMEOUT", 0.3)
    plugins = stack()
    sendgrid.script.extend([Scripted(delay=2), Scripted(503), Scripted()])
    assert sender.handle(inserted(alice()), plugins) == {"batchItemFailures": []}
    assert sendgrid.requests == 3 and item_status()["status"] == "sent"


def test_connection_refused_is_retried_then_reported(stack, monkeypatch):
    with socket.socket() as closed:  # a port on 127.0.0.1 nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("SENDGRID_API_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    monkeypatch.setattr(sendgrid_api, "ATTEMPTS", 3)
    api_key.reset()
    plugins = stack()
    assert len(sender.handle(inserted(alice()), plugins)["batchItemFailures"]) == 1
    item = item_status()
    assert item["status"] == "failed" and "after 3 attempts" in item["error"]
    api_key.reset()


def test_told_wait_reads_retry_after_seconds_or_date_and_the_reset_time():
    now = 1_700_000_000.0
    assert sendgrid_api.told_wait({"Retry-After": "7"}, now) == 7
    date = format_datetime(datetime.fromtimestamp(now + 30, timezone.utc), usegmt=True)
    assert sendgrid_api.told_wait({"Retry-After": date}, now) == pytest.approx(30)
    assert sendgrid_api.told_wait({"X-RateLimit-Reset": str(int(now) + 12)}, now) == 12
    assert sendgrid_api.told_wait({"X-RateLimit-Reset": str(int(now) - 5)}, now) == 0
    assert sendgrid_api.told_wait({}, now) is None


def test_backoff_grows_with_full_jitter_and_a_cap(monkeypatch):
    monkeypatch.setattr(sendgrid_api, "BASE_DELAY", 0.5)
    waits = [[sendgrid_api.backoff(n) for _ in range(200)] for n in range(6)]
    assert all(0 <= w <= min(sendgrid_api.MAX_DELAY, 0.5 * 2 ** n) for n, ws in enumerate(waits) for w in ws)
    assert max(waits[4]) > 2 * max(waits[0])  # it grows
    assert len(set(waits[3])) > 100  # it is jittered


def test_api_key_comes_from_ssm_once_per_cold_start_and_is_never_logged(stack, sendgrid, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="handlers")
    caplog.set_level(logging.INFO)
    reads = []
    aws.reset()  # a session of its own: the aws fixture forgets it, hook included, when the test ends
    aws.session().register("before-call.ssm.GetParameter", lambda **_: reads.append(1))
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name="/sendgrid-events/dev/api-key", Value=API_KEY, Type="SecureString")
    monkeypatch.setenv("SENDGRID_API_KEY_PARAMETER", "/sendgrid-events/dev/api-key")
    monkeypatch.delenv("SENDGRID_API_KEY")
    api_key.reset()
    plugins = stack()
    sendgrid.script.append(Scripted(500))
    batch = inserted(*(alice(f"m{i}") for i in range(10)))  # ten threads want the key at once
    assert sender.handle(batch, plugins) == {"batchItemFailures": []}
    assert len(reads) == 1

    ssm.delete_parameter(Name="/sendgrid-events/dev/api-key")  # read once: the next batch needs no SSM
    assert sender.handle(inserted(alice("m10")), plugins) == {"batchItemFailures": []}
    assert len(sendgrid.accepted) == 11 and len(reads) == 1
    assert API_KEY not in caplog.text and "SendGrid 500" in caplog.text


def test_without_an_api_key_the_item_fails_with_a_clear_error(stack, sendgrid, monkeypatch):
    monkeypatch.delenv("SENDGRID_API_KEY")
    api_key.reset()
    plugins = stack()
    assert len(sender.handle(inserted(alice()), plugins)["batchItemFailures"]) == 1
    item = item_status()
    assert item["status"] == "failed" and "SENDGRID_API_KEY_PARAMETER" in item["error"]
    assert sendgrid.requests == 0


def test_every_retry_loop_waits_with_the_same_full_jitter(monkeypatch):
    from handlers import dynamo, retry

    sleeps = []
    monkeypatch.setattr(retry.time, "sleep", sleeps.append)
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)  # the longest wait allowed
    dynamo.backoff(10)
    assert sleeps == [dynamo.MAX_DELAY]
    assert sendgrid_api.backoff(1) == 2 * sendgrid_api.BASE_DELAY


def test_a_retried_sendgrid_error_is_logged_without_the_addresses_it_quotes(stack, sendgrid, caplog):
    caplog.set_level(logging.WARNING, logger="handlers")  # also lifts a logging.disable left by another test
    plugins = stack()
    sendgrid.script.append(Scripted(503, body={"errors": [{"message": "queue full for alice@example.com"}]}))
    assert sender.handle(inserted(alice()), plugins) == {"batchItemFailures": []}
    assert "SendGrid 503: queue full for <address>" in caplog.text
    assert "alice@example.com" not in caplog.text
