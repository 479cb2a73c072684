"""Rate limits for the pages reached without signing in (pulse answer links, share links, feeds,
unsubscribe): at most `limit` hits per `window` seconds for one (scope, key), e.g. ("pulse-link", ip).

Counts live in Django's cache. With the default per-process cache, each server worker counts on its
own (the limit is per worker); a shared cache (database or Redis, issue 13) makes it global.
"""

from __future__ import annotations

import hashlib

from django.core.cache import cache

from truenorth.core.errors import TooManyRequests


def _cache_key(scope: str, key: str) -> str:
    return "tn-throttle:" + hashlib.sha256(f"{scope}\0{key}".encode()).hexdigest()


def hit(scope: str, key: str, *, limit: int, window: int) -> None:
    """Count one hit; raise TooManyRequests (429) once more than `limit` happened in the window."""
    cache_key = _cache_key(scope, key)
    if cache.add(cache_key, 1, timeout=window):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.set(cache_key, 1, timeout=window)
            count = 1
    if count > limit:
        raise TooManyRequests(f"Too many requests; wait {window} seconds and try again.")


def reset(scope: str, key: str) -> None:
    cache.delete(_cache_key(scope, key))
