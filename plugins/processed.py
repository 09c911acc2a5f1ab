"""Event type ``processed``: SendGrid accepted the message and will try to deliver it."""

from plugins._event_type import event_type

register_event_types = event_type("processed")
