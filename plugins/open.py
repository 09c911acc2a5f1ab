"""Event type ``open``: the recipient opened the message (open tracking).

Records get ``userAgent``, ``ip`` and ``machineOpen`` (``sg_machine_open``:
true when a mail client such as Apple Mail Privacy Protection fetched it).
"""

from plugins._event_type import event_type

register_event_types = event_type("open", userAgent="useragent", ip="ip", machineOpen="sg_machine_open")
