"""Backoff between retries, the one formula every retry loop here uses."""

from __future__ import annotations

import random


def full_jitter(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before retry ``attempt`` (0 first): random, up to ``min(cap, base * 2**attempt)``.

    "Full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"):
    concurrent clients that failed together do not retry together.
    """
    return random.uniform(0, min(cap, base * 2 ** attempt))
