"""Backoff between retries, and the time budget every retry loop here stays inside.

The budget is a deadline in a context variable: the webhook sets one per
invocation (``budget``), and every loop asks ``pause`` before it waits for
another attempt, so no loop runs past it, however many layers down it is (a
sink's DynamoDB write inside the delivery inside the handler). Without a
budget (the sender's threads, tests) ``remaining`` is infinite and the loops
only count their attempts, as they always did.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import random
import time

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


class OutOfTime(RuntimeError):
    """The time budget has no room for another attempt: a transient failure (the caller answers 5xx)."""


def full_jitter(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before retry ``attempt`` (0 first): random, up to ``min(cap, base * 2**attempt)``.

    "Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"):
    concurrent clients that failed together do not retry together.
    """
    return random.uniform(0, min(cap, base * 2 ** attempt))


def clock() -> float:
    """Seconds on a monotonic clock (tests replace it with a fake one)."""
    return time.monotonic()


@contextlib.contextmanager
def budget(seconds: float):
    """Within the block, every loop ends ``seconds`` from now at the latest (an enclosing budget still holds)."""
    end = clock() + seconds
    current = _deadline.get()
    token = _deadline.set(end if current is None else min(current, end))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float:
    """Seconds left in the current budget (infinite without one)."""
    end = _deadline.get()
    return math.inf if end is None else end - clock()


def require(seconds: float, what: str) -> None:
    """Raise ``OutOfTime`` unless ``seconds`` are left for ``what``."""
    if remaining() < seconds:
        raise OutOfTime(f"no time left for {what}")


def pause(seconds: float, then: float) -> None:
    """Wait ``seconds`` before a retry, if the budget still has ``then`` seconds for it afterwards."""
    require(seconds + then, "another attempt")
    time.sleep(seconds)
