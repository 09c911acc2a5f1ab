"""The ``dynamodb`` plugin's deploy half: ``bounceTtlDays`` -> the webhook's ``BOUNCE_TTL_DAYS``.

Loaded by the Pulumi program only (``infra.deploy``); never in Lambda.
"""

from __future__ import annotations

from infra.deploy import integer_setting
from plugins.dynamodb import BOUNCE_TTL_DAYS

stack_settings, infrastructure = integer_setting("dynamodb", "bounceTtlDays", BOUNCE_TTL_DAYS, ("webhook",))
