"""Sink ``jsonlog``: one JSON line per webhook event on stdout (CloudWatch Logs in Lambda).

A third-party sendgrid-events plugin, written as docs/plugins.md says: an
installed package whose entry point in the group ``sendgrid_events`` names
this module (the runtime half, shipped to Lambda in the layer), and whose
entry point of the same name in ``sendgrid_events_deploy`` names ``deploy``
(the deploy half: the stack config ``jsonlogEvents`` -> ``JSONLOG_EVENTS``).

``JSONLOG_EVENTS`` (comma-separated event types; unset: all) chooses the
events logged. Query them with CloudWatch Logs Insights, e.g.
``filter message = "sendgrid event" and event = "bounce" | stats count() by email``.
"""

from __future__ import annotations

import json
import sys

from handlers.env import Var
from handlers.hookspecs import hookimpl

JSONLOG_EVENTS = Var("JSONLOG_EVENTS", "Comma-separated event types the jsonlog sink logs (unset: every one).")
FIELDS = ("event", "email", "timestamp", "messageId", "fullMessageId", "matched", "type", "reason",
          "status", "bounceClassification", "mailId", "subject")


def line(record: dict) -> str:
    return json.dumps({"message": "sendgrid event", **{k: record.get(k) for k in FIELDS if k in record}},
                      ensure_ascii=False, default=str)


def write(records: list[dict]) -> None:
    wanted = {e.strip() for e in (JSONLOG_EVENTS.get() or "").split(",") if e.strip()}
    for record in records:
        if not wanted or record["event"] in wanted:
            print(line(record), file=sys.stdout)


@hookimpl
def register_sinks(register):
    register("jsonlog", write)  # printing twice is harmless: idempotent enough
