"""Event type ``bounce``: the receiving server refused the mail.

SendGrid sends ``type`` "bounce" (a hard bounce) or "blocked" (a soft one),
the SMTP ``status`` (e.g. 5.1.1), the server's ``reason`` and its
``bounce_classification`` (Invalid Address, Reputation, ...).
"""

from handlers.hookspecs import hookimpl


def fields(event: dict) -> dict:
    return {
        "type": event.get("type", "bounce"),
        "bounceClassification": event.get("bounce_classification"),
        "status": event.get("status"),
        "reason": event.get("reason"),
    }


@hookimpl
def register_event_types(register):
    register("bounce", fields)
