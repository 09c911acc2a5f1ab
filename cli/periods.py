"""Times on the command line: ``--since 7d`` (or 24h, 90m, 2w, a date, an ISO time) and days as shown."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from cli.errors import UsageError

UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGO = re.compile(r"^(\d+)\s*([mhdw])$")


def since(text: str, now: float | None = None) -> int:
    """Unix seconds for ``text``: an age (``7d``, ``24h``, ``90m``, ``2w``) before ``now``, or a date / ISO time
    (UTC unless it says otherwise)."""
    now = time.time() if now is None else now
    found = _AGO.match(text.strip().lower())
    if found:
        return int(now) - int(found[1]) * UNITS[found[2]]
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{text!r} is not an age (7d, 24h, 90m, 2w) nor a date (2026-11-01)") from None
    return int((at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp())


def argument(text: str) -> int:
    """``since`` as an argparse type (a bad value is argparse's usage error)."""
    import argparse

    try:
        return since(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def iso(timestamp: float | None) -> str | None:
    """``2026-11-30T13:15:02Z`` (None for None)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(float(timestamp), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(iso_time: str | None) -> str:
    """An ``iso`` time as a table shows it: ``2026-11-30 13:15:02`` (UTC)."""
    return (iso_time or "").replace("T", " ").removesuffix("Z")


def day(timestamp: float) -> str:
    """``2026-11-30`` (UTC)."""
    return datetime.fromtimestamp(float(timestamp), timezone.utc).strftime("%Y-%m-%d")


def epoch(iso_time) -> float:
    """Unix seconds of an ISO time as the tables hold it (``sentAt``); 0 when there is none."""
    try:
        at = datetime.fromisoformat(str(iso_time).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp()
