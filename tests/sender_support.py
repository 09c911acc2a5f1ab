"""What the sender's tests share: Lambda's context, the items."""

from __future__ import annotations

import time

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
