"""The jsonlog plugin's deploy half: the stack config ``jsonlogEvents`` -> the webhook's ``JSONLOG_EVENTS``.

Named by the entry point ``jsonlog`` in the group ``sendgrid_events_deploy``;
loaded by the Pulumi program only, so it imports ``infra`` freely.
"""

from __future__ import annotations

from infra.config import string
from infra.hookspecs import hookimpl
from sendgrid_events_jsonlog import JSONLOG_EVENTS


@hookimpl
def stack_settings(config):
    """The stack config ``jsonlogEvents`` (comma-separated types; unset: every event), read before any resource."""
    return string(config, "jsonlogEvents", "", pattern=r"[a-z_,]*", what="comma-separated event types")


@hookimpl
def infrastructure(stack):
    events = stack.settings["jsonlog"]
    if events:
        stack.add_env("webhook", JSONLOG_EVENTS.name, events)
