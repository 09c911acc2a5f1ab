"""A SendGrid stand-in: the v3 Mail Send API and the Webhooks API, on 127.0.0.1.

Calls under ``/v3/user/webhooks/`` (Event Webhooks, their signing, security
policies, Inbound Parse settings) are answered by the account's
``devstack.webhooks.WebhookAccount``, with the same API key check.

``POST /v3/mail/send`` checks the API key and the payload the way SendGrid
does (401 / 400 with SendGrid-style ``errors``), answers 202 with an
``X-Message-Id`` and remembers what it accepted. ``events_for`` says which
Event Webhook events SendGrid would later report for an accepted mail,
by recipient domain (see ``OUTCOMES``); those events also put addresses on
the suppression lists (``devstack.suppressions``), which
``GET /v3/suppression/<list>`` reads, with the same API key check.

Tests can script the next answers (``script``): a status, headers, a delay;
that is how 429s, 5xx and hanging servers are produced.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from devstack.http import LoopbackServer

API_KEY = "SG.local-devstack-key"
MAX_RECIPIENTS = 1000

# Recipient domain -> the events SendGrid reports after "processed".
OUTCOMES = {
    "bounce.test": [{"event": "bounce", "type": "bounce", "status": "5.1.1",
                     "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
                     "bounce_classification": "Invalid Address"}],
    "blocked.test": [{"event": "bounce", "type": "blocked", "status": "4.7.1",
                      "reason": "421 4.7.1 Temporarily rate limited.", "bounce_classification": "Reputation"}],
    "dropped.test": [{"event": "dropped", "reason": "Invalid", "status": "5.0.0"}],
    "deferred.test": [{"event": "deferred", "attempt": "1",
                       "response": "451 4.3.0 Mailbox temporarily unavailable"}],
}
DELIVERED = [{"event": "delivered", "response": "250 2.0.0 OK"}]
OUTCOMES["spam.test"] = [*DELIVERED, {"event": "spamreport"}]


@dataclass
class Scripted:
    """One scripted answer: status, headers, body, and a delay before it."""

    status: int = 202
    headers: dict = field(default_factory=dict)
    body: dict | None = None
    delay: float = 0.0


@dataclass
class Accepted:
    message_id: str
    payload: dict
    at: float


def problems(payload) -> list[dict]:
    """SendGrid-style errors for a Mail Send payload (empty when it would be accepted)."""
    def error(message, field_name):
        return {"message": message, "field": field_name, "help": None}

    if not isinstance(payload, dict):
        return [error("Bad Request", None)]
    errors = []
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(error("The personalizations field is required and must have at least one personalization.",
                            "personalizations"))
    else:
        total = 0
        for i, p in enumerate(personalizations):
            to = p.get("to") if isinstance(p, dict) else None
            if not isinstance(to, list) or not to:
                errors.append(error("The to array is required for all personalization objects, "
                                    "and must have at least one email object with a valid email address.",
                                    f"personalizations.{i}.to"))
                continue
            seen = set()
            for kind in ("to", "cc", "bcc"):
                for j, a in enumerate(p.get(kind) or []):
                    total += 1
                    if not isinstance(a, dict) or "@" not in str(a.get("email", "")):
                        errors.append(error("Does not contain a valid address.",
                                            f"personalizations.{i}.{kind}.{j}.email"))
                    elif a["email"].lower() in seen:
                        errors.append(error("Each email address in the personalization block should be unique "
                                            "between to, cc, and bcc. We found the first duplicate instance of "
                                            f"[{a['email']}] in the personalizations.{i}.{kind} field.",
                                            f"personalizations.{i}.{kind}"))
                    else:
                        seen.add(a["email"].lower())
        if total > MAX_RECIPIENTS:
            errors.append(error("The total number of recipients must be no more than 1000.", "personalizations"))
    sender = payload.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
        errors.append(error("The from object must be provided for every email send. "
                            "It is an object that requires the email parameter, "
                            "but may also contain a name parameter.", "from.email"))
    if not payload.get("template_id"):
        if not payload.get("subject") and not all(isinstance(p, dict) and p.get("subject")
                                                  for p in personalizations or [{}]):
            errors.append(error("The subject is required. You can get around this requirement if you use "
                                "a template with a subject defined or if every personalization has a subject "
                                "defined.", "subject"))
        content = payload.get("content")
        if not isinstance(content, list) or not content or not all(
                isinstance(c, dict) and c.get("type") and c.get("value") for c in content):
            errors.append(error("Unless a valid template_id is provided, the content parameter is required. "
                                "There must be at least one defined content block. We typically suggest both "
                                "text/plain and text/html blocks are included, but only one block is required.",
                                "content"))
    return errors


def recipients(payload: dict) -> list[str]:
    return [a["email"] for p in payload["personalizations"] for kind in ("to", "cc", "bcc")
            for a in p.get(kind) or []]


def events_for(accepted: Accepted) -> list[dict]:
    """The Event Webhook events SendGrid would post for an accepted mail."""
    payload = accepted.payload
    custom_args = {**payload.get("custom_args", {})}
    events = []
    for email in recipients(payload):
        sg_message_id = f"{accepted.message_id}.recvd-{secrets.token_hex(4)}-{len(events)}"
        outcomes = OUTCOMES.get(email.rsplit("@", 1)[-1].lower(), DELIVERED)
        if outcomes[0]["event"] != "dropped":
            outcomes = [{"event": "processed"}, *outcomes]
        for extra in outcomes:
            events.append({
                "email": email,
                "timestamp": int(accepted.at),
                "smtp-id": f"<{accepted.message_id}@local.devstack>",
                "sg_event_id": secrets.token_urlsafe(16),
                "sg_message_id": sg_message_id,
                "category": payload.get("categories", []),
                **custom_args,
                **extra,
            })
    return events


class SendGridStandIn(LoopbackServer):
    """The stand-in server. ``start()`` binds 127.0.0.1 on a free port."""

    def __init__(self, api_key: str = API_KEY, on_accept=None, webhooks=None):
        self.api_key = api_key
        self.webhooks = webhooks
        """A ``devstack.webhooks.WebhookAccount`` (None: the stand-in has no Webhooks API)."""
        self.on_accept = on_accept if on_accept or webhooks is None else webhooks.accept
        self.accepted: list[Accepted] = []
        self.requests = 0
        self.arrivals: list[float] = []  # time.monotonic() of every Mail Send request
        self.in_flight = self.most_in_flight = 0  # requests being answered now; the most at once
        self.latency = 0.0  # seconds every answer takes (scripted delays come on top)
        self.script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        from devstack.suppressions import SuppressionLists  # it reads this module's events

        self.suppressions = SuppressionLists()

    thread_name = "sendgrid-standin"

    @property
    def url(self) -> str:
        return self.base_url

    def _answer(self, http, status: int, body: dict | None, headers: dict | None = None):
        data = json.dumps(body).encode() if body is not None else b""
        http.send_response(status)
        for name, value in (headers or {}).items():
            http.send_header(name, str(value))
        if data:
            http.send_header("Content-Type", "application/json")
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)

    def handle(self, http) -> None:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self._handle(http)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _handle(self, http) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length)
        with self._lock:
            self.requests += 1
            self.arrivals.append(time.monotonic())
            scripted = self.script.popleft() if self.script else None
        time.sleep(self.latency)
        if scripted:
            time.sleep(scripted.delay)
            if scripted.status != 202:
                return self._answer(http, scripted.status, scripted.body or {"errors": [
                    {"message": f"scripted {scripted.status}", "field": None, "help": None}]}, scripted.headers)
        settings = self.webhooks is not None and http.path.startswith("/v3/user/webhooks/")
        suppressions = http.path.startswith("/v3/suppression/")
        if http.path.rstrip("/") != "/v3/mail/send" and not settings and not suppressions:
            return self._answer(http, 404, {"errors": [{"message": "Not Found", "field": None, "help": None}]})
        if http.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._answer(http, 401, {"errors": [
                {"message": "The provided authorization grant is invalid, expired, or revoked",
                 "field": None, "help": None}]})
        if suppressions:
            return self._answer(http, *self.suppressions.handle(http.command, http.path))
        if settings:
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return self._answer(http, 400, {"errors": [{"message": "Bad Request", "field": None}]})
            return self._answer(http, *self.webhooks.handle(http.command, http.path, body))
        try:
            payload = json.loads(raw)
        except ValueError:
            return self._answer(http, 400, {"errors": [
                {"message": "Bad Request", "field": None, "help": None}]})
        errors = problems(payload)
        if errors:
            return self._answer(http, 400, {"errors": errors})
        accepted = Accepted(uuid.uuid4().hex[:22], payload, time.time())
        with self._lock:
            self.accepted.append(accepted)
        self.suppressions.record(accepted)  # before the answer: a caller that reads the lists next finds it
        self._answer(http, 202, None, {"X-Message-Id": accepted.message_id})
        if self.on_accept:
            self.on_accept(accepted)
