"""Settings: the shared cache and the API rate limits (issue 13; docs/operations.md, "Limits").

The shared cache holds the rate-limit counters (truenorth/core/counters.py) of the API and of the pages
reached without signing in, so every server process counts together:
- the database (Django's DatabaseCache in the table `truenorth_cache`, counters in
  `truenorth_rate_counter`, both created by `truenorth migrate`) by default;
- Redis when TRUENORTH_CACHE_URL is a redis:// (rediss://, unix://) URL, or, when it is unset, when
  TRUENORTH_REDIS_URL (the job queue's Redis) is set; TRUENORTH_CACHE_URL=database keeps the database
  even then.
"""

from __future__ import annotations

import re

from truenorth.env import ConfigError, env_int, env_str

# The DatabaseCache table; core/migrations/0001 creates it under this name (keep the two equal).
CACHE_TABLE = "truenorth_cache"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def _cache_url() -> str:
    """'' for the database, else the Redis URL."""
    configured = env_str("TRUENORTH_CACHE_URL", "").strip()
    if configured.lower() in ("database", "db"):
        return ""
    if configured:
        if not configured.startswith(_REDIS_SCHEMES):
            raise ConfigError(
                f"TRUENORTH_CACHE_URL: expected 'database' or a redis:// URL, got {configured!r}"
            )
        return configured
    fallback = env_str("TRUENORTH_REDIS_URL", "").strip()
    return fallback if fallback.startswith(_REDIS_SCHEMES) else ""


TRUENORTH_CACHE_URL = _cache_url()
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": TRUENORTH_CACHE_URL,
            "KEY_PREFIX": "truenorth",
            # A cache that does not answer within a second is treated as down (limits fail open).
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
        if TRUENORTH_CACHE_URL
        else {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": CACHE_TABLE,
            "KEY_PREFIX": "truenorth",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    ),
    # Per process, for derived figures any process can recompute cheaply and that need no sharing (the
    # goal page's forecasts, the dashboards' fragments): a get costs no query, unlike the database cache.
    "local": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "truenorth-local",
        "OPTIONS": {"MAX_ENTRIES": 5_000},
    },
}

# Whole pages and API lists kept per process (truenorth/orgs/pagecache.py; docs/operations.md,
# "Performance"): for at most this many seconds (0: off), at most this many answers of at most this many
# bytes each, so a process holds at most ENTRIES x MAX_BYTES (300 x 256 KiB = 75 MiB) however large
# an organisation's pages grow.
TRUENORTH_PAGE_CACHE_SECONDS = env_int("TRUENORTH_PAGE_CACHE_SECONDS", 60, minimum=0)
TRUENORTH_PAGE_CACHE_ENTRIES = env_int("TRUENORTH_PAGE_CACHE_ENTRIES", 300, minimum=1)
TRUENORTH_PAGE_CACHE_MAX_BYTES = env_int("TRUENORTH_PAGE_CACHE_MAX_BYTES", 262_144, minimum=1024)
CACHES["pages"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "truenorth-pages",
    "OPTIONS": {"MAX_ENTRIES": TRUENORTH_PAGE_CACHE_ENTRIES},
}

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


def parse_rate(name: str, raw: str) -> tuple[int, int] | None:
    """'600/minute' (or '100/10seconds', '5000/hour', '0' for off) as (requests, window seconds)."""
    if raw.strip() in ("", "0"):
        return None
    match = _RATE.match(raw)
    if not match or (match[2] and int(match[2]) == 0):
        raise ConfigError(f"{name}: expected e.g. 600/minute, 100/10seconds or 0 (off), got {raw!r}")
    if int(match[1]) == 0:
        return None
    return int(match[1]), int(match[2] or 1) * _UNITS[match[3].lower()]


# API requests (/api/…) per token, per client address (every API request, signed in or not; an IPv6
# address counts by its /64), and failed authentications (a wrong or revoked token) per address.
TRUENORTH_API_RATE_PER_TOKEN = parse_rate(
    "TRUENORTH_API_RATE_PER_TOKEN", env_str("TRUENORTH_API_RATE_PER_TOKEN", "600/minute")
)
TRUENORTH_API_RATE_PER_ADDRESS = parse_rate(
    "TRUENORTH_API_RATE_PER_ADDRESS", env_str("TRUENORTH_API_RATE_PER_ADDRESS", "1200/minute")
)
TRUENORTH_API_RATE_AUTH_FAILURES = parse_rate(
    "TRUENORTH_API_RATE_AUTH_FAILURES", env_str("TRUENORTH_API_RATE_AUTH_FAILURES", "30/minute")
)
