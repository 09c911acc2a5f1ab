"""The SendGrid stand-in's suppression lists: bounces, blocks, invalid emails, spam reports.

SendGrid adds an address to a list when a mail to it ends that way, whether
or not any Event Webhook heard of it; ``record(accepted)`` does the same for
each mail the stand-in accepts, from the events it reports (``events_for``):
a hard bounce to ``bounces``, a blocked bounce to ``blocks``, a drop for
Invalid to ``invalid_emails``, a spam report to ``spam_reports``. One entry
per address and list (a later one replaces it), with SendGrid's fields
(``LISTS``). ``add`` puts one there directly (a test's past).

``handle`` answers ``GET /v3/suppression/<list>`` as SendGrid does: a JSON
array, newest first, filtered by ``start_time`` / ``end_time`` (Unix seconds,
inclusive), paginated by ``limit`` (at most 500) and ``offset``; 400 with
``errors`` for a bad parameter, 404 for an unknown list.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

from devstack.sendgrid import Accepted, events_for

PREFIX = "/v3/suppression/"
MAX_LIMIT = 500
INVALID_REASON = "Mail domain mentioned in email address is unknown"
# list -> the fields of its entries (besides created and email)
LISTS = {"bounces": ("reason", "status"), "blocks": ("reason", "status"), "invalid_emails": ("reason",),
         "spam_reports": ("ip",)}


def list_of(event: dict) -> str | None:
    """The list a reported event puts its address on, or None."""
    if event["event"] == "bounce":
        return "blocks" if event.get("type") == "blocked" else "bounces"
    if event["event"] == "dropped" and event.get("reason") == "Invalid":
        return "invalid_emails"
    if event["event"] == "spamreport":
        return "spam_reports"
    return None


def _error(status: int, message: str, field: str | None = None) -> tuple[int, dict]:
    return status, {"errors": [{"field": field, "message": message}]}


class SuppressionLists:
    def __init__(self):
        self.lists: dict[str, dict[str, dict]] = {name: {} for name in LISTS}
        self._lock = threading.Lock()

    def add(self, name: str, email: str, created: int, **fields) -> dict:
        """Put ``email`` on list ``name`` (replacing its entry) with SendGrid's fields."""
        entry = {"created": int(created), "email": email, **{f: fields.get(f) for f in LISTS[name]}}
        with self._lock:
            self.lists[name][email.lower()] = entry
        return entry

    def record(self, accepted: Accepted) -> None:
        """The addresses an accepted mail puts on a list (what its events say)."""
        for event in events_for(accepted):
            name = list_of(event)
            if name == "invalid_emails":
                self.add(name, event["email"], event["timestamp"], reason=INVALID_REASON)
            elif name == "spam_reports":
                self.add(name, event["email"], event["timestamp"], ip="127.0.0.1")
            elif name:
                self.add(name, event["email"], event["timestamp"], reason=event.get("reason"),
                         status=event.get("status"))

    def handle(self, method: str, path: str) -> tuple[int, object]:
        """SendGrid's answer (status, JSON body) to a suppressions API call."""
        parts = urlsplit(path)
        name = parts.path[len(PREFIX):].rstrip("/")
        if name not in LISTS:
            return _error(404, "Not Found")
        if method != "GET":
            return _error(405, "Method Not Allowed")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        values = {}
        for key, default in (("start_time", None), ("end_time", None), ("limit", MAX_LIMIT), ("offset", 0)):
            try:
                values[key] = int(query[key]) if key in query else default
            except ValueError:
                return _error(400, f"{key} must be an integer", key)
        if not 1 <= values["limit"] <= MAX_LIMIT:
            return _error(400, f"limit must be between 1 and {MAX_LIMIT}", "limit")
        if values["offset"] < 0:
            return _error(400, "offset must be 0 or more", "offset")
        with self._lock:
            entries = list(self.lists[name].values())
        entries = [e for e in entries if (values["start_time"] is None or e["created"] >= values["start_time"])
                   and (values["end_time"] is None or e["created"] <= values["end_time"])]
        entries.sort(key=lambda e: (-e["created"], e["email"]))
        return 200, entries[values["offset"]:values["offset"] + values["limit"]]
