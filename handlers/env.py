"""Every environment variable the handlers read, in one place.

The Pulumi program sets exactly these (plus ``TABLE_<NAME>`` for each table a
function may use, see ``handlers.tables``); a test checks that the two agree
and that the README documents each one.
"""

from __future__ import annotations

import os
from typing import NamedTuple


# The records on the functions' import path are NamedTuples or plain classes, not dataclasses: creating
# a dataclass runs generated code, 0.4 to 0.7 ms a class that every cold start pays (bench/README.md,
# cold start; tests/test_cold_start_path.py).
class Var(NamedTuple):
    name: str
    description: str
    default: str | None = None

    def get(self) -> str | None:
        return os.environ.get(self.name, self.default)


ENABLED_PLUGINS = Var(
    "ENABLED_PLUGINS",
    "Comma-separated plugin names to enable (unset: bounce,dropped,dynamodb; empty: none).",
)
SENDGRID_API_HOST = Var(
    "SENDGRID_API_HOST", "Base URL of the SendGrid v3 API.", "https://api.sendgrid.com"
)
SENDGRID_API_KEY = Var(
    "SENDGRID_API_KEY", "The API key in plaintext: local runs only (never set by the Pulumi program)."
)
SENT_LOG_TTL_DAYS = Var(
    "SENT_LOG_TTL_DAYS", "Days a sent-log row (and a bounce row) is kept before TTL removes it; 0 keeps it.", "400"
)

SENDGRID_WEBHOOK_PUBLIC_KEYS = Var(
    "SENDGRID_WEBHOOK_PUBLIC_KEYS",
    "Comma-separated Signed Event Webhook verification keys (base64 DER, as SendGrid shows them); "
    "a request signed by any one of them is accepted.",
)
SENDGRID_WEBHOOK_MAX_AGE_SECONDS = Var(
    "SENDGRID_WEBHOOK_MAX_AGE_SECONDS",
    "Oldest signature timestamp accepted, in seconds (0 = no age check). The default, 3 days, is "
    "above SendGrid's 24-hour retry window and below the 7 days duplicates are remembered.",
    "259200",
)
SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE = Var(
    "SENDGRID_WEBHOOK_ALLOW_UNSIGNED_INSECURE",
    "'true' accepts unsigned webhook posts when no public key is set: local runs only, never in AWS.",
)

SENDGRID_API_KEY_PARAMETER = Var(
    "SENDGRID_API_KEY_PARAMETER",
    "Name of the SSM SecureString holding the API key (AWS); read once per cold start, with decryption.",
)
SENDGRID_EVENTS_STACK = Var(
    "SENDGRID_EVENTS_STACK", "The stack name, sent in every mail's custom_args as 'stack', and the 'Stack' "
    "dimension of the functions' metrics (handlers.metrics)."
)

# Which function reads which: handlers.functions (Function.reads).
