"""The shared helper of event types that only pick a few fields of the event.

``event_type("deferred", attempt="attempt", response="response")`` is a
``register_event_types`` hook implementation registering ``deferred``, whose
records get ``attempt`` and ``response`` (record key = SendGrid field). A
missing field becomes None. Nothing else is dropped: the record keeps the
whole raw event under ``sgEvent``, unknown fields included.

Not a plugin itself (no name in ``BUILTIN_PLUGINS``).
"""

from __future__ import annotations

from handlers.hookspecs import hookimpl


def picker(**fields: str):
    """``fields(event) -> dict``: record key -> the event's field of that name."""
    def pick(event: dict) -> dict:
        return {key: event.get(name) for key, name in fields.items()}
    return pick


def event_type(name: str, **fields: str):
    """A ``register_event_types`` hook registering ``name`` with ``picker(**fields)``."""
    pick = picker(**fields)

    @hookimpl
    def register_event_types(register):
        register(name, pick)

    return register_event_types
