"""The ``dynamodb`` plugin's deploy half: the bounce table's TTL.

Loaded by the Pulumi program only (``infra.deploy``); never in Lambda.
"""

from __future__ import annotations

from infra.hookspecs import hookimpl
from plugins.dynamodb import BOUNCE_TTL_DAYS


@hookimpl
def stack_settings(config):
    """The bounce-row TTL in days, from the stack config ``bounceTtlDays``."""
    from infra.config import integer

    return integer(config, "bounceTtlDays", int(BOUNCE_TTL_DAYS.default))


@hookimpl
def infrastructure(stack):
    """The webhook's bounce-row TTL (the table is declared above)."""
    stack.add_env("webhook", BOUNCE_TTL_DAYS.name, str(stack.settings["dynamodb"]))
