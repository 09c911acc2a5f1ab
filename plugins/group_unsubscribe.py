"""Event type ``group_unsubscribe``: the recipient left an unsubscribe group.

Records get ``asmGroupId`` (``asm_group_id``, the group).
"""

from plugins._event_type import event_type

register_event_types = event_type("group_unsubscribe", asmGroupId="asm_group_id")
