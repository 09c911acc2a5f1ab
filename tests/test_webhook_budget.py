"""Whatever fails, the webhook answers within ``webhook.ANSWER_SECONDS`` (API Gateway gives up at 29 s).

Time is a fake clock: botocore's and the handlers' waits, and the attempts a
fault makes slow (a connect or read timeout), move it; nothing really sleeps.
"""

import os
import time

import pytest

from handlers import aws, dynamo, webhook
from handlers.tables import REJECTS
from plugins import sns
from tests.webhook_support import FakeClock, Faults, bounce, endpoint, notifications, notified  # noqa: F401

EVERY_WAY = ["refused", "blackhole", "slow", "throttle", "internal", "unprocessed"]


class Context:
    """Lambda's context: the time left, on the fake clock."""

    def __init__(self, clock: FakeClock, seconds: float):
        self.clock, self.end = clock, clock.now + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.end - self.clock.now) * 1000)


@pytest.fixture
def web(endpoint, notifications, monkeypatch):
    made = endpoint("bounce,dropped,dynamodb,sns")
    made.clock, made.read = FakeClock(monkeypatch), notifications
    return made


def timed_post(web, batch, context=None):
    """(status, answer, seconds it took: the fake time waited plus the real time run)."""
    started, real = web.clock.now, time.perf_counter()
    status, answer = web.post(batch, context=context)
    return status, answer, web.clock.now - started + time.perf_counter() - real


@pytest.mark.parametrize("kind", EVERY_WAY)
def test_dynamodb_failing_every_way_is_a_503_within_the_budget(web, kind):
    faults = Faults(1.0, kinds=(kind,), lost=0, clock=web.clock)
    status, answer, seconds = timed_post(web, [bounce(i) for i in range(30)])
    assert status == 503 and "retry" in answer["error"]
    assert seconds <= webhook.ANSWER_SECONDS, (kind, seconds)
    assert faults.injected[kind] >= 1


@pytest.mark.parametrize("kind", EVERY_WAY)
def test_sns_failing_every_way_is_a_503_within_the_budget_and_the_retry_notifies_once(web, kind):
    batch = [bounce(i) for i in range(30)]
    faults = Faults(1.0, client=sns.client(), kinds=(kind,), lost=0, clock=web.clock)
    status, _, seconds = timed_post(web, batch)
    assert status == 503 and seconds <= webhook.ANSWER_SECONDS, (kind, seconds)
    assert faults.injected[kind] >= 1
    faults.on = False
    assert web.post(batch)[0] == 200
    assert notified(web.read()) == {e["sg_event_id"]: 1 for e in batch}


def test_bookkeeping_writes_failing_after_sns_published_is_a_503_within_the_budget(web):
    """Settling the claims gets the most attempts of any write: still inside the budget."""
    faults = Faults(1.0, kinds=("slow",), lost=0, clock=web.clock, operations=frozenset({"BatchWriteItem"}))
    status, _, seconds = timed_post(web, [bounce(i) for i in range(30)])
    assert status == 503 and seconds <= webhook.ANSWER_SECONDS, seconds
    assert faults.injected["slow"] >= 2  # the bounce rows' write, then the settling


def test_a_lambda_with_less_time_left_gets_a_smaller_budget(web):
    Faults(1.0, kinds=("slow",), lost=0, clock=web.clock)
    status, _, seconds = timed_post(web, [bounce(1)], Context(web.clock, 9))
    assert status == 503 and seconds <= 9


def test_without_a_budget_every_attempt_is_made(web):
    """The sender runs without one: botocore makes all its attempts, as before."""
    faults = Faults(1.0, kinds=("slow",), lost=0, clock=web.clock)
    started = web.clock.now
    with pytest.raises(Exception, match="Read timeout"):
        dynamo.batch_get(os.environ[REJECTS.env_var], REJECTS.hash_key, ["e1"])
    assert faults.injected["slow"] == aws.ATTEMPTS
    assert web.clock.now - started >= aws.ATTEMPTS * aws.ATTEMPT_SECONDS >= webhook.ANSWER_SECONDS
