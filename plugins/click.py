"""Event type ``click``: the recipient clicked a tracked link.

Records get ``url``, ``urlOffset`` (``url_offset``: which link, in which
part), ``userAgent`` and ``ip``.
"""

from plugins._event_type import event_type

register_event_types = event_type("click", url="url", urlOffset="url_offset", userAgent="useragent", ip="ip")
