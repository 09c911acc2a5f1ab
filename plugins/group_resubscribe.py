"""Event type ``group_resubscribe``: the recipient rejoined an unsubscribe group.

Records get ``asmGroupId`` (``asm_group_id``, the group).
"""

from plugins._event_type import event_type

register_event_types = event_type("group_resubscribe", asmGroupId="asm_group_id")
