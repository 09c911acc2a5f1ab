"""``ingest: queue`` end to end on the local stack: a bad day for DynamoDB loses nothing.

The outage is an IAM deny: a policy denying every DynamoDB action on the
webhook function's own identity (locally an IAM user holding its role's
statements; in AWS, a deny on its role). moto enforces it on every call, so
for as long as it is there the function cannot read or write any table, as
when DynamoDB is unavailable to it (and as after a bad role edit), while the
sender, SendGrid's stand-in and the rest of the stack run on. It needs no
hook inside moto, and lifting it is recovery.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cli.__main__ import main as cli_main
from devstack import http
from devstack.stack import wait_for
from devstack.state import write_state
from devstack.testing import local_stack  # noqa: F401  (the fixture)
from infra import ingest
from tests.webhook_support import bounce

OUTAGE = "dynamodb-outage"
POSTS, EVENTS = 12, 50  # a burst: 600 events in 12 posts, 4 at a time


def post(stack, events) -> int:
    """One signed post, as SendGrid makes it; the status it gets."""
    return stack.post(events)[0]


def burst() -> list[list[dict]]:
    return [[bounce(p * EVENTS + i, message=f"burst{p}") for i in range(EVENTS)] for p in range(POSTS)]


def dynamodb_down(stack, down: bool) -> None:
    iam, user = stack.aws.client("iam"), stack.functions["webhook"].lambda_name
    if down:
        iam.put_user_policy(UserName=user, PolicyName=OUTAGE, PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}]}))
    else:
        iam.delete_user_policy(UserName=user, PolicyName=OUTAGE)


def queue_depth(stack, name: str) -> int:
    attributes = stack.aws.client("sqs").get_queue_attributes(
        QueueUrl=stack.state["queues"][name],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return sum(int(v) for v in attributes.values())


def redrive(stack) -> int:
    """The operator's re-drive, ``sendgrid-events redrive --ingest --resend``: every post of the dead-letter
    queue back on the ingest queue, as it was; how many."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.json"
        write_state(path, stack.state)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert cli_main(["redrive", "--ingest", "--resend", "--local", str(path), "--json"]) == 0
    answer = json.loads(printed.getvalue())
    assert all(post["signed"] and post["events"] for post in answer["posts"])
    return answer["movedBack"]


@pytest.mark.parametrize("mode", ["queue", "direct"])
def test_with_dynamodb_down_for_a_whole_burst_the_queue_answers_every_post_and_loses_nothing(local_stack, mode):
    stack = local_stack(settings={"ingest": mode})
    batches = burst()
    dynamodb_down(stack, True)
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda events: post(stack, events), batches))
    if mode == "direct":  # every post refused: SendGrid would have to retry each (and drops it after 24 h)
        assert statuses == [503] * POSTS
    else:
        assert statuses == [200] * POSTS  # answered as soon as SQS had it, whatever DynamoDB does
        poller = stack.queue_pollers[0]
        wait_for(lambda: poller.failed >= POSTS, "every queued post tried once during the outage")
        assert queue_depth(stack, "ingest") + queue_depth(stack, "ingest_dlq") == POSTS  # all still held
    assert stack.scan("bounce") == []  # nothing could be stored
    dynamodb_down(stack, False)  # recovery

    if mode == "direct":  # what SendGrid's retries would have to do
        statuses = [post(stack, events) for events in batches]
        assert statuses == [200] * POSTS
    else:
        redrive(stack)  # a post that outlasted its receives waits in the DLQ (none with this short outage)
        wait_for(stack.drained, "the ingest queue drained after recovery", timeout=120)
        assert queue_depth(stack, "ingest_dlq") == 0
    stored = Counter(r["sgEventId"] for r in stack.scan("bounce"))
    assert stored == Counter({e["sg_event_id"]: 1 for events in batches for e in events})  # each once
    marks = [r for r in stack.scan("processed_events") if r["id"].startswith("event:")]
    assert len(marks) == POSTS * EVENTS


def test_a_post_that_keeps_failing_waits_in_the_dead_letter_queue_and_is_stored_once_redriven(local_stack,
                                                                                               monkeypatch):
    monkeypatch.setattr(ingest, "MAX_RECEIVES", 2)  # the program reads it as it runs: 2 receives, not 10
    stack = local_stack()
    dynamodb_down(stack, True)
    events = [bounce(i, message="dead") for i in range(5)]
    assert post(stack, events) == 200
    wait_for(lambda: queue_depth(stack, "ingest_dlq") == 1, "the post moved to the dead-letter queue", timeout=60)
    assert queue_depth(stack, "ingest") == 0 and stack.queue_pollers[0].failed == 2  # received twice, then moved
    [message] = stack.aws.client("sqs").receive_message(
        QueueUrl=stack.state["queues"]["ingest_dlq"], MessageAttributeNames=["All"], VisibilityTimeout=0)["Messages"]
    assert json.loads(message["Body"]) == events  # the post as it came, its signature and receive time with it
    assert set(message["MessageAttributes"]) == {"receivedAt", "signature", "timestamp"}

    dynamodb_down(stack, False)
    assert redrive(stack) == 1
    wait_for(stack.drained, "the re-driven post processed", timeout=60)
    assert sorted(r["sgEventId"] for r in stack.scan("bounce")) == sorted(e["sg_event_id"] for e in events)


def test_a_forged_post_costs_one_message_is_counted_and_never_stored(local_stack):
    from devstack.eventwebhook import WebhookKey

    stack = local_stack()
    status, _ = stack.post([bounce(1, message="forged")], key=WebhookKey())
    assert status == 200  # API Gateway cannot tell: it answers once queued
    wait_for(stack.drained, "the forged post processed")
    assert stack.scan("bounce") == [] and queue_depth(stack, "ingest_dlq") == 0  # deleted, not retried
    assert stack.queue_pollers[0].delivered == 1 and stack.queue_pollers[0].failed == 0


def test_a_post_too_large_for_sqs_is_refused_413_and_one_that_fits_is_queued(local_stack):
    stack = local_stack()
    padding = {"event": "processed", "email": "x@example.com", "timestamp": 1, "pad": ""}
    fits = [dict(padding, pad="x" * (768 * 1024))]  # SendGrid's largest post: 768 KB
    too_large = [dict(padding, pad="x" * (1024 * 1024))]
    assert post(stack, fits) == 200
    status, answer = stack.post(too_large)
    assert status == 413 and "larger than an SQS message" in json.loads(answer)["error"]
    wait_for(stack.drained, "the post that fit processed")
    assert queue_depth(stack, "ingest_dlq") == 0


def test_a_post_of_another_content_type_is_answered_415_as_api_gateway_does(local_stack):
    stack = local_stack()
    status, _ = http.post(stack.state["webhook_url"], b"a=b", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415
    assert queue_depth(stack, "ingest") == 0


def test_a_queue_hidden_for_less_than_the_functions_timeout_is_refused_as_lambda_does(local_stack, monkeypatch):
    from devstack.apply import ApplyError

    monkeypatch.setattr(ingest, "VISIBILITY_FACTOR", 0)  # visible again at once, for a 29 s function
    with pytest.raises(ApplyError, match="visibility timeout: 0 seconds is less than Function timeout: 29"):
        local_stack()


def test_the_drain_is_bounded_and_a_bound_lambda_refuses_stops_up(local_stack, monkeypatch):
    from devstack.apply import ApplyError

    monkeypatch.setattr(ingest, "MAX_CONCURRENCY", 1)  # Lambda takes 2 to 1000
    with pytest.raises(ApplyError, match="MaximumConcurrency 1 is not from 2 to 1000"):
        local_stack()
