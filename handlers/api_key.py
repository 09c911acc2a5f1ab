"""The SendGrid API key: read once per cold start, never logged.

In AWS, ``SENDGRID_API_KEY_PARAMETER`` names an SSM SecureString (KMS
encrypted) that is read with decryption on first use and kept for the life of
the process; a key rotated in SSM is picked up by the next cold start. Local
runs set the plaintext ``SENDGRID_API_KEY`` instead. The parameter wins when
both are set. The value never appears in a log line or an exception message.
"""

from __future__ import annotations

import functools
import threading

from handlers import aws, env

_lock = threading.Lock()


class MissingApiKey(RuntimeError):
    """Neither variable is set (or the parameter is empty)."""


def api_key() -> str:
    """The key. The sender's threads all ask at once on a cold start: one reads, the others wait."""
    with _lock:
        return _load()


def reset() -> None:
    """Forget the key, as a new cold start would (tests)."""
    _load.cache_clear()


@functools.cache
def _load() -> str:
    parameter = env.SENDGRID_API_KEY_PARAMETER.get()
    if parameter:
        value = aws.client("ssm").get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    else:
        value = env.SENDGRID_API_KEY.get()
    if not value or not value.strip():
        raise MissingApiKey(f"no SendGrid API key: set {env.SENDGRID_API_KEY_PARAMETER.name} (AWS) "
                            f"or {env.SENDGRID_API_KEY.name} (local runs)")
    return value.strip()
