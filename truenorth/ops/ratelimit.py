"""API rate limits per token and per client address, counted in the shared cache (issue 13).

Every `/api/` request counts against its client address (`accounts.services.client_ip`, which believes
X-Forwarded-For only from TRUENORTH_TRUSTED_PROXIES; an IPv6 address by its /64) and, when it carries
`Authorization: Bearer …`, against that token (keyed by the token's SHA-256, the hash APIToken stores; no
database lookup). A request carrying a token also reads the address's failed authentications, and a 401
answer adds one. All of it is one round trip to the cache (core/counters.py: fixed windows aligned to
the clock, atomic on the database and on Redis).

Past a limit the answer is 429 `{"detail", "errors": []}` with `Retry-After` (seconds until the window
resets); every API answer carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (IETF
draft "RateLimit header fields") of the limit closest to running out.

When the cache cannot be reached the request is let through (fail open) and a warning is logged, at most
once a minute per process: an outage of the cache must not take the API down with it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from truenorth.accounts.services import client_ip, throttle_key
from truenorth.core import counters
from truenorth.core.health import CheckResult

logger = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 60.0
_last_warning = 0.0


@dataclass(frozen=True)
class _Limit:
    what: str  # for the message: "this token", "this address"
    key: str
    limit: int
    window: int
    amount: int  # 1 counts this request, 0 only reads (failed authentications)


def _bearer(request: HttpRequest) -> str:
    scheme, _, raw = str(request.META.get("HTTP_AUTHORIZATION", "")).strip().partition(" ")
    return raw.strip() if scheme.lower() == "bearer" else ""


def _limits(token: str, address: str) -> list[_Limit]:
    limits = []
    per_address = settings.TRUENORTH_API_RATE_PER_ADDRESS
    if per_address:
        limits.append(_Limit("this address", f"api:addr:{address}", *per_address, 1))
    if token:
        per_token = settings.TRUENORTH_API_RATE_PER_TOKEN
        if per_token:
            digest = hashlib.sha256(token.encode()).hexdigest()  # = APIToken.token_hash
            limits.append(_Limit("this token", f"api:token:{digest}", *per_token, 1))
        failures = settings.TRUENORTH_API_RATE_AUTH_FAILURES
        if failures:
            limits.append(
                _Limit("failed authentications from this address", f"api:fail:{address}", *failures, 0)
            )
    return limits


def _warn(message: str, exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARN_EVERY_SECONDS or _last_warning == 0.0:
        _last_warning = now
        logger.warning(
            "%s (%s: %s); API rate limits are off until it answers", message, type(exc).__name__, exc
        )


def _seconds(reset: float) -> int:
    return max(1, math.ceil(reset))


def _too_many(limit: _Limit, reset: float) -> HttpResponse:
    seconds = _seconds(reset)
    unit = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(limit.window)
    per = f"a {unit}" if unit else f"per {limit.window} seconds"
    response = JsonResponse(
        {
            "detail": f"Too many requests: {limit.limit} {per} for {limit.what}. "
            f"Try again in {seconds} seconds.",
            "errors": [],
        },
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


class APIRateLimitMiddleware:
    """Answers 429 with Retry-After past the limits; adds RateLimit-* headers to API answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        token = _bearer(request)
        address = throttle_key(client_ip(request))
        limits = _limits(token, address)
        if not limits:
            return self.get_response(request)
        try:
            hits = counters.hit_many([(lim.key, lim.window, lim.amount) for lim in limits])
        except Exception as exc:  # any cache failure: fail open (module docstring)
            _warn("The shared cache did not answer", exc)
            return self.get_response(request)
        over = [
            (lim, hit)
            for lim, hit in zip(limits, hits, strict=True)
            if hit.count > lim.limit or (lim.amount == 0 and hit.count >= lim.limit)
        ]
        if over:
            limit, hit = max(over, key=lambda pair: pair[1].reset)
            response = _too_many(limit, hit.reset)
            self._headers(response, limit.limit, 0, hit.reset)
            return response
        response = self.get_response(request)
        if response.status_code == 401 and token and settings.TRUENORTH_API_RATE_AUTH_FAILURES:
            failures = next(lim for lim in limits if lim.amount == 0)
            try:
                counters.hit(failures.key, failures.window)
            except Exception as exc:
                _warn("The shared cache did not answer", exc)
        counted = [(lim, hit) for lim, hit in zip(limits, hits, strict=True) if lim.amount]
        if counted:
            limit, hit = min(counted, key=lambda pair: (pair[0].limit - pair[1].count, -pair[1].reset))
            self._headers(response, limit.limit, limit.limit - hit.count, hit.reset)
        return response

    @staticmethod
    def _headers(response: HttpResponse, limit: int, remaining: int, reset: float) -> None:
        response["RateLimit-Limit"] = str(limit)
        response["RateLimit-Remaining"] = str(max(0, remaining))
        response["RateLimit-Reset"] = str(_seconds(reset))


def check() -> list[CheckResult]:
    """`truenorth check`: the shared cache answers (one counter round trip), which backend, the limits."""
    kind = counters.backend()
    where = {
        "database": "the database (table truenorth_rate_counter)",
        "redis": "Redis (TRUENORTH_CACHE_URL or TRUENORTH_REDIS_URL)",
        "memory": "this process's memory (not shared between server processes)",
    }[kind]
    results = []
    try:
        counters.hit("health-check", 60, amount=0)
    except Exception as exc:
        results.append(
            CheckResult("shared cache", "error", f"{where} does not answer ({type(exc).__name__}: {exc})")
        )
    else:
        status = "warning" if kind == "memory" else "ok"
        results.append(CheckResult("shared cache", status, f"{where} answers"))

    def show(rate: tuple[int, int] | None) -> str:
        return f"{rate[0]}/{rate[1]}s" if rate else "off"

    detail = (
        f"per token {show(settings.TRUENORTH_API_RATE_PER_TOKEN)}, "
        f"per address {show(settings.TRUENORTH_API_RATE_PER_ADDRESS)}, "
        f"failed authentications {show(settings.TRUENORTH_API_RATE_AUTH_FAILURES)}"
    )
    off = not (settings.TRUENORTH_API_RATE_PER_TOKEN or settings.TRUENORTH_API_RATE_PER_ADDRESS)
    results.append(CheckResult("API rate limits", "warning" if off else "ok", detail))
    return results
