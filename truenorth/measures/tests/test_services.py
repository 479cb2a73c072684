"""The Value pillar's rules through its service layer: catalogue, measures, observations, staleness,
balance, investment and return, export, and isolation between organisations."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from django.utils import timezone

from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.history.services import entries_for
from truenorth.measures import services as ms
from truenorth.measures.catalogue import CATALOGUE
from truenorth.measures.models import (
    KVA,
    CatalogueMeasure,
    DataSource,
    Measure,
    Observation,
    ObservationBatch,
)
from truenorth.orgs.services import create_organisation
from truenorth.strategy import services as ss

UTC = dt.UTC


def latest_changes(org, obj) -> dict:
    entry = entries_for(org, obj).first()
    assert entry is not None
    return entry.changes


def at(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2026, 1, 1, hour, tzinfo=UTC) + dt.timedelta(days=day)


@pytest.fixture
def product(owner, member, stakeholder):
    return ss.create_product(owner.membership, owner.user, name="Atlas")


@pytest.fixture
def measure(member, product) -> Measure:
    return ms.create_measure(
        member.membership,
        member.user,
        name="Active users",
        kva=KVA.CURRENT_VALUE,
        product_id=product.pk,
        unit="users",
        baseline=100,
        target=200,
    )


# --- catalogue ------------------------------------------------------------------------------------


def test_every_new_organisation_gets_the_catalogue(owner, org_a):
    rows = list(ms.catalogue_of(owner.membership))
    assert len(rows) == len(CATALOGUE) == 30
    assert {r.kva for r in rows} == set(KVA.values)
    assert all(r.description and r.direction in ("higher", "lower") for r in rows)
    assert len({e.key for e in CATALOGUE}) == len(CATALOGUE)


def test_seeding_is_idempotent_and_fills_gaps(owner, org_a):
    assert ms.seed_catalogue(org_a) == 0
    CatalogueMeasure.objects.filter(organisation=org_a, key="lead-time").delete()
    assert ms.seed_catalogue(org_a) == 1
    assert ms.seed_catalogue(org_a) == 0
    assert ms.catalogue_of(owner.membership).count() == len(CATALOGUE)


def test_catalogues_are_per_organisation(owner, outsider, org_a):
    theirs = ms.catalogue_of(outsider.membership)[0]
    with pytest.raises(NotFound):
        ms.adopt_catalogue_measure(owner.membership, owner.user, theirs.pk, None)


def test_adopt_a_catalogue_measure(member, product):
    entry = ms.catalogue_of(member.membership).get(key="deployment-frequency")
    measure = ms.adopt_catalogue_measure(member.membership, member.user, entry.pk, product.pk)
    assert (measure.name, measure.kva, measure.unit, measure.direction, measure.catalogue_key) == (
        "Deployment frequency",
        KVA.TIME_TO_MARKET,
        entry.unit,
        "higher",
        "deployment-frequency",
    )
    assert measure.product == product
    with pytest.raises(Conflict) as exc:
        ms.adopt_catalogue_measure(member.membership, member.user, entry.pk, product.pk)
    assert exc.value.field == "name"


# --- measures -------------------------------------------------------------------------------------


def test_create_measure_records_history(member, measure):
    entry = entries_for(member.membership.organisation, measure).get()
    assert entry.action == HistoryEntry.Action.CREATED
    assert entry.changes["name"]["new"] == "Active users"
    assert measure.version == 1 and measure.source == "manual"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"kva": "happiness"}, "kva"),
        ({"direction": "up"}, "direction"),
        ({"cadence_days": 0}, "cadence_days"),
        ({"cadence_days": 1.5}, "cadence_days"),
        ({"cadence_days": "weekly"}, "cadence_days"),
        ({"source": "magic"}, "source"),
        ({"baseline": "abc"}, "baseline"),
        ({"target": float("nan")}, "target"),
        ({"target_date": "31/12/2026"}, "target_date"),
        ({"source": "sql"}, "data_source"),
        ({"source": "computed"}, "formula"),
        ({"source": "computed", "formula": "__import__('os')"}, "formula"),
        ({"query": "select 1"}, "source"),
        ({"owner_id": 999999}, "owner"),
        ({"product_id": 999999}, "product"),
    ],
)
def test_create_measure_validates_every_field(admin, member, fields, field):
    args = {"name": "Churn", "kva": KVA.CURRENT_VALUE} | fields
    writer = admin if fields.get("source") == "sql" else member  # SQL measures are an admin's to write
    with pytest.raises(ValidationFailed) as exc:
        ms.create_measure(writer.membership, writer.user, **args)
    assert exc.value.field == field


def test_stakeholder_cannot_own_or_write(member, stakeholder, product):
    with pytest.raises(ValidationFailed) as exc:
        ms.create_measure(
            member.membership, member.user, name="X", kva="current_value", owner_id=stakeholder.user.pk
        )
    assert exc.value.field == "owner"
    with pytest.raises(Forbidden):
        ms.create_measure(stakeholder.membership, stakeholder.user, name="X", kva="current_value")


def test_sql_and_computed_measures(owner, member, product):
    m = member.membership
    source = DataSource.objects.create(organisation_id=m.organisation_id, name="dwh", kind="duckdb")
    sql = ms.create_measure(
        owner.membership,
        owner.user,
        name="Revenue",
        kva="current_value",
        source="sql",
        data_source_id=source.pk,
        query="select 1",
    )
    assert sql.data_source == source
    with pytest.raises(ValidationFailed) as exc:
        ms.create_measure(
            owner.membership,
            owner.user,
            name="R2",
            kva="current_value",
            source="sql",
            data_source_id=source.pk,
        )
    assert exc.value.field == "query"
    computed = ms.create_measure(
        m, member.user, name="Revenue per head", kva="current_value", source="computed", formula="revenue / 3"
    )
    assert computed.formula == "revenue / 3"
    # switching away from SQL drops the definition (the history keeps it)
    changed = ms.update_measure(m, member.user, sql.pk, source="manual")
    assert (changed.query, changed.data_source) == ("", None)
    assert latest_changes(m.organisation, sql)["query"]["old"] == "select 1"


def test_names_are_unique_per_product_and_per_organisation(member, product, measure):
    m = member.membership
    with pytest.raises(Conflict) as exc:
        ms.create_measure(m, member.user, name="ACTIVE USERS", kva="current_value", product_id=product.pk)
    assert exc.value.field == "name"
    org_wide = ms.create_measure(m, member.user, name="Active users", kva="current_value")
    assert org_wide.product is None
    with pytest.raises(Conflict):
        ms.create_measure(m, member.user, name="active users", kva="current_value")
    other = ss.create_product(m, member.user, name="Beacon")
    assert ms.create_measure(m, member.user, name="Active users", kva="current_value", product_id=other.pk)


def test_update_measure_versions_and_history(member, measure):
    m = member.membership
    updated = ms.update_measure(m, member.user, measure.pk, version=1, unit="people", cadence_days=7)
    assert (updated.unit, updated.cadence_days, updated.version) == ("people", 7, 2)
    assert latest_changes(m.organisation, measure) == {
        "cadence_days": {"old": 30, "new": 7},
        "unit": {"old": "users", "new": "people"},
    }
    with pytest.raises(Conflict) as stale:
        ms.update_measure(m, member.user, measure.pk, version=1, unit="x")
    assert stale.value.field == "version"
    # nothing changed: no new version, no history
    same = ms.update_measure(m, member.user, measure.pk, unit="people")
    assert same.version == 2
    cleared = ms.update_measure(m, member.user, measure.pk, clear=["baseline"], target="")
    assert (cleared.baseline, cleared.target) == (None, None)
    with pytest.raises(ValidationFailed) as exc:
        ms.update_measure(m, member.user, measure.pk, organisation_id=5)
    assert exc.value.field == "organisation_id"
    with pytest.raises(ValidationFailed):
        ms.update_measure(m, member.user, measure.pk, clear=["name"])


def test_archive_and_list_measures(member, product, measure):
    m = member.membership
    ms.create_measure(m, member.user, name="Lead time", kva="time_to_market", product_id=product.pk)
    assert [x.name for x in ms.measures_of(m, product_id=product.pk)] == ["Active users", "Lead time"]
    assert [x.name for x in ms.measures_of(m, kva="time_to_market")] == ["Lead time"]
    with pytest.raises(ValidationFailed):
        ms.measures_of(m, kva="nope")
    ms.archive_measure(m, member.user, measure.pk)
    assert [x.name for x in ms.measures_of(m)] == ["Lead time"]
    assert len(ms.measures_of(m, include_archived=True)) == 2
    restored = ms.archive_measure(m, member.user, measure.pk, archived=False)
    assert restored.archived_at is None and restored.version == 3


def test_measures_of_another_organisation_are_not_found(outsider, measure):
    with pytest.raises(NotFound):
        ms.get_measure(outsider.membership, measure.pk)
    with pytest.raises(NotFound):
        ms.update_measure(outsider.membership, outsider.user, measure.pk, name="Mine")
    with pytest.raises(NotFound):
        ms.observations_of(outsider.membership, measure.pk)
    with pytest.raises(NotFound):
        ms.add_observation(outsider.membership, outsider.user, measure.pk, 1)
    assert not ms.measures_of(outsider.membership).filter(pk=measure.pk).exists()


# --- observations ---------------------------------------------------------------------------------


def test_add_observation(member, measure):
    obs = ms.add_observation(
        member.membership, member.user, measure.pk, "150.5", observed_at="2026-01-05", note="Q1"
    )
    assert (obs.value, obs.observed_at, obs.note, obs.source) == (150.5, at(4), "Q1", "manual")
    assert obs.batch is not None and obs.batch.rows == 1
    assert "150.5" in latest_changes(member.membership.organisation, measure)["observation"]["new"]
    now = ms.add_observation(member.membership, member.user, measure.pk, 3)
    assert abs(now.observed_at - timezone.now()) < dt.timedelta(seconds=5)
    naive = ms.add_observation(
        member.membership, member.user, measure.pk, 3, observed_at="2026-01-02T10:00:00"
    )
    assert naive.observed_at == at(1, 10)
    offset = ms.add_observation(
        member.membership, member.user, measure.pk, 3, observed_at="2026-01-02T13:00:00+02:00"
    )
    assert offset.observed_at == at(1, 11)
    # the same instant written in another zone is the same time: a duplicate
    with pytest.raises(ValidationFailed) as exc:
        ms.add_observation(
            member.membership, member.user, measure.pk, 3, observed_at="2026-01-02T12:00:00+02:00"
        )
    assert exc.value.field == "observed_at"


@pytest.mark.parametrize(
    ("value", "observed_at", "field"),
    [
        ("abc", "2026-01-01", "value"),
        ("1,5", "2026-01-01", "value"),
        ("", "2026-01-01", "value"),
        (None, "2026-01-01", "value"),
        (True, "2026-01-01", "value"),
        ("nan", "2026-01-01", "value"),
        (float("inf"), "2026-01-01", "value"),
        ("1e400", "2026-01-01", "value"),
        (1, "yesterday", "observed_at"),
        (1, "2026-13-01", "observed_at"),
        (1, "2999-01-01", "observed_at"),
    ],
)
def test_bad_observations_are_refused(member, measure, value, observed_at, field):
    with pytest.raises(ValidationFailed) as exc:
        ms.add_observation(member.membership, member.user, measure.pk, value, observed_at=observed_at)
    assert exc.value.field == field
    assert not Observation.objects.exists()


def test_a_duplicate_timestamp_is_refused(member, measure):
    ms.add_observation(member.membership, member.user, measure.pk, 1, observed_at=at(3))
    with pytest.raises(ValidationFailed) as exc:
        ms.add_observation(member.membership, member.user, measure.pk, 2, observed_at="2026-01-04T00:00:00Z")
    assert exc.value.field == "observed_at"
    assert "supersede" in exc.value.message


def test_stakeholder_cannot_record(stakeholder, measure):
    with pytest.raises(Forbidden):
        ms.add_observation(stakeholder.membership, stakeholder.user, measure.pk, 1)


def test_archived_measure_takes_no_observation(member, measure):
    ms.archive_measure(member.membership, member.user, measure.pk)
    with pytest.raises(ValidationFailed) as exc:
        ms.add_observation(member.membership, member.user, measure.pk, 1)
    assert exc.value.field == "measure_id"


def test_batch_is_all_or_none(member, outsider, measure):
    theirs = ms.create_measure(outsider.membership, outsider.user, name="Secret", kva="current_value")
    rows = [
        ms.ObservationIn(measure.pk, "1", "2026-01-01"),
        ms.ObservationIn(measure.pk, "abc", "2026-01-02"),
        ms.ObservationIn(measure.pk, "3", "2026-01-01"),  # same time as row 0
        ms.ObservationIn(theirs.pk, "4", "2026-01-04"),  # another organisation's measure
        ms.ObservationIn(999999, "5", "2026-01-05"),
        ms.ObservationIn(measure.pk, "nan", "not a date"),
        ms.ObservationIn(measure.pk, "7", "2026-01-07"),
    ]
    with pytest.raises(ValidationFailed) as exc:
        ms.add_observations(member.membership, member.user, rows, source="api", idempotency_key="k1")
    errors = exc.value.errors
    assert set(errors) == {
        "rows[1].value",
        "rows[2].observed_at",
        "rows[3].measure_id",
        "rows[4].measure_id",
        "rows[5].value",
        "rows[5].observed_at",
    }
    assert errors["rows[1].value"] == "'abc' is not a number."
    assert "Secret" not in str(errors)
    assert not Observation.objects.exists()
    assert not ObservationBatch.objects.exists()


def test_batch_and_idempotent_replay(member, measure, product):
    m = member.membership
    other = ms.create_measure(m, member.user, name="Lead time", kva="time_to_market", product_id=product.pk)
    rows = [ms.ObservationIn(measure.pk, i, at(i)) for i in range(5)] + [ms.ObservationIn(other.pk, 9, at(0))]
    first = ms.add_observations(m, member.user, rows, source="api", idempotency_key="push-1")
    assert (first.created, first.replayed, first.batch.rows) == (6, False, 6)
    again = ms.add_observations(m, member.user, rows, source="api", idempotency_key="push-1")
    assert (again.batch.pk, again.created, again.replayed) == (first.batch.pk, 0, True)
    assert Observation.objects.count() == 6
    # one history entry per measure for the batch
    assert "5 values" in latest_changes(m.organisation, measure)["observation"]["new"]
    # the same rows without a key are now duplicates
    with pytest.raises(ValidationFailed) as exc:
        ms.add_observations(m, member.user, rows, source="api")
    assert len(exc.value.errors) == 6
    with pytest.raises(ValidationFailed) as exc:
        ms.add_observations(m, member.user, [], source="api")
    assert exc.value.field == "rows"


def test_idempotency_keys_are_per_organisation(member, outsider, measure):
    theirs = ms.create_measure(outsider.membership, outsider.user, name="Theirs", kva="current_value")
    ms.add_observations(
        member.membership,
        member.user,
        [ms.ObservationIn(measure.pk, 1, at(1))],
        source="api",
        idempotency_key="same",
    )
    result = ms.add_observations(
        outsider.membership,
        outsider.user,
        [ms.ObservationIn(theirs.pk, 1, at(1))],
        source="api",
        idempotency_key="same",
    )
    assert not result.replayed and result.created == 1


def test_a_race_on_the_key_returns_the_earlier_batch(member, measure):
    """Two pushes with one key that both passed the first look: the unique constraint decides, and the
    loser stores nothing."""
    m = member.membership
    first = ms.add_observations(
        m, member.user, [ms.ObservationIn(measure.pk, 1, at(1))], source="api", idempotency_key="r"
    )
    same, errors = ms.clean_rows(
        m.organisation_id, [ms.ObservationIn(measure.pk, 1, at(1))], check_existing=False
    )
    assert not errors
    result = ms.store_batch(m, member.user, same, source="api", idempotency_key="r")  # past the look
    assert result.replayed and result.batch.pk == first.batch.pk and result.created == 0
    other, errors = ms.clean_rows(m.organisation_id, [ms.ObservationIn(measure.pk, 2, at(2))])
    assert not errors
    with pytest.raises(Conflict, match="different rows"):
        ms.store_batch(m, member.user, other, source="api", idempotency_key="r")
    assert Observation.objects.count() == 1


def test_correction_keeps_both_and_hides_the_old(member, measure):
    m = member.membership
    old = ms.add_observation(m, member.user, measure.pk, 10, observed_at=at(1))
    new = ms.correct_observation(m, member.user, old.pk, "12", note="typo")
    old.refresh_from_db()
    assert old.superseded and old.value == 10
    assert (new.value, new.observed_at, new.supersedes_id, new.superseded) == (
        12,
        old.observed_at,
        old.pk,
        False,
    )
    assert list(ms.observations_of(m, measure.pk)) == [new]
    assert set(ms.observations_of(m, measure.pk, include_superseded=True)) == {old, new}
    changes = latest_changes(m.organisation, measure)["observation"]
    assert changes["old"].startswith("10 at") and "12 at" in changes["new"]
    with pytest.raises(Conflict):
        ms.correct_observation(m, member.user, old.pk, 13)
    with pytest.raises(ValidationFailed) as exc:
        ms.correct_observation(m, member.user, new.pk, "x")
    assert exc.value.field == "value"
    # the corrected time is free again only through corrections, never a second current row
    with pytest.raises(ValidationFailed):
        ms.add_observation(m, member.user, measure.pk, 1, observed_at=at(1))


def test_corrections_of_another_organisation_are_not_found(member, outsider, measure):
    obs = ms.add_observation(member.membership, member.user, measure.pk, 10, observed_at=at(1))
    with pytest.raises(NotFound):
        ms.correct_observation(outsider.membership, outsider.user, obs.pk, 1)


def test_observations_window(member, measure):
    m = member.membership
    for i in range(5):
        ms.add_observation(m, member.user, measure.pk, i, observed_at=at(i))
    values = [o.value for o in ms.observations_of(m, measure.pk, since="2026-01-02", until=at(3))]
    assert values == [3, 2, 1]


def test_record_refresh(measure):
    ms.record_refresh(measure, ok=False, error="connection refused")
    measure.refresh_from_db()
    assert measure.last_refresh_error == "connection refused" and measure.last_refreshed_at
    ms.record_refresh(measure, ok=True)
    measure.refresh_from_db()
    assert measure.last_refresh_error == ""


# --- staleness and balance ------------------------------------------------------------------------


def test_stale_measures(member, measure, product):
    m = member.membership
    fresh = ms.create_measure(
        m, member.user, name="Weekly", kva="time_to_market", product_id=product.pk, cadence_days=7
    )
    now = at(100)
    assert {x.pk for x in ms.stale_measures(m, now=now)} == {measure.pk, fresh.pk}  # no observation at all
    ms.add_observation(m, member.user, measure.pk, 1, observed_at=at(80))
    ms.add_observation(m, member.user, fresh.pk, 1, observed_at=at(80))
    assert [x.pk for x in ms.stale_measures(m, now=now)] == [fresh.pk]
    assert ms.stale_measures(m, now=at(81)) == []
    ms.archive_measure(m, member.user, fresh.pk)
    assert ms.stale_measures(m, now=now) == []


def test_kva_balance(member, product, measure, outsider):
    m = member.membership
    assert ms.kva_balance(m, product.pk) == {
        "current_value": 1,
        "unrealized_value": 0,
        "time_to_market": 0,
        "ability_to_innovate": 0,
    }
    assert ms.missing_kvas(m, product.pk) == ["unrealized_value", "time_to_market", "ability_to_innovate"]
    for name, kva in [
        ("Share", "unrealized_value"),
        ("Lead", "time_to_market"),
        ("Debt", "ability_to_innovate"),
    ]:
        ms.create_measure(m, member.user, name=name, kva=kva, product_id=product.pk)
    assert ms.missing_kvas(m, product.pk) == []
    with pytest.raises(NotFound):
        ms.kva_balance(outsider.membership, product.pk)


# --- investment and return ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "amount"),
        ({"amount": 10, "people": 2, "daily_rate": 100}, "amount"),
        ({"amount": -1}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"people": 2}, "daily_rate"),
        ({"daily_rate": 100}, "people"),
        ({"people": 0, "daily_rate": 100}, "people"),
        ({"amount": 10, "currency": "EURO"}, "currency"),
        ({"amount": 10, "currency": "12€"}, "currency"),
        ({"amount": 10, "period_end": "2026-01-01"}, "period_end"),
        ({"amount": 10, "period_start": "soon"}, "period_start"),
        ({"amount": 10, "goal_id": 999999}, "goal"),
        (
            {"people": 1, "daily_rate": 1, "period_start": "2026-11-28", "period_end": "2026-11-29"},
            "period_end",
        ),
    ],
)
def test_investment_validation(member, product, fields, field):
    args = {"period_start": "2026-02-01", "period_end": "2026-02-28"} | fields
    with pytest.raises(ValidationFailed) as exc:
        ms.add_investment(member.membership, member.user, product.pk, **args)
    assert exc.value.field == field


def test_investment_in_people_and_amounts(member, product, outsider):
    m = member.membership
    # November 2026 has 21 working days: 2 people x 500/day x 21 = 21,000
    effort = ms.add_investment(
        m,
        member.user,
        product.pk,
        period_start="2026-11-01",
        period_end="2026-11-30",
        people=2,
        daily_rate=500,
    )
    assert ms.invested(effort) == 21000
    money = ms.add_investment(
        m,
        member.user,
        product.pk,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
        amount=5000,
        currency="usd",
    )
    assert money.currency == "USD"
    assert list(ms.investments_of(m, product.pk)) == [effort, money]
    assert entries_for(m.organisation, effort).get().action == HistoryEntry.Action.CREATED
    with pytest.raises(NotFound):
        ms.investments_of(outsider.membership, product.pk)
    with pytest.raises(NotFound):
        ms.add_investment(
            outsider.membership,
            outsider.user,
            product.pk,
            period_start="2026-01-01",
            period_end="2026-01-02",
            amount=1,
        )


def test_investment_goal_must_be_the_products(member, product):
    m = member.membership
    other = ss.create_product(m, member.user, name="Beacon")
    goal = ss.create_goal(m, member.user, product_id=other.pk, title="Grow", level="strategic")
    with pytest.raises(ValidationFailed) as exc:
        ms.add_investment(
            m,
            member.user,
            product.pk,
            period_start="2026-01-01",
            period_end="2026-01-31",
            amount=1,
            goal_id=goal.pk,
        )
    assert exc.value.field == "goal"


def test_return_on_investment_by_hand(member, product, measure):
    m = member.membership
    roi = ms.return_on_investment(m, product.pk, until="2026-03-31")
    assert roi.invested is None and roi.value_delta is None
    assert "No investment" in roi.reason and "No value measure" in roi.reason
    # January: 10,000 as an amount; February 2026 (20 working days): 1 person x 400/day = 8,000
    ms.add_investment(
        m, member.user, product.pk, period_start="2026-01-01", period_end="2026-01-31", amount=10000
    )
    ms.add_investment(
        m,
        member.user,
        product.pk,
        period_start="2026-02-01",
        period_end="2026-02-28",
        people=1,
        daily_rate=400,
    )
    ms.set_value_measure(m, member.user, product.pk, measure.pk)
    ms.add_observation(m, member.user, measure.pk, 90, observed_at=dt.datetime(2025, 12, 20, tzinfo=UTC))
    ms.add_observation(m, member.user, measure.pk, 120, observed_at=dt.datetime(2026, 1, 31, 12, tzinfo=UTC))
    ms.add_observation(m, member.user, measure.pk, 150, observed_at=dt.datetime(2026, 2, 27, tzinfo=UTC))
    ms.add_observation(m, member.user, measure.pk, 999, observed_at=dt.datetime(2026, 4, 2, tzinfo=UTC))
    roi = ms.return_on_investment(m, product.pk, until="2026-03-31")
    assert roi.since == dt.date(2026, 1, 1) and roi.currency == "EUR"
    assert roi.invested == pytest.approx(18000)
    assert (roi.value_start, roi.value_end, roi.value_delta) == (90, 150, 60)
    assert roi.improvement == 60
    assert roi.delta_per_unit == pytest.approx(60 / 18000)
    assert roi.reason == ""
    assert [(p.period, p.invested, p.value) for p in roi.series] == [
        (dt.date(2026, 1, 1), pytest.approx(10000), 120),
        (dt.date(2026, 2, 1), pytest.approx(8000), 150),
        (dt.date(2026, 3, 1), 0, 150),
    ]
    # half of January: half of the amount (by calendar days), value from the 20 Dec value to the 31 Jan one
    half = ms.return_on_investment(m, product.pk, since="2026-01-17", until="2026-01-31")
    assert half.invested == pytest.approx(10000 * 15 / 31)
    assert (half.value_start, half.value_end) == (90, 120)
    # lower is better: a rise is no improvement
    ms.update_measure(m, member.user, measure.pk, direction="lower", baseline="", target="")
    assert ms.return_on_investment(m, product.pk, until="2026-03-31").improvement == -60


def test_roi_explains_missing_evidence(member, product, measure, outsider):
    m = member.membership
    ms.add_investment(
        m, member.user, product.pk, period_start="2026-01-01", period_end="2026-01-31", amount=100
    )
    ms.add_investment(
        m,
        member.user,
        product.pk,
        period_start="2026-01-01",
        period_end="2026-01-31",
        amount=100,
        currency="USD",
    )
    ms.set_value_measure(m, member.user, product.pk, measure.pk)
    ms.add_observation(m, member.user, measure.pk, 1, observed_at=at(3))
    roi = ms.return_on_investment(m, product.pk, until="2026-02-28")
    assert roi.invested is None and "several currencies" in roi.reason
    assert roi.value_delta is None and "only one observation" in roi.reason
    with pytest.raises(ValidationFailed) as exc:
        ms.set_value_measure(m, member.user, product.pk, 999999)
    assert exc.value.field == "value_measure"
    other = ss.create_product(m, member.user, name="Beacon")
    elsewhere = ms.create_measure(m, member.user, name="X", kva="current_value", product_id=other.pk)
    with pytest.raises(ValidationFailed):
        ms.set_value_measure(m, member.user, product.pk, elsewhere.pk)
    with pytest.raises(NotFound):
        ms.return_on_investment(outsider.membership, product.pk)
    settings = ms.set_value_measure(m, member.user, product.pk, None)
    assert settings.value_measure is None


# --- export ---------------------------------------------------------------------------------------


def test_export_csv_and_json(member, measure, outsider):
    m = member.membership
    other = ms.create_measure(m, member.user, name="=HYPERLINK(evil)", kva="ability_to_innovate")
    old = ms.add_observation(m, member.user, measure.pk, 10, observed_at=at(1), note="first")
    ms.correct_observation(m, member.user, old.pk, 11)
    ms.add_observation(m, member.user, other.pk, 0.1, observed_at=at(2))
    theirs = ms.create_measure(outsider.membership, outsider.user, name="Secret", kva="current_value")
    ms.add_observation(outsider.membership, outsider.user, theirs.pk, 5, observed_at=at(1))

    rows = list(csv.DictReader(io.StringIO(ms.export_observations(m, None, "csv"))))
    assert [(r["measure"], r["value"], r["superseded"]) for r in rows] == [
        ("Active users", "10.0", "true"),
        ("Active users", "11.0", "false"),
        ("'=HYPERLINK(evil)", "0.1", "false"),
    ]
    assert rows[0]["observed_at"] == "2026-01-02T00:00:00+00:00" and rows[0]["note"] == "first"
    assert rows[1]["supersedes"] == rows[0]["observation_id"]

    doc = json.loads(ms.export_observations(m, measure.pk, "json"))
    assert [x["name"] for x in doc["measures"]] == ["Active users"]
    assert [(o["value"], o["superseded"]) for o in doc["measures"][0]["observations"]] == [
        (10, True),
        (11, False),
    ]
    assert "Secret" not in ms.export_observations(m, None, "json")
    with pytest.raises(ValidationFailed) as exc:
        ms.export_observations(m, None, "xml")
    assert exc.value.field == "format"
    with pytest.raises(NotFound):
        ms.export_observations(outsider.membership, measure.pk, "csv")


def test_organisation_created_through_the_service_is_seeded(member):
    org = create_organisation(member.user, "Gamma")
    assert CatalogueMeasure.objects.filter(organisation=org).count() == len(CATALOGUE)
