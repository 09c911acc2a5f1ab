"""Event type ``deferred``: the receiving server asked SendGrid to try again later.

Records get ``attempt`` (the delivery attempts so far, as SendGrid sends it)
and ``response`` (the server's answer).
"""

from plugins._event_type import event_type

register_event_types = event_type("deferred", attempt="attempt", response="response")
