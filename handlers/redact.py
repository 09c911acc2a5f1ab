"""Error text fit for an item's ``error`` and for a log line: short, and without e-mail addresses.

Messages come from anywhere (a plugin's exception, SendGrid's errors,
botocore): whatever looks like an address becomes ``<address>``, and the
text is cut to ``MAX_ERROR_BYTES`` so an outcome always fits on its item.
"""

from __future__ import annotations

import re
import traceback
from pathlib import Path

MAX_ERROR_BYTES = 500
ADDRESS = re.compile(r"[^\s@<>()\[\]{},;:'\"]+@[^\s@<>()\[\]{},;:'\"]+")
ELLIPSIS = "…"


def redact(text: str) -> str:
    """``text`` with every e-mail address replaced by ``<address>``."""
    return ADDRESS.sub("<address>", text)


def clip(text: str, limit: int = MAX_ERROR_BYTES) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes (cut on a character, ending in an ellipsis when cut)."""
    raw = text.encode("utf-8", "replace")  # a lone surrogate becomes '?': DynamoDB takes UTF-8 only
    if len(raw) <= limit:
        return raw.decode("utf-8")
    return raw[:limit - len(ELLIPSIS.encode())].decode("utf-8", "ignore") + ELLIPSIS


def safe(text: str) -> str:
    """``text`` redacted and clipped."""
    return clip(redact(text))


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, redacted and clipped (``Type`` alone without a message)."""
    try:
        message = str(exc)
    except Exception:
        message = "(message unprintable)"
    return safe(f"{type(exc).__name__}: {message}" if message else type(exc).__name__)


def where(exc: BaseException) -> str | None:
    """``file.py:line in function`` where ``exc`` was raised, for a log line."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    frame = frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
