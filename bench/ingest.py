"""Figure: ``ingest: queue`` against ``direct`` on the local stack: the time to answer a post, the drain rate.

Answer: signed posts of ``EVENTS`` bounce events each, one at a time, to the
webhook URL of a local stack in each mode (a mode is a deployment, so each
has its own stack; the stacks alternate, direct, queue, direct, queue, and
the medians are compared). Direct answers once the batch is stored; the queue
once SQS has it.

Drain: with the queue's poller stopped, ``BURST`` posts are queued (as
during an outage), then a poller starts and the time until the queue is
empty gives the rate the webhook function stores queued posts at, one
invocation at a time (Lambda would run several at once).
"""

from __future__ import annotations

import time

from bench.common import Row, median, ms
from devstack import http
from devstack.eventwebhook import batch_body
from devstack.queue_poller import QueuePoller
from devstack.stack import wait_for
from devstack.testing import running

EVENTS = 100
POSTS = 20
BURST = 40
ROUNDS = 2


def events(tag: str, n: int) -> list[dict]:
    return [{"email": f"u{i}@bounce.test", "timestamp": 1764400000 + i, "event": "bounce", "type": "bounce",
             "status": "5.1.1", "reason": "550 no such user", "sg_event_id": f"{tag}-{i}",
             "sg_message_id": f"{tag}-{i}.filter"} for i in range(n)]


def post(stack, batch: list[dict]) -> float:
    """Seconds to the answer (which must be 2xx)."""
    body = batch_body(batch)
    headers = stack.key.headers(body)
    start = time.perf_counter()
    status, answer = http.post(stack.state["webhook_url"], body, headers)
    elapsed = time.perf_counter() - start
    if not 200 <= status < 300:
        raise RuntimeError(f"a post was answered {status}: {answer[:200]!r}")
    return elapsed


def answers(mode: str, posts: int, tag: str, burst: int = 0) -> tuple[list[float], float | None]:
    """Seconds to answer each of ``posts`` posts; with ``burst`` (queue), then the seconds to drain that many."""
    with running(settings={"ingest": mode}) as stack:
        post(stack, events(f"{tag}-warm", EVENTS))  # warm-up: the function's first request
        times = [post(stack, events(f"{tag}-{p}", EVENTS)) for p in range(posts)]
        wait_for(stack.drained, "the queue drained", timeout=120)
        if len(stack.scan("bounce")) != (posts + 1) * EVENTS:
            raise RuntimeError(f"{mode}: not every event was stored")
        return times, drain(stack, burst, (posts + 1) * EVENTS) if burst else None


def drain(stack, burst: int, before: int) -> float:
    """Seconds to store ``burst`` queued posts from a full queue (``before``: events stored already)."""
    [poller] = stack.queue_pollers
    poller.stop()  # an outage: posts wait in the queue
    for p in range(burst):
        post(stack, events(f"drain-{p}", EVENTS))
    fresh = QueuePoller(poller.sqs, poller.mapping, poller.function, region=stack.aws.region,
                        interval=0.01, retry_delay=1)
    start = time.perf_counter()
    fresh.start()
    try:
        wait_for(fresh.drained, "the queue drained", timeout=600, interval=0.01)
        seconds = time.perf_counter() - start
    finally:
        fresh.stop()
    stored = len(stack.scan("bounce")) - before
    if stored != burst * EVENTS or fresh.failed:
        raise RuntimeError(f"drain: {stored} events stored of {burst * EVENTS}, {fresh.failed} failures")
    return seconds


def run(quick: bool = False) -> list[Row]:
    posts, rounds, burst = (2, 1, 3) if quick else (POSTS, ROUNDS, BURST)
    times, seconds = {"direct": [], "queue": []}, None
    for r in range(rounds):
        for mode in ("direct", "queue"):
            last = mode == "queue" and r == rounds - 1
            answered, drained = answers(mode, posts, f"{mode}{r}", burst if last else 0)
            times[mode] += answered
            seconds = drained or seconds
    direct, queue = median(times["direct"]), median(times["queue"])
    stored = burst * EVENTS
    note = f"{EVENTS} bounce events a post; median of {len(times['queue'])} posts per mode, stacks alternating"
    return [
        Row("ingest", "answer a post: queue vs direct", direct / queue, ms(queue), ms(direct), note),
        Row("ingest", "queue drain, one invocation at a time", None,
            f"{burst / seconds:.1f} posts/s ({stored / seconds:.0f} events/s)", "",
            f"{burst} queued posts of {EVENTS} events stored in {seconds:.1f} s (batches of 5)"),
    ]


if __name__ == "__main__":
    from bench.__main__ import print_rows

    print_rows(run())
