"""What the sender's tests share: Lambda's context, the items, failures injected into DynamoDB writes."""

from __future__ import annotations

import threading
import time

from botocore.exceptions import ClientError

from handlers import dynamo
from tests.support import scan, seed_item


class Context:
    """What the sender reads of Lambda's context: an invocation ``seconds`` long from now."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.end - time.monotonic()) * 1000)


def items() -> dict:
    """The mail sender table: id -> item."""
    return {i["id"]: i for i in scan("TABLE_MAIL_SENDER")}


def alice(item_id="m1", **extra):
    return {**seed_item(item_id, [("alice@example.com", "Alice")]), **extra}


def join_sender_threads(timeout: float = 10.0) -> None:
    """Wait for the sender's worker threads the handler left running when it answered."""
    for thread in threading.enumerate():
        if thread.name.startswith("sender"):
            thread.join(timeout)


class FailingWrites:
    """Makes UpdateItem calls on the mail sender table raise, chosen by the ``status`` they write."""

    def __init__(self):
        self.left: dict[str, int] = {}
        self.refused: list[str] = []
        dynamo.client().meta.events.register("before-parameter-build.dynamodb.UpdateItem", self._check)

    def fail(self, status: str, times: int = 1) -> None:
        """The next ``times`` writes of ``status`` fail (as DynamoDB answering 500 would)."""
        self.left[status] = times

    def _check(self, params, **_):
        status = params.get("ExpressionAttributeValues", {}).get(":status", {}).get("S")
        if self.left.get(status, 0) > 0:
            self.left[status] -= 1
            self.refused.append(status)
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": f"injected: {status}"}},
                              "UpdateItem")
