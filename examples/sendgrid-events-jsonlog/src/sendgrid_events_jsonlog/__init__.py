"""Sink ``jsonlog``: one JSON line per webhook event on stdout (CloudWatch Logs in Lambda).

A third-party sendgrid-events plugin: an installed package whose entry point
in the group ``sendgrid_events`` names this module. It needs nothing from
sendgrid-events itself: the hook marker is pluggy's, for the project name
``sendgrid_events``.

``JSONLOG_EVENTS`` (comma-separated event types; unset: all) chooses the
events logged; the stack config ``jsonlogEvents`` sets it (``deploy.py``,
the package's deploy half, named by the entry point group
``sendgrid_events_deploy``: never in Lambda). Query them with CloudWatch Logs Insights, e.g.
``filter message = "sendgrid event" and event = "bounce" | stats count() by email``.
"""

from __future__ import annotations

import json
import os
import sys

import pluggy

hookimpl = pluggy.HookimplMarker("sendgrid_events")

FIELDS = ("event", "email", "timestamp", "messageId", "fullMessageId", "matched", "type", "reason",
          "status", "bounceClassification", "mailId", "subject")


def line(record: dict) -> str:
    return json.dumps({"message": "sendgrid event", **{k: record.get(k) for k in FIELDS if k in record}},
                      ensure_ascii=False, default=str)


def write(records: list[dict]) -> None:
    wanted = {e.strip() for e in os.environ.get("JSONLOG_EVENTS", "").split(",") if e.strip()}
    for record in records:
        if not wanted or record["event"] in wanted:
            print(line(record), file=sys.stdout)


@hookimpl
def register_sinks(register):
    register("jsonlog", write)  # printing twice is harmless: idempotent enough

