"""The one SendGrid call the sender makes, Mail Send, with timeouts and retries.

Plain urllib3 rather than the ``sendgrid`` package: botocore has loaded
urllib3 already (no extra cold start; ``sendgrid`` costs 30-50 ms to import),
and urllib3 gives what the official client lacks: separate connect and read
timeouts, and kept-alive connections shared by the sender's worker threads.

Outcomes: the X-Message-Id (accepted), ``Rejected`` (SendGrid refused the mail
itself, a 4xx: retrying cannot help), or ``Failed`` (429, 5xx, connection
errors and timeouts that outlasted the retries, or a refused API key).
Retries use exponential backoff with full jitter, wait as long as a 429's
``Retry-After`` / ``X-RateLimit-Reset`` says, and never run past the deadline
the caller gives (the Lambda invocation's remaining time).

A read timeout leaves it unknown whether SendGrid took the mail; it is retried
like the other transient errors (SendGrid's Mail Send has no idempotency key).
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from email.utils import parsedate_to_datetime

import urllib3

from handlers import api_key, env, metrics, redact, retry

log = logging.getLogger(__name__)

PATH = "/v3/mail/send"
CONCURRENCY = 20          # Mail Send calls in flight at once (the sender's worker threads; bench/README.md)
CONNECT_TIMEOUT = 3.05    # seconds to open the connection
READ_TIMEOUT = 15.0       # seconds to wait for the answer
ATTEMPTS = 5              # calls per mail, the first included
BASE_DELAY = 0.5          # backoff: attempt n waits up to BASE_DELAY * 2**n ...
MAX_DELAY = 8.0           # ... but no more than this (unless SendGrid says to wait longer)
MIN_ATTEMPT_SECONDS = 1.0  # an attempt is not started with less time than this left


class Rejected(Exception):
    """SendGrid refused the mail itself (a 4xx other than 401 and 429)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"SendGrid {status}: {message}")
        self.status = status


class Failed(Exception):
    """The mail was not sent, for reasons that are not the mail's: worth a later retry."""


@functools.cache
def http() -> urllib3.PoolManager:
    """Kept-alive connections to SendGrid, one pool per cold start, one connection per worker."""
    return urllib3.PoolManager(maxsize=CONCURRENCY, retries=False)


def _errors(response) -> str:
    """SendGrid's ``errors`` array as one line: ``message (field)``; the raw body otherwise."""
    try:
        errors = json.loads(response.data)["errors"]
        return "; ".join(f"{e.get('message')} ({e['field']})" if e.get("field") else str(e.get("message"))
                         for e in errors)
    except (ValueError, KeyError, TypeError, AttributeError):
        return response.data.decode("utf-8", "replace")[:500] or response.reason or ""


def told_wait(headers, now: float | None = None) -> float | None:
    """Seconds a 429 asks us to wait: ``Retry-After`` or ``X-RateLimit-Reset`` (Unix time)."""
    now = time.time() if now is None else now
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(retry_after).timestamp() - now)
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - now)
        except ValueError:
            pass
    return None


def backoff(attempt: int) -> float:
    """Full jitter: a random wait up to ``BASE_DELAY * 2**attempt``, capped at ``MAX_DELAY``."""
    return retry.full_jitter(attempt, BASE_DELAY, MAX_DELAY)


def send(payload: dict, deadline: float) -> str:
    """POST ``payload`` to Mail Send; returns the X-Message-Id.

    ``deadline`` is a ``time.monotonic()`` value no call or wait may pass.
    Raises ``Rejected`` or ``Failed``.
    """
    url = env.SENDGRID_API_HOST.get().rstrip("/") + PATH
    body = json.dumps(payload).encode()
    headers = {"Authorization": f"Bearer {api_key.api_key()}", "Content-Type": "application/json"}
    attempt = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Failed(f"no time left in this invocation (after {attempt} attempts)")
        timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT, remaining), read=min(READ_TIMEOUT, remaining))
        wait = None
        try:
            response = http().request("POST", url, body=body, headers=headers, timeout=timeout, retries=False)
        except urllib3.exceptions.HTTPError as exc:  # connection refused / reset, timeouts, protocol errors
            problem = f"{type(exc).__name__}: {exc}"
        else:
            if 200 <= response.status < 300:
                return response.headers.get("X-Message-Id", "")
            if response.status == 401:
                raise Failed(f"SendGrid 401: {_errors(response)} (check the API key)")
            if response.status != 429 and response.status < 500:
                raise Rejected(response.status, _errors(response))
            problem = f"SendGrid {response.status}: {_errors(response)}"
            wait = None
            if response.status == 429:
                metrics.SENDER.add("SendGridThrottled")
                wait = told_wait(response.headers)
        attempt += 1
        delay = backoff(attempt - 1) if wait is None else wait + random.uniform(0, BASE_DELAY / 10)
        if attempt >= ATTEMPTS:
            raise Failed(f"{problem} (gave up after {attempt} attempts)")
        if time.monotonic() + delay + MIN_ATTEMPT_SECONDS > deadline:
            raise Failed(f"{problem} (gave up after {attempt} attempts: no time left for another)")
        log.warning(json.dumps({"message": "SendGrid call failed, retrying", "problem": redact.safe(problem),
                                "attempt": attempt, "waitSeconds": round(delay, 3)}))
        time.sleep(delay)
