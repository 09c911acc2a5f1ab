"""The keys of a reconciled record that the core owns: what every sink can count on.

``handlers.reconcile.build_record`` sets these for every accepted event; an
event type plugin's ``fields(event)`` adds its own keys (``type``,
``reason``, ...) and may not return one of these (an error when the plugin
manager is built: it would overwrite, say, the dedup key ``eventId``).
"""

from __future__ import annotations

CORE_KEYS = (
    "eventId",         # the dedup key: sg_event_id, else "sha256:" of the event
    "sgEventId",       # SendGrid's sg_event_id (None when absent)
    "fullMessageId",   # SendGrid's sg_message_id ("unknown:<eventId>" when absent)
    "messageId",       # the X-Message-Id part of it (before the first dot)
    "event",           # the event type (bounce, dropped, ...)
    "email",           # the recipient's address
    "timestamp",       # Unix seconds
    "matched",         # whether the sent log knew the mail
    "fromEmail", "fromName", "toEmail", "toName", "subject", "mailId",  # from the sent log (None if unmatched)
    "sgEvent",         # the raw event, every field
)
PROBE = {"event": "probe", "email": "probe@example.com", "timestamp": 0, "sg_event_id": "probe",
         "sg_message_id": "probe.probe"}
"""An event an event type's ``fields`` is tried with when its plugin is registered."""


def clashes(fields: dict) -> list[str]:
    """The core keys ``fields`` would overwrite."""
    return [k for k in fields if k in CORE_KEYS]
