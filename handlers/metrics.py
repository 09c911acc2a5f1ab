"""The functions' metrics, as CloudWatch Embedded Metric Format (EMF) log lines.

A function writes one JSON line per invocation (the webhook, inbound) or
stream batch (the sender) to standard output; CloudWatch Logs turns it into
metrics: no agent, no ``PutMetricData`` call, no dependency. Each line is an
EMF document: the ``_aws`` metadata (``Timestamp`` in epoch milliseconds and
one metric directive: ``NAMESPACE``, the dimension set ``[DIMENSION]``, the
metrics' ``Name`` and ``Unit``), the dimension's value (the stack name,
``SENDGRID_EVENTS_STACK``) and every metric's value as top-level members.

Each function's ``Recorder`` lists the metrics it emits (``Recorder.metrics``):
the Pulumi program builds its alarms and dashboard from these names, and a
test checks that they are the ones the handlers write. Counts are emitted on
every line (0 included, so an alarm sees a value and not missing data);
a duration only when something was timed. Values are counts and durations,
never addresses or message text.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import NamedTuple

from handlers import env

NAMESPACE = "sendgrid-events"
DIMENSION = "Stack"
COUNT = "Count"
MILLISECONDS = "Milliseconds"
MAX_VALUES = 100  # EMF: a metric's value is a number or an array of at most 100 numbers


class Metric(NamedTuple):  # not a dataclass: its class creation alone costs 0.5 ms of cold start
    name: str
    unit: str
    description: str


class Recorder:
    """One function's metrics: counts added and durations observed (from any thread), written as one
    EMF line by ``emit``, which starts the next line afresh."""

    def __init__(self, function: str, *metrics: Metric):
        self.function = function
        self.metrics = {m.name: m for m in metrics}
        self._lock = threading.Lock()
        self._values: dict[str, float | list[float]] = {}
        self._notes: dict = {}

    def start(self) -> None:
        """Forget anything recorded outside an invocation: the next line holds this invocation's alone."""
        with self._lock:
            self._values, self._notes = {}, {}

    def add(self, name: str, value: float = 1) -> None:
        self._check(name, COUNT)
        with self._lock:
            self._values[name] = self._values.get(name, 0) + value

    def observe(self, name: str, milliseconds: float) -> None:
        """One duration (a line keeps the first ``MAX_VALUES``: a sender batch has at most 100 mails)."""
        self._check(name, MILLISECONDS)
        with self._lock:
            values = self._values.setdefault(name, [])
            if len(values) < MAX_VALUES:
                values.append(round(milliseconds, 3))

    def note(self, **properties) -> None:
        """More members for the line (not metrics; Logs Insights reads them): counts by type, a status."""
        with self._lock:
            self._notes.update(properties)

    def _check(self, name: str, unit: str) -> None:
        if name not in self.metrics or self.metrics[name].unit != unit:
            raise KeyError(f"{self.function} emits no {unit} metric {name!r}")

    def document(self, now: float | None = None) -> dict:
        """The EMF document of what was recorded since the last one (and start the next)."""
        with self._lock:
            values, self._values = self._values, {}
            notes, self._notes = self._notes, {}
        values = {m.name: values.get(m.name, 0) for m in self.metrics.values()
                  if m.unit == COUNT or values.get(m.name)}
        return {
            "_aws": {
                "Timestamp": int((time.time() if now is None else now) * 1000),
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": self.metrics[name].unit} for name in values],
                }],
            },
            DIMENSION: env.SENDGRID_EVENTS_STACK.get() or "unknown",
            "function": self.function,
            **notes,
            **values,
        }

    def emit(self) -> None:
        """Write the line to standard output (Lambda sends it to CloudWatch Logs as it is)."""
        sys.stdout.write(json.dumps(self.document(), separators=(",", ":")) + "\n")
        sys.stdout.flush()


def since(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.monotonic()`` value)."""
    return (time.monotonic() - started) * 1000


# The webhook's count names (``handlers.webhook.receive``) -> their metrics.
WEBHOOK_COUNTS = {"received": "EventsReceived", "accepted": "EventsAccepted", "duplicates": "EventsDuplicate",
                  "ignored": "EventsIgnored", "rejected": "EventsRejected", "orphans": "EventsOrphaned"}
REFUSED_STATUSES = (400, 403, 413, 503)


def webhook_refused(status: int) -> str:
    return f"WebhookRefused{status}"


WEBHOOK = Recorder(
    "webhook",
    Metric("WebhookPosts", COUNT, "posts answered (one per invocation)"),
    Metric("EventsReceived", COUNT, "events in verified posts: stored, ignored, duplicates and rejects"),
    Metric("EventsAccepted", COUNT, "events stored (handed to the sinks)"),
    Metric("EventsDuplicate", COUNT, "events seen before (SendGrid's retries), skipped"),
    Metric("EventsIgnored", COUNT, "events of a type no enabled plugin handles"),
    Metric("EventsRejected", COUNT, "events set aside in the rejects table"),
    Metric("EventsOrphaned", COUNT, "stored events without a sent-log row (not sent by this stack)"),
    *(Metric(webhook_refused(s), COUNT, f"posts answered {s}") for s in REFUSED_STATUSES),
    Metric("WebhookDuration", MILLISECONDS, "time to answer a post (ingest queue: to process a queued one)"),
    Metric("QueueRetries", COUNT, "ingest queue: queued posts left for a retry (503 or out of time)"),
    Metric("QueueWait", MILLISECONDS, "ingest queue: time from API Gateway receiving a post to processing it"),
)
SENDER = Recorder(
    "sender",
    Metric("MailsSent", COUNT, "mails SendGrid accepted"),
    Metric("MailsRejected", COUNT, "mails refused for good (invalid item, a veto, SendGrid 4xx)"),
    Metric("MailsFailed", COUNT, "mails not sent this time, reported for a retry"),
    Metric("RecipientsSuppressed", COUNT, "recipients dropped before sending (suppression list)"),
    Metric("SendGridThrottled", COUNT, "Mail Send calls SendGrid answered 429"),
    Metric("SendDuration", MILLISECONDS, "time to send one mail (claim to outcome)"),
)
INBOUND = Recorder(
    "inbound",
    Metric("InboundStored", COUNT, "Inbound Parse posts stored"),
    Metric("InboundRefused", COUNT, "Inbound Parse posts refused (400, 403, 413): never stored"),
    Metric("InboundFailed", COUNT, "Inbound Parse posts answered 503 (SendGrid posts them again)"),
)
RECORDERS = {r.function: r for r in (WEBHOOK, SENDER, INBOUND)}
