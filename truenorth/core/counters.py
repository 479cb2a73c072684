"""Atomic fixed-window counters in the shared cache, for rate limits (the API, the public links).

`hit(key, window)` counts a hit of `key` in the current window of `window` seconds and returns the count
so far and the seconds until the window resets. Windows are aligned to the clock (a 60-second window
resets at every full minute), so every process agrees on them. One round trip, atomic across threads and
processes, whichever backend the `default` cache is (truenorth/conf/limits.py):

- DatabaseCache: one `INSERT … ON CONFLICT DO UPDATE … RETURNING` on `truenorth_rate_counter` (SQLite
  3.35+, PostgreSQL). Django's own `cache.incr` is a get then a set: concurrent workers lost counts.
- RedisCache: one MULTI/EXEC pipeline: `SET key 0 EX <seconds to the window end> NX`, `INCRBY`, `PTTL`.
- any other cache (a test's local memory, the dummy cache): a lock in this process, so per process.

A cache error propagates: callers decide what a limit does when its cache is down (the API fails open).
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.db import connections, router, transaction
from django.db.models import QuerySet

from truenorth.core import prepared

TABLE = "truenorth_rate_counter"
# Expired rows are deleted by one hit in this many (on the database; Redis expires keys itself).
SWEEP_ONE_IN = 200
_MAX_KEY = 200


@dataclass(frozen=True)
class Hit:
    count: int  # hits in the current window, this one included
    reset: float  # seconds until the window ends (and the count starts over)


# The clock, seconds since the epoch: tests may replace it (or pass `now=`) to move between windows.
clock: Callable[[], float] = time.time


def backend() -> str:
    """'database', 'redis' or 'memory' (per process): where the counters live."""
    cache = caches["default"]
    if isinstance(cache, DatabaseCache):
        return "database"
    if isinstance(cache, RedisCache):
        return "redis"
    return "memory"


def _full_key(key: str, window: int) -> str:
    full = f"{key}/{window}"
    if len(full) > _MAX_KEY:
        full = "h:" + hashlib.sha256(full.encode()).hexdigest()
    return full


def hit(key: str, window: int, *, amount: int = 1, now: float | None = None) -> Hit:
    """Count `amount` hits (0 only reads) of `key` in the current `window`-second window."""
    return hit_many([(key, window, amount)], now=now)[0]


def hit_many(items: Sequence[tuple[str, int, int]], *, now: float | None = None) -> list[Hit]:
    """`hit` for several (key, window, amount) at once, in one round trip; answers in the same order."""
    if not items:
        return []
    moment = clock() if now is None else now
    requests: dict[str, tuple[int, int]] = {}  # full key -> (amount, window end)
    order = []
    for key, window, amount in items:
        if window < 1 or amount < 0:
            raise ValueError("window must be at least 1 second and amount at least 0")
        full = _full_key(key, window)
        end = (math.floor(moment) // window + 1) * window
        previous = requests.get(full, (0, end))[0]
        requests[full] = (previous + amount, end)
        order.append(full)
    kind = backend()
    if kind == "database":
        counts = _database_hits(requests, moment)
    elif kind == "redis":
        counts = _redis_hits(requests, moment)
    else:
        counts = _memory_hits(requests, moment)
    return [counts[full] for full in order]


def reset(key: str, window: int | None = None) -> None:
    """Forget the count of `key` in `window`-second windows (every window size when None)."""
    full = _full_key(key, window) if window is not None else None
    kind = backend()
    if kind == "database":
        rows = _rows()
        if full is not None:
            rows.filter(counter_key=full).delete()
        else:
            rows.filter(counter_key__startswith=key + "/").delete()
    elif kind == "redis":
        cache = caches["default"]
        client = _redis_client()
        if full is not None:
            client.delete(cache.make_and_validate_key("counter:" + full))
        else:
            pattern = cache.make_and_validate_key("counter:" + _glob(key) + "/*")
            for name in client.scan_iter(match=pattern):
                client.delete(name)
    with _memory_lock:
        for name in [n for n in _memory if n == full or (full is None and n.startswith(key + "/"))]:
            del _memory[name]


def _glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def clear() -> None:
    """Forget every count (the tests start each test afresh)."""
    kind = backend()
    if kind == "database":
        _rows().delete()
    elif kind == "redis":
        cache = caches["default"]
        client = _redis_client()
        for name in client.scan_iter(match=cache.make_and_validate_key("counter:*")):
            client.delete(name)
    with _memory_lock:
        _memory.clear()


def clear_memory() -> None:
    """Forget the counts kept in this process (no cache round trip; the tests start each test afresh)."""
    with _memory_lock:
        _memory.clear()


# The database: one upsert for every key of the request.


def _alias() -> str:
    from truenorth.core.models import RateCounter

    return router.db_for_write(RateCounter) or "default"


def _rows() -> QuerySet[Any]:
    from truenorth.core.models import RateCounter

    return RateCounter.objects.using(_alias())


def _table(alias: str) -> str:
    return str(connections[alias].ops.quote_name(TABLE))


def _database_hits(requests: dict[str, tuple[int, int]], moment: float) -> dict[str, Hit]:
    alias = _alias()
    connection = connections[alias]
    table = _table(alias)
    count, expires = connection.ops.quote_name("count"), connection.ops.quote_name("expires")
    if not any(amount for amount, _ in requests.values()):
        return _database_reads(requests, moment, alias, table, count, expires)
    values = ", ".join(["(%s, %s, %s)"] * len(requests))
    sql = (
        # The table and column names are quoted constants; every value is a parameter.
        f"INSERT INTO {table} (counter_key, {count}, {expires}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT (counter_key) DO UPDATE SET "
        f"{count} = CASE WHEN {table}.{expires} <= %s THEN excluded.{count} "
        f"ELSE {table}.{count} + excluded.{count} END, "
        f"{expires} = CASE WHEN {table}.{expires} <= %s THEN excluded.{expires} ELSE {table}.{expires} END "
        f"RETURNING counter_key, {count}, {expires}"
    )
    params: list[Any] = [p for full, (n, end) in requests.items() for p in (full, n, end)]
    second = math.floor(moment)
    params += [second, second]
    sweep = random.randrange(SWEEP_ONE_IN) == 0  # noqa: S311 (not security: when to sweep)
    # Inside a transaction (a view's, a test's), a savepoint keeps a failed count from spoiling it.
    guard = transaction.atomic(using=alias) if connection.in_atomic_block else _nothing()
    with guard, prepared.cursor(connection) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if sweep:
        _rows().filter(expires__lte=second).delete()
    return {str(key): Hit(int(n), max(0.0, int(end) - moment)) for key, n, end in rows}


def _database_reads(
    requests: dict[str, tuple[int, int]], moment: float, alias: str, table: str, count: str, expires: str
) -> dict[str, Hit]:
    """Counts only read (every amount 0: e.g. the API's failed authentications, checked on each request):
    a SELECT, not a write of every key per request."""
    second = math.floor(moment)
    marks = ", ".join(["%s"] * len(requests))
    sql = (
        f"SELECT counter_key, {count}, {expires} FROM {table} "  # noqa: S608 (quoted constants)
        f"WHERE counter_key IN ({marks}) AND {expires} > %s"
    )
    with prepared.cursor(connections[alias]) as cursor:
        cursor.execute(sql, [*requests, second])
        rows = {str(key): (int(n), int(end)) for key, n, end in cursor.fetchall()}
    hits = {}
    for full, (_, end) in requests.items():
        n, until = rows.get(full, (0, end))
        hits[full] = Hit(n, max(0.0, until - moment))
    return hits


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# Redis: one transaction (MULTI/EXEC) for every key of the request.


def _redis_client() -> Any:
    cache: Any = caches["default"]
    return cache._cache.get_client(write=True)


def _redis_hits(requests: dict[str, tuple[int, int]], moment: float) -> dict[str, Hit]:
    cache = caches["default"]
    pipe = _redis_client().pipeline(transaction=True)
    names = []
    for full, (amount, end) in requests.items():
        name = cache.make_and_validate_key("counter:" + full)
        names.append((full, end))
        # A relative expiry (never in the past, whatever the clocks say), set only when the key is new.
        pipe.set(name, 0, ex=max(1, math.ceil(end - moment)), nx=True)
        pipe.incrby(name, amount)
        pipe.pttl(name)
    answers = pipe.execute()
    hits = {}
    for i, (full, end) in enumerate(names):
        count, pttl = int(answers[3 * i + 1]), int(answers[3 * i + 2])
        reset = pttl / 1000 if pttl >= 0 else max(0.0, end - moment)
        hits[full] = Hit(count, reset)
    return hits


# Any other cache: this process only.

_memory: dict[str, tuple[int, int]] = {}
_memory_lock = threading.Lock()


def _memory_hits(requests: dict[str, tuple[int, int]], moment: float) -> dict[str, Hit]:
    hits = {}
    with _memory_lock:
        for full, (amount, end) in requests.items():
            count, expires = _memory.get(full, (0, end))
            if expires <= moment:
                count, expires = 0, end
            _memory[full] = (count + amount, expires)
            hits[full] = Hit(count + amount, max(0.0, expires - moment))
    return hits
