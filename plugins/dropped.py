"""Event type ``dropped``: SendGrid did not even try to deliver.

The ``reason`` says why (Invalid, Bounced Address, Unsubscribed Address,
Spam Reporting Address, ...); ``status`` is sometimes present.
"""

from handlers.hookspecs import hookimpl


def fields(event: dict) -> dict:
    return {"type": "dropped", "reason": event.get("reason"), "status": event.get("status")}


@hookimpl
def register_event_types(register):
    register("dropped", fields)
