"""Rate limits for the pages reached without signing in (pulse answer links, share links, feeds,
unsubscribe): at most `limit` hits per `window` seconds for one (scope, key), e.g. ("pulse-link", ip).

Counts live in the shared cache (truenorth/core/counters.py: the database by default, Redis when
configured), counted atomically, so the limit holds across every server process. Windows are fixed and
aligned to the clock (a 60-second window starts over at every full minute). If the cache cannot be
reached the hit is let through and a warning logged, like the API's limits (ops/ratelimit.py).
"""

from __future__ import annotations

import hashlib
import logging
import math

from truenorth.core import counters
from truenorth.core.errors import TooManyRequests

logger = logging.getLogger(__name__)


def _counter_key(scope: str, key: str) -> str:
    return "tn-throttle:" + hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()


def hit(scope: str, key: str, *, limit: int, window: int) -> None:
    """Count one hit; raise TooManyRequests (429) once more than `limit` happened in the window."""
    try:
        counted = counters.hit(_counter_key(scope, key), window)
    except Exception as exc:  # the cache is down: fail open, as the API does
        logger.warning("Throttle %s not applied: the shared cache did not answer (%s)", scope, exc)
        return
    if counted.count > limit:
        wait = max(1, math.ceil(counted.reset))
        raise TooManyRequests(f"Too many requests; wait {wait} seconds and try again.")


def reset(scope: str, key: str) -> None:
    counters.reset(_counter_key(scope, key))
