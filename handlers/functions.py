"""Every Lambda function of the stack, described once: name, handler, timeout, memory, what it reads.

The Pulumi program builds a function from its ``Function`` (``infra/pipeline.py``),
sets exactly the variables it ``reads`` (a test checks the code reads no
other), grants it what the table declarations give its ``name``
(``handlers.tables.Table.access``); the local stack runs what the program
applied. Plugins refer to functions by these values (their ``name``); a
plugin adding one declares its own ``Function`` (``plugins/inbound/__init__.py``).
"""

from __future__ import annotations

from typing import NamedTuple

from handlers import env
from handlers.env import Var


class Function(NamedTuple):
    name: str
    """The function's name in the stack (``sender``); Lambda's is ``<project>-<stack>-<name>-<suffix>``."""
    handler: str
    """``module.function`` in the code package."""
    timeout: int = 30
    memory: int = 256
    description: str = ""
    reads: tuple[Var, ...] = ()
    """The environment variables its handler reads (besides ``TABLE_<NAME>`` of the tables it may use)."""


SENDER = Function(
    "sender", "handlers.sender.lambda_handler", timeout=300, memory=256,
    description="Sends mail-sender items inserted into DynamoDB through SendGrid",
    reads=(env.ENABLED_PLUGINS, env.SENDGRID_API_HOST, env.SENDGRID_API_KEY, env.SENT_LOG_TTL_DAYS,
           env.SENDGRID_API_KEY_PARAMETER, env.SENDGRID_EVENTS_STACK),
)
WEBHOOK = Function(
    "webhook", "handlers.webhook.lambda_handler", timeout=29, memory=256,
    description="Receives SendGrid Event Webhook batches",
    reads=(env.ENABLED_PLUGINS, env.SENT_LOG_TTL_DAYS, env.SENDGRID_WEBHOOK_PUBLIC_KEYS,
           env.SENDGRID_WEBHOOK_MAX_AGE_SECONDS, env.SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE,
           env.SENDGRID_EVENTS_STACK),
)
CORE = (SENDER, WEBHOOK)
"""The core's functions; plugins may add more (``StackContext.add_function``)."""
