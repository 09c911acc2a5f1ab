"""Event type ``unsubscribe``: the recipient unsubscribed from all mail."""

from plugins._event_type import event_type

register_event_types = event_type("unsubscribe")
