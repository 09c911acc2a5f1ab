"""Figure: the whole pipeline on one machine: from an item insert to its bounce row.

``devstack`` (moto server, SendGrid stand-in, webhook front, stream poller;
default plugins) with short waits: the poller reads an idle stream every
``POLL`` seconds, the stand-in posts a mail's events ``WEBHOOK_DELAY``
seconds after accepting it. One item at a time, each to an address at
``bounce.test``; an outside observer polls (every ``OBSERVE`` s) the item
until it is ``sent``, then the bounce table until the row is there.

There is no side-by-side baseline (the sample has no local pipeline); the
comparison is with the waits the stack is configured to make, the floor of
any implementation on it.
"""

from __future__ import annotations

import time
import uuid

from bench.common import Row, median, ms
from devstack.stack import Options, Stack
from handlers import dynamo

POLL = 0.05
WEBHOOK_DELAY = 0.05
OBSERVE = 0.005
ITEMS = 10
TIMEOUT = 20.0


def bounce_row(stack: Stack, item_id: str, client) -> dict | None:
    answer = client.scan(TableName=stack.table("bounce"), ConsistentRead=True,
                         FilterExpression="mailId = :id", ExpressionAttributeValues={":id": {"S": item_id}})
    return answer["Items"][0] if answer["Items"] else None


def one(stack: Stack, client) -> tuple[float, float]:
    """Seconds from insert to ``sent`` on the item, and to the bounce row."""
    item_id = f"bench-{uuid.uuid4().hex[:12]}"
    item = {"id": item_id, "from": {"email": "news@example.com", "name": "News"},
            "to": [{"email": f"{item_id}@bounce.test", "name": "Nobody"}],
            "subject": "Benchmark mail", "content": "Hello from the benchmark."}
    start = time.perf_counter()
    stack.insert(item)
    deadline, sent = start + TIMEOUT, None
    while time.perf_counter() < deadline:
        if sent is None:
            answer = client.get_item(TableName=stack.table("mail_sender"), Key={"id": {"S": item_id}},
                                     ConsistentRead=True).get("Item")
            status = dynamo.deserialize(answer or {}).get("status")
            if status in ("rejected", "failed"):
                raise RuntimeError(f"item {item_id} was {status}")
            if status == "sent":
                sent = time.perf_counter() - start
        if sent is not None and bounce_row(stack, item_id, client):
            return sent, time.perf_counter() - start
        time.sleep(OBSERVE)
    raise TimeoutError(f"no bounce row for {item_id} after {TIMEOUT:.0f} s")


def run(quick: bool = False) -> list[Row]:
    count = 1 if quick else ITEMS
    options = Options(state_path=None, webhook_delay=WEBHOOK_DELAY, webhook_retry_delay=0.1, poll_interval=POLL)
    with Stack(options) as stack:
        client = stack.aws.client("dynamodb")
        one(stack, client)  # warm-up: connections, the handlers' first request
        runs = [one(stack, client) for _ in range(count)]
    to_sent, to_row = median([r[0] for r in runs]), median([r[1] for r in runs])
    floor = POLL / 2 + WEBHOOK_DELAY
    return [Row("devstack run", "item insert -> bounce row", None,
                f"{ms(to_row)} (insert -> sent: {ms(to_sent)})",
                f"{ms(floor)} of configured waits",
                f"stream poll every {ms(POLL)} (avg wait {ms(POLL / 2)}), events posted {ms(WEBHOOK_DELAY)} after "
                f"the send; observer polls every {ms(OBSERVE)}; median of {count}")]


if __name__ == "__main__":
    from bench.__main__ import print_rows

    print_rows(run())
