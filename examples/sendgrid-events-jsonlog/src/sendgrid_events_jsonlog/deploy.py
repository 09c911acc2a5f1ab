"""The jsonlog plugin's deploy half: the stack config ``jsonlogEvents`` -> the webhook's ``JSONLOG_EVENTS``.

Named by the entry point ``jsonlog`` in the group ``sendgrid_events_deploy``;
loaded by the Pulumi program only (it may import pulumi and ``infra``).
"""

from __future__ import annotations

import pluggy

hookimpl = pluggy.HookimplMarker("sendgrid_events")


@hookimpl
def stack_settings(config):
    """The stack config ``jsonlogEvents`` (comma-separated types; unset: every event), read before any resource."""
    from infra.config import string

    return string(config, "jsonlogEvents", "", pattern=r"[a-z_,]*", what="comma-separated event types")


@hookimpl
def infrastructure(stack):
    events = stack.settings["jsonlog"]
    if events:
        stack.add_env("webhook", "JSONLOG_EVENTS", events)
