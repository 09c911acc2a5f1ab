"""The ``history`` plugin's deploy half: the event history's TTL.

Loaded by the Pulumi program only (``infra.deploy``); never in Lambda.
"""

from __future__ import annotations

from infra.hookspecs import hookimpl
from plugins.history import HISTORY_TTL_DAYS


@hookimpl
def stack_settings(config):
    """The event-history TTL in days, from the stack config ``historyTtlDays``."""
    from infra.config import integer

    return integer(config, "historyTtlDays", int(HISTORY_TTL_DAYS.default))


@hookimpl
def infrastructure(stack):
    for function in ("sender", "webhook"):
        stack.add_env(function, HISTORY_TTL_DAYS.name, str(stack.settings["history"]))
