"""Evidence and history are append-only in the database itself (issue 8, item 7): raw SQL UPDATE and
DELETE are refused on SQLite and PostgreSQL, TRUNCATE on PostgreSQL, for history entries, observations,
target observations and result snapshots. The one change allowed is a correction marking an observation
superseded."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from truenorth.core.append_only import PROTECTED_TABLES, expected_triggers, triggers_on
from truenorth.hypotheses import services as hs
from truenorth.hypotheses.models import Experiment, ResultSnapshot
from truenorth.measures import services as ms
from truenorth.measures.models import Measure, Observation
from truenorth.strategy import services as ss
from truenorth.strategy.models import TargetObservation

if TYPE_CHECKING:
    from conftest import Persona

# table: a column to tamper with in an UPDATE
TAMPER = {
    "history_historyentry": "action = 'x'",
    "measures_observation": "value = 123456",
    "strategy_targetobservation": "value = 123456",
    "hypotheses_resultsnapshot": "method = 'forged'",
}


@pytest.fixture
def evidence(owner: Persona, member: Persona) -> Measure:
    """One row in every protected table of organisation A."""
    m, u = member.membership, member.user
    assert m is not None and owner.membership is not None
    product = ss.create_product(owner.membership, owner.user, name="Trail App")
    measure = ms.create_measure(m, u, name="Planners", kva="current_value", product_id=product.pk)
    ms.add_observation(m, u, measure.pk, 10, observed_at=timezone.now() - dt.timedelta(days=1))
    trips = {"name": "Trips", "baseline": 0, "target": 10}
    goal = ss.create_goal(m, u, title="Hikers plan trips", product_id=product.pk, targets=[trips])
    ss.record_observation(m, u, goal.targets.get().pk, 4)
    hypothesis = hs.create_hypothesis(
        m, u, product.pk, title="One tap", metric_name="Download rate", baseline=20, target=30
    )
    hs.move_hypothesis(m, u, hypothesis.pk, "ready")
    experiment = hs.create_experiment(m, u, hypothesis.pk, name="Before and after", kind="before_after")
    hs.store_snapshot(Experiment.objects.get(pk=experiment.pk), method="welch", inputs={}, results={"n": 1})
    return measure


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        return int(cursor.fetchone()[0])


def _refused(sql: str) -> None:
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


def test_every_protected_table_has_its_triggers(db: None) -> None:
    for table in PROTECTED_TABLES:
        assert expected_triggers(connection.vendor, table) <= triggers_on(connection, table), table


@pytest.mark.parametrize("table", PROTECTED_TABLES)
def test_a_raw_update_is_refused(evidence: Measure, table: str) -> None:
    before = _count(table)
    assert before > 0
    _refused(f"UPDATE {table} SET {TAMPER[table]}")
    assert _count(table) == before
    assert not Observation.objects.filter(value=123456).exists()
    assert not TargetObservation.objects.filter(value=123456).exists()
    assert not ResultSnapshot.objects.filter(method="forged").exists()


@pytest.mark.parametrize("table", PROTECTED_TABLES)
def test_a_raw_delete_is_refused(evidence: Measure, table: str) -> None:
    before = _count(table)
    _refused(f"DELETE FROM {table}")
    assert _count(table) == before


@pytest.mark.parametrize("table", PROTECTED_TABLES)
def test_truncate_is_refused_on_postgresql(evidence: Measure, table: str) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (DELETE is refused above)")
    before = _count(table)
    _refused(f"TRUNCATE {table} CASCADE")
    assert _count(table) == before


def test_marking_an_observation_superseded_is_the_one_change_allowed(evidence: Measure) -> None:
    observation = Observation.objects.get(measure=evidence)
    _refused(f"UPDATE measures_observation SET superseded = true, value = 1 WHERE id = {observation.pk}")
    _refused(f"UPDATE measures_observation SET note = 'x' WHERE id = {observation.pk}")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE measures_observation SET superseded = true WHERE id = {observation.pk}")
    observation.refresh_from_db()
    assert observation.superseded and observation.value == 10
    _refused(f"UPDATE measures_observation SET superseded = false WHERE id = {observation.pk}")


def test_a_correction_still_works_and_keeps_both_values(evidence: Measure, member: Persona) -> None:
    assert member.membership is not None
    old = Observation.objects.get(measure=evidence)
    new = ms.correct_observation(member.membership, member.user, old.pk, 11)
    old.refresh_from_db()
    assert old.superseded and old.value == 10
    assert new.supersedes_id == old.pk and not new.superseded
    assert list(ms.observations_of(member.membership, evidence.pk).values_list("value", flat=True)) == [11]


@pytest.mark.django_db(transaction=True)
def test_the_test_flush_can_still_empty_protected_tables(evidence: Measure) -> None:
    """A transactional test ends with Django's flush; conftest lets only it empty these tables (the next
    test starting from an empty database proves it worked)."""
    assert Observation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_database_was_emptied_by_the_flush() -> None:
    assert not Observation.objects.exists() and not TargetObservation.objects.exists()
