"""Event type ``spamreport``: the recipient marked the message as spam.

(The ``suppression`` plugin stores these so the address is not mailed again.)
"""

from plugins._event_type import event_type

register_event_types = event_type("spamreport")
