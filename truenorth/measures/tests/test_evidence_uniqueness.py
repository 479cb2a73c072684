"""Concurrent writes never duplicate evidence (issue 8, item 8): the database holds at most one current
observation per measure and time (a partial unique index), a writer that loses the race gets a 409,
and an idempotency key reused with different rows is a 409 that stores nothing (same rows: replayed).

Before: two concurrent imports of one file stored every row twice, 8 concurrent pushes at one time
stored 2 rows, and a key reused with other rows answered `replayed: true` and dropped them."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client
from django.utils import timezone

from truenorth.measures import imports
from truenorth.measures import services as ms
from truenorth.measures.models import Measure, Observation, ObservationBatch
from truenorth.measures.services import observations
from truenorth.strategy import services as vision

BASE = "/api/v1/orgs/alpha"
WHEN = "2026-01-05T10:00:00+00:00"

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="real concurrency needs PostgreSQL (SQLite serialises writers)"
)


@pytest.fixture
def measure(owner) -> Measure:
    product = vision.create_product(owner.membership, owner.user, name="Webshop")
    return ms.create_measure(
        owner.membership, owner.user, name="Revenue", kva="current_value", product_id=product.pk
    )


def _post(client: Client, path: str, data: Any) -> Any:
    return client.post(path, json.dumps(data), content_type="application/json")


def _batch(measure: Measure, key: str, *values: float) -> dict[str, Any]:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return {
        "idempotency_key": key,
        "observations": [
            {"measure": measure.pk, "value": v, "observed_at": (at + dt.timedelta(days=i)).isoformat()}
            for i, v in enumerate(values)
        ],
    }


# --- sequential: SQLite and PostgreSQL -----------------------------------------------------------


def test_the_database_refuses_a_second_current_value_at_the_same_time(owner, measure):
    when = timezone.now() - dt.timedelta(days=1)
    first = Observation.objects.create(measure=measure, value=1, observed_at=when)
    with pytest.raises(IntegrityError), transaction.atomic():
        Observation.objects.create(measure=measure, value=2, observed_at=when)
    # A correction is the way to a new value at the same time: the old one is no longer current.
    ms.correct_observation(owner.membership, owner.user, first.pk, 2)
    assert Observation.objects.filter(measure=measure, observed_at=when).count() == 2
    assert Observation.objects.filter(measure=measure, observed_at=when, superseded=False).count() == 1


def test_a_push_that_slips_past_the_duplicate_check_is_a_409_and_stores_nothing(member, measure, monkeypatch):
    """What a concurrent writer sees: the check found nothing, the other value landed meanwhile."""
    first = _post(member.api(), f"{BASE}/measures/{measure.pk}/observations", {"value": 1, "observed_at": WHEN})
    assert first.status_code == 201, first.content
    monkeypatch.setattr(observations, "existing_duplicates", lambda rows: [])
    again = _post(member.api(), f"{BASE}/measures/{measure.pk}/observations", {"value": 2, "observed_at": WHEN})
    assert again.status_code == 409, again.content
    assert again.json()["errors"][0]["field"] == "observed_at"
    assert list(Observation.objects.filter(measure=measure).values_list("value", flat=True)) == [1]


def test_a_reused_key_with_different_rows_is_a_409_and_stores_nothing(member, measure):
    created = _post(member.api(), f"{BASE}/observations/batch", _batch(measure, "k1", 1, 2))
    assert created.status_code == 201, created.content
    different = _post(member.api(), f"{BASE}/observations/batch", _batch(measure, "k1", 1, 2, 3))
    assert different.status_code == 409, different.content
    assert different.json()["errors"][0]["field"] == "idempotency_key"
    changed = _post(member.api(), f"{BASE}/observations/batch", _batch(measure, "k1", 1, 5))
    assert changed.status_code == 409
    assert sorted(Observation.objects.values_list("value", flat=True)) == [1, 2]
    assert ObservationBatch.objects.filter(idempotency_key="k1").count() == 1


def test_a_reused_key_with_the_same_rows_is_replayed(member, measure):
    assert _post(member.api(), f"{BASE}/observations/batch", _batch(measure, "k2", 1, 2)).status_code == 201
    replay = _post(member.api(), f"{BASE}/observations/batch", _batch(measure, "k2", 1.0, 2.0))
    assert replay.status_code == 200, replay.content
    assert replay.json()["replayed"] is True and replay.json()["created"] == 0
    assert Observation.objects.count() == 2


def test_batches_store_a_hash_of_their_rows(member, measure):
    _post(member.api(), f"{BASE}/observations/batch", _batch(measure, "k3", 1))
    assert len(ObservationBatch.objects.get(idempotency_key="k3").payload_hash) == 64


def test_a_key_stored_by_another_request_after_the_lookup_still_decides(member, measure, monkeypatch):
    """The interleaving of two concurrent batches under one key, made deterministic: the second looked the
    key up before the first committed, then finds the first's rows stored. The key decides (409 for other
    rows; same rows: replayed), not "already has a value" (422)."""
    assert _post(member.api(), f"{BASE}/observations/batch", _batch(measure, "raced", 1, 2)).status_code == 201
    real = observations.find_batch
    calls: list[str] = []

    def looked_too_early(*args: Any, **kwargs: Any) -> Any:
        calls.append("find")
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(observations, "find_batch", looked_too_early)
    other = _post(member.api(), f"{BASE}/observations/batch", _batch(measure, "raced", 7, 8, 9))
    assert other.status_code == 409, other.content
    calls.clear()
    same = _post(member.api(), f"{BASE}/observations/batch", _batch(measure, "raced", 1, 2))
    assert same.status_code == 200 and same.json()["replayed"] is True, same.content
    assert sorted(Observation.objects.values_list("value", flat=True)) == [1, 2]


# --- real concurrency: PostgreSQL ------------------------------------------------------------------


def _race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in n threads released together; each thread has its own database connection."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_pushes_at_one_time_store_exactly_one_row(member, measure):
    clients = [member.api() for _ in range(8)]
    path = f"{BASE}/measures/{measure.pk}/observations"
    statuses = _race(8, lambda i: _post(clients[i], path, {"value": i, "observed_at": WHEN}).status_code)
    assert statuses.count(201) == 1, statuses
    assert set(statuses) <= {201, 409, 422}, statuses  # 409: lost the race; 422: saw the winner's row
    assert Observation.objects.filter(measure=measure).count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_with_one_key_and_different_rows_store_one_of_them(member, measure):
    payloads = [_batch(measure, "same-key", 1, 2), _batch(measure, "same-key", 7, 8, 9)]
    clients = [member.api() for _ in payloads]
    responses = _race(2, lambda i: _post(clients[i], f"{BASE}/observations/batch", payloads[i]))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409], [r.content for r in responses]
    winner = next(i for i, r in enumerate(responses) if r.status_code == 201)
    stored = sorted(Observation.objects.values_list("value", flat=True))
    assert stored == sorted(row["value"] for row in payloads[winner]["observations"])


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_imports_of_one_file_without_a_key_store_each_row_once(member, measure):
    start = dt.date(2025, 1, 1)
    lines = ["measure,observed_at,value"] + [
        f"{measure.pk},{start + dt.timedelta(days=i)},{i}" for i in range(300)
    ]
    content = ("\n".join(lines) + "\n").encode()

    def run(_: int) -> Any:
        return imports.run_import(member.membership, member.user, "same.csv", content, chunk_size=100)

    outcomes = _race(2, run)
    assert any(isinstance(o, imports.ImportResult) for o in outcomes), outcomes
    assert Observation.objects.filter(measure=measure).count() == 300
