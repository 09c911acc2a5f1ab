"""botocore clients with the handlers' timeouts and retries, and which AWS errors are an item's own.

Every client (DynamoDB, SNS) gets the same botocore settings: a 1 s connect
and 4 s read timeout per attempt, and botocore's ``standard`` retry mode with
4 attempts (throttling waits up to 1, 2, 4 s; other errors a few ms). Two
hooks keep those retries inside the caller's time budget
(``handlers.retry.budget``): no attempt starts unless a whole one
(``ATTEMPT_SECONDS``) fits, and no retry is taken unless its longest wait and
a whole attempt fit; botocore then raises what the last attempt got. Without
a budget (the sender) every attempt is made.

``permanent(exc)``: the service refused the request for what it holds (a
DynamoDB key over its size limit, an SNS message too long), so sending it
again can never work; anything else (throttling, 5xx, timeouts, connection
errors, an unknown error) is treated as transient. ``isolate`` splits a batch
that failed permanently until only the items that fail on their own are left.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError, ParamValidationError

from handlers import retry

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 4.0
ATTEMPTS = 4  # per call, the first included (botocore's standard mode)
ATTEMPT_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT  # the longest one attempt takes
MAX_BACKOFF = 20.0  # botocore's cap on one wait: min(2 ** (attempt - 1), 20) seconds for throttling

# Error codes meaning "this request's content is refused", whoever sends it, whenever.
PERMANENT_CODES = frozenset({
    "ValidationException",  # DynamoDB: a key too long, empty or of the wrong type; an item over 400 KB
    "InvalidParameter", "InvalidParameterException",  # SNS: "Message too long", a bad attribute
    "InvalidParameterValue", "InvalidParameterValueException",
    "BatchRequestTooLong",  # SNS: the entries of one PublishBatch over 256 KiB together (split, then alone)
})

T = TypeVar("T")
_session: botocore.session.Session | None = None
_lock = threading.Lock()  # a botocore session is not thread-safe: the sender's threads may build a client at once


def config(**extra) -> Config:
    return Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                  retries={"mode": "standard", "total_max_attempts": ATTEMPTS}, **extra)


def client(service: str, **extra):
    """A client for ``service`` (endpoint from AWS_ENDPOINT_URL) whose retries respect the budget.

    botocore's own, from one session per process (region and credentials from the
    environment, as ``boto3.client`` finds them): the handlers never import boto3,
    which costs a cold start about 14 ms more (handlers/attribute_values.py).
    """
    with _lock:
        made = session().create_client(service, config=config(**extra))
    name = made.meta.service_model.service_id.hyphenize()
    made.meta.events.register_first(f"before-send.{name}", _before_attempt)
    made.meta.events.register_first(f"needs-retry.{name}", _before_retry)
    return made


def session() -> botocore.session.Session:
    """The process's botocore session, made on first use (a client copies its event hooks when made)."""
    global _session
    if _session is None:
        _session = botocore.session.get_session()
    return _session


def reset() -> None:
    """Forget the session and the credentials it resolved, as a new cold start would (tests, benchmarks)."""
    global _session
    _session = None


def _before_attempt(**_):
    retry.require(ATTEMPT_SECONDS, "another AWS call")


def _before_retry(attempts: int, **_):
    """False (no retry) when the longest wait before the next attempt and the attempt do not fit."""
    if retry.remaining() < min(2 ** (attempts - 1), MAX_BACKOFF) + ATTEMPT_SECONDS:
        return False
    return None  # botocore's own retry handler decides


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


def permanent(exc: BaseException) -> bool:
    """Whether ``exc`` says the request's content is refused for good (see ``PERMANENT_CODES``)."""
    if isinstance(exc, ParamValidationError):  # botocore's own check of the request: the same every time
        return True
    return isinstance(exc, ClientError) and error_code(exc) in PERMANENT_CODES


def isolate(items: Sequence[T], send: Callable[[Sequence[T]], None]) -> list[tuple[T, BaseException]]:
    """``send(items)``; when it fails permanently, send each half again, down to single items.

    Returns the items that failed permanently on their own, with their error;
    every other item was sent. A transient failure propagates (what was sent
    stays sent). One bad item among 25 costs about 2 * log2(25) = 10 calls.
    """
    try:
        send(items)
        return []
    except Exception as exc:
        if not permanent(exc):
            raise
        if len(items) == 1:
            return [(items[0], exc)]
    middle = len(items) // 2
    return isolate(items[:middle], send) + isolate(items[middle:], send)
