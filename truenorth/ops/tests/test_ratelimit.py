"""API rate limits (ops/ratelimit.py) over the database-backed shared cache (core/counters.py)."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from truenorth.conf import limits
from truenorth.core import counters
from truenorth.core.errors import TooManyRequests
from truenorth.core.models import RateCounter
from truenorth.engagement.services import throttle
from truenorth.env import ConfigError
from truenorth.ops import ratelimit

pytestmark = pytest.mark.django_db

# 30 seconds into a minute (1_800_000_000 is a multiple of 60): a 60-second window resets in 30 s.
T0 = 1_800_000_030.0
DATABASE_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": limits.CACHE_TABLE}
}


@pytest.fixture
def shared_cache(settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The production cache (the database), small limits, and a clock the test moves (a one-item list)."""
    settings.CACHES = DATABASE_CACHE
    settings.TRUENORTH_API_RATE_PER_TOKEN = (3, 60)
    settings.TRUENORTH_API_RATE_PER_ADDRESS = (5, 60)
    settings.TRUENORTH_API_RATE_AUTH_FAILURES = (2, 60)
    now = [T0]
    monkeypatch.setattr(counters, "clock", lambda: now[0])
    yield now


def _me(token: str | None = None, address: str = "10.0.0.1", **extra: str) -> Any:
    meta: dict[str, Any] = {"REMOTE_ADDR": address, **extra}
    if token:
        meta["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return Client().get("/api/v1/me", **meta)


def test_per_token_limit_answers_429_with_retry_after_and_ratelimit_headers(shared_cache, owner) -> None:
    for remaining in (2, 1, 0):
        response = _me(owner.token)
        assert response.status_code == 200
        assert response["RateLimit-Limit"] == "3"
        assert response["RateLimit-Remaining"] == str(remaining)
        assert response["RateLimit-Reset"] == "30"
    shared_cache[0] = T0 + 18.2  # 11.8 s left in the window
    refused = _me(owner.token)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "12"
    assert refused["RateLimit-Remaining"] == "0" and refused["RateLimit-Reset"] == "12"
    body = refused.json()
    assert body["errors"] == []
    assert "3 a minute for this token" in body["detail"] and "12 seconds" in body["detail"]


def test_tokens_do_not_share_a_count_and_the_window_resets(shared_cache, settings, owner, member) -> None:
    settings.TRUENORTH_API_RATE_PER_ADDRESS = (1000, 60)
    for _ in range(3):
        assert _me(owner.token).status_code == 200
    assert _me(owner.token).status_code == 429
    assert _me(member.token).status_code == 200  # another token: its own count
    assert _me(owner.read_token).status_code == 200  # the same person's other token too
    shared_cache[0] = T0 + 30  # the next minute
    again = _me(owner.token)
    assert again.status_code == 200 and again["RateLimit-Remaining"] == "2"
    assert again["RateLimit-Reset"] == "60"


def test_per_address_limit_counts_unauthenticated_requests_and_ipv6_by_its_64(shared_cache) -> None:
    for _ in range(5):
        assert _me(address="10.0.0.7").status_code == 401
    refused = _me(address="10.0.0.7")
    assert refused.status_code == 429 and refused["Retry-After"] == "30"
    assert "for this address" in refused.json()["detail"]
    assert _me(address="10.0.0.8").status_code == 401  # another address
    for i in range(5):
        assert _me(address=f"2001:db8:1:2::{i + 1}").status_code == 401
    assert _me(address="2001:db8:1:2:ffff::9").status_code == 429  # the same /64
    assert _me(address="2001:db8:1:3::1").status_code == 401  # the next /64


def test_the_address_is_the_one_a_trusted_proxy_vouches_for(shared_cache, settings) -> None:
    settings.TRUENORTH_TRUSTED_PROXIES = ["10.9.0.0/16"]
    for _ in range(5):
        assert _me(address="10.9.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 401
    assert _me(address="10.9.0.1", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    # Behind the same proxy, another client has its own count.
    assert _me(address="10.9.0.1", HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 401
    # A header from an untrusted address is not believed: the count is its own address's.
    assert _me(address="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 401


def test_failed_authentications_lock_the_address_out_of_token_requests(shared_cache, owner) -> None:
    assert _me("tn_wrong_1").status_code == 401
    assert _me("tn_wrong_2").status_code == 401
    refused = _me(owner.token)  # even a good token, from that address, until the window resets
    assert refused.status_code == 429
    assert "failed authentications" in refused.json()["detail"]
    assert _me(owner.token, address="10.0.0.2").status_code == 200
    shared_cache[0] = T0 + 30
    assert _me(owner.token).status_code == 200


def test_pages_outside_the_api_are_not_counted(shared_cache, owner) -> None:
    for _ in range(8):
        response = owner.client.get("/healthz", REMOTE_ADDR="10.0.0.1")
        assert response.status_code == 200 and "RateLimit-Limit" not in response
    assert RateCounter.objects.count() == 0


def test_limits_set_to_zero_are_off(shared_cache, settings, owner) -> None:
    settings.TRUENORTH_API_RATE_PER_TOKEN = None
    settings.TRUENORTH_API_RATE_PER_ADDRESS = None
    settings.TRUENORTH_API_RATE_AUTH_FAILURES = None
    for _ in range(10):
        response = _me(owner.token)
        assert response.status_code == 200 and "RateLimit-Limit" not in response


def test_a_cache_that_does_not_answer_lets_requests_through_with_a_warning(
    shared_cache, owner, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def down(*args: object, **kwargs: object) -> list[counters.Hit]:
        raise ConnectionError("cache unreachable")

    monkeypatch.setattr(counters, "hit_many", down)
    monkeypatch.setattr(ratelimit, "_last_warning", 0.0)
    with caplog.at_level(logging.WARNING, logger="truenorth.ops.ratelimit"):
        for _ in range(5):
            assert _me(owner.token).status_code == 200
    warnings = [r for r in caplog.records if "shared cache did not answer" in r.getMessage()]
    assert len(warnings) == 1  # at most once a minute, not once a request
    assert "rate limits are off" in warnings[0].getMessage()


def test_one_round_trip_per_request(shared_cache, owner, django_assert_num_queries) -> None:
    _me(owner.token)
    # The counter upsert (inside the test's transaction: with its savepoint) and the token with its person.
    with django_assert_num_queries(4) as captured:
        _me(owner.token)
    counting = [q["sql"] for q in captured.captured_queries if "truenorth_rate_counter" in q["sql"]]
    assert len(counting) == 1


def test_reading_counts_writes_nothing(shared_cache, django_assert_num_queries) -> None:
    counters.hit("read", 60, amount=2)
    with django_assert_num_queries(1) as captured:
        assert counters.hit_many([("read", 60, 0), ("unseen", 60, 0)]) == [
            counters.Hit(2, 30.0),
            counters.Hit(0, 30.0),
        ]
    assert captured.captured_queries[0]["sql"].lstrip().upper().startswith("SELECT")
    assert RateCounter.objects.count() == 1  # the unseen key was not created
    shared_cache[0] = T0 + 30  # the next window: the old count is over
    assert counters.hit("read", 60, amount=0) == counters.Hit(0, 60.0)
    assert counters.hit("read", 60).count == 1


def test_the_public_link_throttle_counts_in_the_shared_cache(shared_cache) -> None:
    for _ in range(3):
        throttle.hit("pulse-link", "10.1.1.1", limit=3, window=60)
    with pytest.raises(TooManyRequests, match="wait 30 seconds"):
        throttle.hit("pulse-link", "10.1.1.1", limit=3, window=60)
    assert RateCounter.objects.filter(count=4).count() == 1
    throttle.reset("pulse-link", "10.1.1.1")
    throttle.hit("pulse-link", "10.1.1.1", limit=3, window=60)


def test_counters_add_up_read_without_counting_and_reset(shared_cache) -> None:
    assert counters.hit("k", 60).count == 1
    assert counters.hit("k", 60, amount=0) == counters.Hit(1, 30.0)
    assert [h.count for h in counters.hit_many([("k", 60, 1), ("j", 60, 1), ("k", 10, 1)])] == [2, 1, 1]
    counters.reset("k", 60)
    assert counters.hit("k", 60).count == 1
    assert counters.hit("j", 60).count == 2
    counters.reset("j")
    assert counters.hit("j", 60).count == 1


def test_the_health_check_names_the_backend_and_the_limits(shared_cache, monkeypatch) -> None:
    results = {r.name: r for r in ratelimit.check()}
    assert results["shared cache"].status == "ok" and "the database" in results["shared cache"].detail
    assert results["API rate limits"].detail.startswith("per token 3/60s, per address 5/60s")

    def down(*args: object, **kwargs: object) -> counters.Hit:
        raise ConnectionError("refused")

    monkeypatch.setattr(counters, "hit", down)
    assert ratelimit.check()[0].status == "error"


@pytest.mark.parametrize(
    ("raw", "rate"),
    [
        ("600/minute", (600, 60)),
        ("100/10seconds", (100, 10)),
        ("5000 / hour", (5000, 3600)),
        ("1/day", (1, 86400)),
        ("0", None),
        ("", None),
    ],
)
def test_rates_read_from_the_environment(raw: str, rate: tuple[int, int] | None) -> None:
    assert limits.parse_rate("X", raw) == rate


@pytest.mark.parametrize("raw", ["600", "600/fortnight", "-1/minute", "10/0seconds", "many/minute"])
def test_a_malformed_rate_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="TRUENORTH_API_RATE_PER_TOKEN"):
        limits.parse_rate("TRUENORTH_API_RATE_PER_TOKEN", raw)


def test_the_cache_is_the_database_unless_redis_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        for cache_url, redis_url, expected in [
            (None, None, "django.core.cache.backends.db.DatabaseCache"),
            (None, "redis://127.0.0.1:6379/1", "django.core.cache.backends.redis.RedisCache"),
            ("database", "redis://127.0.0.1:6379/1", "django.core.cache.backends.db.DatabaseCache"),
            ("redis://cache:6379/0", None, "django.core.cache.backends.redis.RedisCache"),
        ]:
            for name, value in (("TRUENORTH_CACHE_URL", cache_url), ("TRUENORTH_REDIS_URL", redis_url)):
                if value is None:
                    monkeypatch.delenv(name, raising=False)
                else:
                    monkeypatch.setenv(name, value)
            assert importlib.reload(limits).CACHES["default"]["BACKEND"] == expected
        monkeypatch.setenv("TRUENORTH_CACHE_URL", "memcached://x")
        with pytest.raises(ConfigError, match="TRUENORTH_CACHE_URL"):
            importlib.reload(limits)
    finally:
        monkeypatch.undo()
        importlib.reload(limits)


@pytest.mark.django_db(transaction=True)
def test_concurrent_hits_are_all_counted(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Django's DatabaseCache.incr is a get then a set: concurrent workers lost counts. The upsert counts
    every one (PostgreSQL; an in-memory SQLite database is one connection per thread, see the server test
    for SQLite files)."""
    if connection.vendor == "sqlite":
        pytest.skip(
            "in-memory SQLite is one connection per thread; tests/test_limits_server.py covers SQLite"
        )
    settings.CACHES = DATABASE_CACHE
    monkeypatch.setattr(counters, "clock", lambda: T0)  # one window for the whole test
    threads, per_thread = 16, 10
    start = threading.Barrier(threads)
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            start.wait()
            counts = [counters.hit("concurrent", 3600).count for _ in range(per_thread)]
            with lock:
                seen.extend(counts)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = threads * per_thread
    assert sorted(seen) == list(range(1, total + 1))
    assert counters.hit("concurrent", 3600, amount=0).count == total
