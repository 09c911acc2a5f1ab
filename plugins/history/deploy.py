"""The ``history`` plugin's deploy half: ``historyTtlDays`` -> ``HISTORY_TTL_DAYS`` on both functions.

Loaded by the Pulumi program only (``infra.deploy``); never in Lambda.
"""

from __future__ import annotations

from infra.deploy import integer_setting
from plugins.history import HISTORY_TTL_DAYS

stack_settings, infrastructure = integer_setting("history", "historyTtlDays", HISTORY_TTL_DAYS,
                                                 ("sender", "webhook"))
