"""The rate-limit counters and the API limits on Redis (the real server at 127.0.0.1:6379, database 15;
skipped when it does not answer: the default set-up needs no Redis)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from django.test import Client

from truenorth.core import counters
from truenorth.ops import ratelimit

REDIS_URL = "redis://127.0.0.1:6379/15"


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _redis_answers(), reason="no Redis at 127.0.0.1:6379")


@pytest.fixture
def redis_cache(settings) -> Iterator[None]:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"truenorth-test-{threading.get_native_id()}",
        }
    }
    counters.clear()
    yield
    counters.clear()


def test_counts_add_up_per_key_and_reset(redis_cache) -> None:
    assert counters.backend() == "redis"
    assert [counters.hit("a", 60).count for _ in range(3)] == [1, 2, 3]
    assert counters.hit("b", 60).count == 1
    assert counters.hit("a", 60, amount=0).count == 3
    assert 0 < counters.hit("a", 60, amount=0).reset <= 60
    counters.reset("a", 60)
    assert counters.hit("a", 60).count == 1
    counters.reset("b")
    assert counters.hit("b", 60).count == 1


def test_a_window_starts_over_when_it_ends(redis_cache) -> None:
    first = counters.hit("short", 1)
    assert first.count == 1 and first.reset <= 1
    time.sleep(first.reset + 0.05)
    assert counters.hit("short", 1).count == 1


def test_concurrent_hits_are_all_counted(redis_cache) -> None:
    threads, per_thread = 16, 20
    start = threading.Barrier(threads)
    seen: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        start.wait()
        counts = [counters.hit("concurrent", 3600).count for _ in range(per_thread)]
        with lock:
            seen.extend(counts)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = threads * per_thread
    assert sorted(seen) == list(range(1, total + 1))


@pytest.mark.django_db
def test_the_api_answers_429_from_redis_counts(redis_cache, settings, owner) -> None:
    settings.TRUENORTH_API_RATE_PER_TOKEN = (2, 3600)
    settings.TRUENORTH_API_RATE_PER_ADDRESS = None
    api = Client(HTTP_AUTHORIZATION=f"Bearer {owner.token}")
    assert [api.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 429]
    refused = api.get("/api/v1/me")
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert {r.name: r.status for r in ratelimit.check()}["shared cache"] == "ok"


@pytest.mark.django_db
def test_an_unreachable_redis_fails_open(settings, owner) -> None:
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    closed = port.getsockname()[1]
    port.close()  # nothing listens there
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{closed}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    settings.TRUENORTH_API_RATE_PER_TOKEN = (1, 60)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {owner.token}")
    assert [api.get("/api/v1/me").status_code for _ in range(3)] == [200, 200, 200]
    assert "RateLimit-Limit" not in api.get("/api/v1/me")
    assert ratelimit.check()[0].status == "error"
