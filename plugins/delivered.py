"""Event type ``delivered``: the receiving server accepted the message.

Records get ``response`` (the server's answer, e.g. "250 OK").
"""

from plugins._event_type import event_type

register_event_types = event_type("delivered", response="response")
