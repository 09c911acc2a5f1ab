"""SendGrid's v3 API as ``pulumi up`` calls it (the dynamic providers of ``infra.sendgrid``).

``Client(api_key, base_url, what).call(method, path, body)`` answers the
decoded JSON, or raises ``SendGridError`` with a message a person can act on:

- 401: the API key is refused (revoked, mistyped, another region's);
- 403: the key lacks a permission: the message names the scope it needs;
- 429: waits as SendGrid says (``Retry-After``, or ``X-RateLimit-Reset``, an
  epoch second), then retries; still limited after ``attempts``: fails;
- 5xx and connection errors: retried with a doubling backoff, then fail
  naming the resource (``what``).

The API key never appears in a message: it is sent in the ``Authorization``
header only, and any text SendGrid answers is stripped of it first.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable

import urllib3

from handlers.sendgrid_api import told_wait

DEFAULT_BASE_URL = "https://api.sendgrid.com"
EU_BASE_URL = "https://api.eu.sendgrid.com"
CONNECT_TIMEOUT, READ_TIMEOUT = 5.0, 30.0
# Path prefix -> the API key permission (scope family) its calls need.
SCOPES = {
    "/v3/user/webhooks/event/": "user.webhooks.event.settings",
    "/v3/user/webhooks/parse/": "user.webhooks.parse.settings",
    "/v3/user/webhooks/security/": "user.webhooks.parse.settings",
}
OPERATIONS = {"POST": "create", "GET": "read", "PATCH": "update", "DELETE": "delete"}
_POOL = urllib3.PoolManager(timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT), retries=False)


class SendGridError(RuntimeError):
    """A SendGrid call failed; ``status`` is SendGrid's answer (None: no answer)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def scope(method: str, path: str) -> str:
    """The API key scope a call needs, e.g. ``user.webhooks.event.settings.create``."""
    family = next((s for prefix, s in SCOPES.items() if path.startswith(prefix)), "the endpoint's")
    return f"{family}.{OPERATIONS.get(method, method.lower())}"


@dataclass
class Client:
    api_key: str
    base_url: str
    what: str
    """The resource, for messages: e.g. ``Event Webhook 'sendgrid-events-prod'``."""
    attempts: int = 4
    backoff: float = 1.0
    max_wait: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def call(self, method: str, path: str, body: dict | None = None, missing_ok: bool = False) -> Any:
        """The answer's JSON (None for an empty body, or a 404 when ``missing_ok``)."""
        action = f"{method} {path}"
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                answer = _POOL.request(method, self.base_url.rstrip("/") + path, headers=self._headers(),
                                       body=json.dumps(body).encode() if body is not None else None)
            except urllib3.exceptions.HTTPError as exc:
                if last:
                    raise SendGridError(f"{self.what}: SendGrid did not answer {action} after {attempt} attempts "
                                        f"({type(exc).__name__}); try again later") from None
                self.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            status = answer.status
            if 200 <= status < 300:
                return json.loads(answer.data) if answer.data.strip() else None
            if status == 404 and missing_ok:
                return None
            if status == 429 and not last:
                self.sleep(self._rate_limit_wait(answer.headers))
                continue
            if status >= 500 and not last:
                self.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            raise SendGridError(self._message(method, path, status, answer.data, attempt), status)
        raise AssertionError("unreachable")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json",
                "Accept": "application/json", "User-Agent": "sendgrid-events-pulumi"}

    def _rate_limit_wait(self, headers) -> float:
        """Seconds SendGrid asks to wait (``Retry-After``, else until ``X-RateLimit-Reset``), within bounds."""
        told = told_wait(headers)  # the sender's reading of SendGrid's 429 headers
        return self.backoff if told is None else min(told, self.max_wait)

    def _message(self, method: str, path: str, status: int, data: bytes, attempts: int) -> str:
        action = f"{method} {path}"
        if status == 401:
            return (f"{self.what}: SendGrid refused the API key (401) on {action}: check "
                    "sendgrid-events:sendgridApiKey (a revoked key, a typo, or another region's key)")
        if status == 403:
            return (f"{self.what}: the API key may not {action} (403): give it the '{scope(method, path)}' "
                    "permission, or set sendgrid-events:manageSendgridWebhook false and configure SendGrid by hand")
        if status == 429 or status >= 500:
            why = " (rate limit)" if status == 429 else ""
            return f"{self.what}: SendGrid answered {status}{why} to {action} on all {attempts} attempts; try again later"
        return f"{self.what}: SendGrid answered {status} to {action}: {self._errors(data)}"

    def _errors(self, data: bytes) -> str:
        """SendGrid's ``errors`` messages (or the body, clipped), without the API key."""
        try:
            errors = json.loads(data).get("errors") or []
            text = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
        except (ValueError, AttributeError):
            text = ""
        text = text or data.decode(errors="replace")[:300]
        return text.replace(self.api_key, "[API key]") if self.api_key else text
