"""The Event Webhook side of the SendGrid stand-in: signed batches, posted and re-posted.

``SendGridStandIn(on_accept=poster.accept)`` hands every accepted mail to an
``EventPoster``; after a small delay it posts the events SendGrid would report
(``events_for``) to the webhook URL as one JSON array, signed the way SendGrid
signs: ECDSA P-256 / SHA-256 over ``timestamp + body``, base64 DER in
``X-Twilio-Email-Event-Webhook-Signature``, the timestamp in
``X-Twilio-Email-Event-Webhook-Timestamp``. A batch answered with anything
but 2xx (or not answered) is posted again later, as a whole, freshly signed,
as SendGrid does (it keeps trying for 24 hours; here ``max_attempts``).

Posts go to loopback addresses only.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devstack.http import post
from devstack.sendgrid import Accepted, events_for
from handlers.reconcile import message_id as message_id_of

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class WebhookKey:
    """The stand-in's own signing key (a fresh P-256 key unless one is given)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None):
        self.private_key = private_key or ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key_b64(self) -> str:
        """The verification key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo."""
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    @property
    def private_key_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The signature headers SendGrid would send with ``body``."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: stamp}


def batch_body(events: list[dict]) -> bytes:
    """A webhook body as SendGrid writes it: compact JSON array, then CRLF."""
    return json.dumps(events, separators=(",", ":"), ensure_ascii=False).encode() + b"\r\n"


@dataclass
class Batch:
    events: list[dict]
    due: float
    attempts: int = 0

    @property
    def message_ids(self) -> Counter:
        return Counter(message_id_of(e.get("sg_message_id")) for e in self.events)


@dataclass(frozen=True)
class Post:
    """One POST to the webhook and how it was answered (status None: no answer)."""

    status: int | None
    events: int
    attempt: int
    answer: str


@dataclass
class EventPoster:
    """Posts accepted mails' events to ``url``; ``start()`` runs the worker thread."""

    key: WebhookKey | None
    """The webhook's signing key (None: signing is off, posts are unsigned)."""
    url: str | None = None
    delay: float = 0.3
    retry_delay: float = 0.5
    max_retry_delay: float = 5.0
    max_attempts: int = 10
    batch_size: int = 1000
    timeout: float = 10.0
    posts: list[Post] = field(default_factory=list)
    given_up: list[Batch] = field(default_factory=list)

    def __post_init__(self):
        self._pending: list[Batch] = []
        self._outstanding: Counter = Counter()
        self._known: set[str] = set()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def accept(self, accepted: Accepted) -> None:
        """``SendGridStandIn`` callback: schedule the events of an accepted mail."""
        self.enqueue(events_for(accepted))

    def enqueue(self, events: list[dict], delay: float | None = None, message_ids=()) -> None:
        """Post ``events`` after ``delay``; ``message_ids``: mails known to this poster even when none of
        their events is one this webhook posts (so that they count as settled)."""
        batch = Batch(list(events), time.monotonic() + (self.delay if delay is None else delay))
        with self._cond:
            self._known.update(message_ids)
            for mid, n in batch.message_ids.items():
                self._known.add(mid)
                self._outstanding[mid] += n
            if batch.events:
                self._pending.append(batch)
                self._cond.notify()

    def settled(self, message_id: str) -> bool:
        """True once every event of ``message_id`` was answered 2xx (or given up)."""
        with self._cond:
            return message_id in self._known and self._outstanding[message_id] <= 0

    def idle(self) -> bool:
        with self._cond:
            return not self._pending and all(n <= 0 for n in self._outstanding.values())

    def start(self) -> "EventPoster":
        host = urlsplit(self.url or "").hostname
        if host not in LOOPBACK:
            raise ValueError(f"the stand-in posts to loopback addresses only, not {self.url!r}")
        self._thread = threading.Thread(target=self._run, name="sendgrid-event-webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout=self.timeout + 5)

    def _next(self) -> Batch | None:
        """Wait for the next due batch (fresh due batches merged into one)."""
        with self._cond:
            while not self._stopping:
                now = time.monotonic()
                due = [b for b in self._pending if b.due <= now]
                if due:
                    retry = next((b for b in due if b.attempts), None)
                    if retry:
                        self._pending.remove(retry)
                        return retry
                    merged = Batch([], now)
                    for batch in due:
                        if len(merged.events) + len(batch.events) > self.batch_size and merged.events:
                            break
                        self._pending.remove(batch)
                        merged.events += batch.events
                    return merged
                wait = min((b.due for b in self._pending), default=now + 60) - now
                self._cond.wait(timeout=max(wait, 0.001))
        return None

    def _run(self) -> None:
        while (batch := self._next()) is not None:
            batch.attempts += 1
            status, answer = self._post(batch_body(batch.events))
            self.posts.append(Post(status, len(batch.events), batch.attempts, answer))
            if status is not None and 200 <= status < 300:
                self._done(batch)
            elif batch.attempts >= self.max_attempts:
                log.warning("webhook: giving up a batch of %d events after %d attempts",
                            len(batch.events), batch.attempts)
                self.given_up.append(batch)
                self._done(batch)
            else:
                backoff = min(self.max_retry_delay, self.retry_delay * 2 ** (batch.attempts - 1))
                log.info("webhook answered %s; posting the batch again in %.1fs", status, backoff)
                with self._cond:
                    batch.due = time.monotonic() + backoff
                    self._pending.append(batch)

    def _done(self, batch: Batch) -> None:
        with self._cond:
            self._outstanding.subtract(batch.message_ids)

    def _post(self, body: bytes) -> tuple[int | None, str]:
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "SendGrid Event API",
                   **(self.key.headers(body) if self.key else {})}
        try:
            status, answer = post(self.url, body, headers, timeout=self.timeout)
        except OSError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return status, answer.decode(errors="replace")
