"""boto3 clients with the handlers' timeouts and retries.

Every client (DynamoDB, SNS) gets the same botocore settings: a 1 s connect
and 4 s read timeout per attempt, and botocore's ``standard`` retry mode with
4 attempts (throttling waits up to 1, 2, 4 s; other errors a few ms). Two
hooks keep those retries inside the caller's time budget
(``handlers.retry.budget``): no attempt starts unless a whole one
(``ATTEMPT_SECONDS``) fits, and no retry is taken unless its longest wait and
a whole attempt fit; botocore then raises what the last attempt got. Without
a budget (the sender) every attempt is made.
"""

from __future__ import annotations

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from handlers import retry

CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 4.0
ATTEMPTS = 4  # per call, the first included (botocore's standard mode)
ATTEMPT_SECONDS = CONNECT_TIMEOUT + READ_TIMEOUT  # the longest one attempt takes
MAX_BACKOFF = 20.0  # botocore's cap on one wait: min(2 ** (attempt - 1), 20) seconds for throttling


def config(**extra) -> Config:
    return Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                  retries={"mode": "standard", "total_max_attempts": ATTEMPTS}, **extra)


def client(service: str, **extra):
    """A boto3 client for ``service`` (endpoint from AWS_ENDPOINT_URL) whose retries respect the budget."""
    made = boto3.client(service, config=config(**extra))
    name = made.meta.service_model.service_id.hyphenize()
    made.meta.events.register_first(f"before-send.{name}", _before_attempt)
    made.meta.events.register_first(f"needs-retry.{name}", _before_retry)
    return made


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
