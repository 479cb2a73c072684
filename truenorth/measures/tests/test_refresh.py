"""Refreshing SQL and computed measures: ingestion, idempotency, failures that keep the evidence,
read-only and time limits end to end, due measures, the jobs, `truenorth measure refresh` and
`truenorth check`."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from django.utils import timezone

from truenorth.cli import main
from truenorth.core.errors import Forbidden, NotFound, ValidationFailed
from truenorth.core.health import run_checks
from truenorth.measures import refresh, services, sources
from truenorth.measures.models import DataSource, Measure, Observation, ObservationBatch
from truenorth.measures.refresh import due_measures, refresh_due, refresh_measure, resolve_inputs
from truenorth.strategy.models import Product

UTC = dt.UTC


def write(path, sql: str) -> None:
    conn = duckdb.connect(str(path))
    try:
        conn.execute(sql)
    finally:
        conn.close()


@pytest.fixture
def warehouse(tmp_path, settings, org_a):
    settings.TRUENORTH_DUCKDB_DIRS = [tmp_path]
    path = sources.organisation_directory(org_a) / "warehouse.duckdb"
    write(
        path,
        """
        CREATE TABLE revenue (month DATE, amount DOUBLE);
        INSERT INTO revenue VALUES ('2025-01-01', 1000), ('2025-02-01', 1100), ('2025-03-01', 1250);
        """,
    )
    return path


@pytest.fixture
def source(org_a, warehouse):
    return DataSource.objects.create(
        organisation=org_a,
        name="Warehouse",
        kind="duckdb",
        config_encrypted=sources.encrypt_config({"path": str(warehouse), "files": []}),
        timeout_seconds=5,
    )


def sql_measure(org, source, query="SELECT month, amount FROM revenue", name="Revenue", **extra):
    return Measure.objects.create(
        organisation=org,
        name=name,
        kva="current_value",
        source="sql",
        data_source=source,
        query=query,
        **extra,
    )


def manual_measure(org, name, points, **extra):
    measure = Measure.objects.create(organisation=org, name=name, kva="current_value", **extra)
    for when, value in points:
        Observation.objects.create(measure=measure, value=value, observed_at=when)
    return measure


def computed_measure(org, formula, name="Revenue per employee", **extra):
    return Measure.objects.create(
        organisation=org, name=name, kva="current_value", source="computed", formula=formula, **extra
    )


def series(measure):
    return [
        (o.observed_at.astimezone(UTC), o.value)
        for o in Observation.objects.filter(measure=measure, superseded=False).order_by("observed_at")
    ]


def day(y, m, d, h=0):
    return dt.datetime(y, m, d, h, tzinfo=UTC)


# --- SQL ------------------------------------------------------------------------------------------


def test_sql_refresh_ingests_and_a_rerun_adds_nothing(org_a, source, warehouse):
    measure = sql_measure(org_a, source)
    result = refresh_measure(measure)
    assert result.ok and result.created == 3, result.error
    assert series(measure) == [(day(2025, 1, 1), 1000), (day(2025, 2, 1), 1100), (day(2025, 3, 1), 1250)]
    assert set(Observation.objects.filter(measure=measure).values_list("source", flat=True)) == {"sql"}
    batch = ObservationBatch.objects.get(observations__measure=measure, observations__value=1000)
    assert batch.idempotency_key.startswith(f"sql:{measure.pk}:") and batch.source == "sql"
    measure.refresh_from_db()
    assert measure.last_refreshed_at is not None and measure.last_refresh_error == ""

    again = refresh_measure(measure)
    assert again.ok and again.created == 0 and again.skipped == 3
    assert Observation.objects.filter(measure=measure).count() == 3

    write(warehouse, "INSERT INTO revenue VALUES ('2025-04-01', 1300)")
    third = refresh_measure(measure)
    assert third.created == 1 and third.skipped == 3
    assert series(measure)[-1] == (day(2025, 4, 1), 1300)
    assert ObservationBatch.objects.filter(observations__measure=measure).distinct().count() == 2


def test_a_value_corrected_by_hand_is_not_overwritten_by_the_source(org_a, source, admin):
    from truenorth.measures import services

    measure = sql_measure(org_a, source)
    refresh_measure(measure)
    first = Observation.objects.get(measure=measure, observed_at=day(2025, 1, 1))
    services.correct_observation(admin.membership, admin.user, first.pk, 999)
    assert refresh_measure(measure).created == 0
    assert dict(series(measure))[day(2025, 1, 1)] == 999


def test_the_same_new_rows_use_the_same_idempotency_key(org_a, source):
    measure = sql_measure(org_a, source)
    rows = sources.run_query(source, measure.query)
    assert refresh._key(measure, "sql", rows) == refresh._key(measure, "sql", list(rows))
    refresh_measure(measure)
    # A replay of the same batch (a race with another refresh) creates nothing.
    key = ObservationBatch.objects.get(
        observations__measure=measure, observations__value=1000
    ).idempotency_key
    # A refresh that looked before the first one stored its rows arrives with the same rows and key.
    # (Observations are append-only, so the race is replayed through the ingestion step directly.)
    membership = refresh._membership(measure, None)
    again = [services.ObservationIn(measure.pk, value, when) for when, value in rows]
    replay = refresh._add_as_system(membership, measure, again, "sql", key)
    assert replay.replayed and replay.created == 0
    assert key == refresh._key(measure, "sql", rows)
    assert Observation.objects.filter(measure=measure).count() == len(rows)


def test_future_rows_wait_for_a_later_refresh(org_a, source, warehouse):
    write(warehouse, "INSERT INTO revenue VALUES (current_date + 40, 5)")
    measure = sql_measure(org_a, source)
    result = refresh_measure(measure)
    assert result.ok and result.created == 3 and result.skipped == 1
    assert "future" in result.summary()


def test_a_failing_source_keeps_old_observations_and_records_the_error(org_a, source, warehouse):
    measure = sql_measure(org_a, source)
    refresh_measure(measure)
    warehouse.rename(warehouse.with_suffix(".moved"))
    result = refresh_measure(measure)
    assert not result.ok and "does not exist" in result.error
    assert len(series(measure)) == 3
    measure.refresh_from_db()
    assert "does not exist" in measure.last_refresh_error
    source.refresh_from_db()
    assert "does not exist" in source.last_error
    # Back again: both errors clear.
    warehouse.with_suffix(".moved").rename(warehouse)
    assert refresh_measure(measure).ok
    measure.refresh_from_db()
    source.refresh_from_db()
    assert measure.last_refresh_error == "" and source.last_error == ""


def test_wrong_shape_keeps_observations_and_is_explained(org_a, source):
    measure = sql_measure(org_a, source)
    refresh_measure(measure)
    measure.query = "SELECT month, amount, 1 AS extra FROM revenue"
    result = refresh_measure(measure)
    assert not result.ok and "Wrong shape" in result.error and "month, amount, extra" in result.error
    assert len(series(measure)) == 3
    assert "Wrong shape" in Measure.objects.get(pk=measure.pk).last_refresh_error


def test_a_slow_query_times_out_and_is_recorded(org_a, source):
    source.timeout_seconds = 1
    source.save()
    measure = sql_measure(org_a, source, query="SELECT DATE '2025-01-01', count(*) FROM range(10000000000)")
    result = refresh_measure(measure)
    assert not result.ok and "longer than 1 s" in result.error
    assert series(measure) == []


@pytest.mark.parametrize(
    "query",
    [
        "CREATE TABLE stolen AS SELECT * FROM revenue",
        "INSERT INTO revenue VALUES ('2030-01-01', 0)",
        "COPY revenue TO '{dir}/stolen.csv'",
        "ATTACH '{dir}/other.duckdb' AS other",
        "SELECT month, amount FROM revenue; DELETE FROM revenue",
        "DELETE FROM revenue; SELECT month, amount FROM revenue",
    ],
)
def test_writes_are_refused_and_nothing_changes(org_a, source, warehouse, query):
    measure = sql_measure(org_a, source, query=query.replace("{dir}", str(warehouse.parent)))
    result = refresh_measure(measure)
    assert not result.ok
    assert "SELECT" in result.error
    assert series(measure) == []
    assert not (warehouse.parent / "stolen.csv").exists()
    assert not (warehouse.parent / "other.duckdb").exists()
    conn = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert conn.execute("SELECT count(*) FROM revenue").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (1,)
    finally:
        conn.close()


def test_bad_rows_in_the_result_are_refused_all_or_none(org_a, source, warehouse):
    write(warehouse, "INSERT INTO revenue VALUES ('2025-05-01', NULL)")
    measure = sql_measure(org_a, source)
    result = refresh_measure(measure)
    assert not result.ok and "NULL" in result.error
    assert series(measure) == []


def test_manual_and_archived_measures_are_not_refreshed(org_a, source):
    manual = manual_measure(org_a, "Hand made", [])
    with pytest.raises(ValidationFailed, match="only SQL and computed"):
        refresh_measure(manual)
    archived = sql_measure(org_a, source, archived_at=timezone.now())
    with pytest.raises(ValidationFailed, match="archived"):
        refresh_measure(archived)


def test_a_refresh_as_a_person_needs_a_writer_of_the_organisation(
    org_a, source, member, stakeholder, outsider
):
    measure = sql_measure(org_a, source)
    with pytest.raises(Forbidden):
        refresh_measure(measure, actor=stakeholder.user)
    with pytest.raises(NotFound):
        refresh_measure(measure, actor=outsider.user)
    result = refresh_measure(measure, actor=member.user)
    assert result.ok and result.created == 3
    assert {o.recorded_by for o in Observation.objects.filter(measure=measure)} == {member.user}


# --- computed -------------------------------------------------------------------------------------


@pytest.fixture
def inputs(org_a):
    revenue = manual_measure(
        org_a, "Revenue", [(day(2025, 1, 1), 1000), (day(2025, 2, 1), 1200), (day(2025, 3, 1), 1500)]
    )
    employees = manual_measure(org_a, "Employees", [(day(2025, 1, 15), 10), (day(2025, 3, 1), 12)])
    return revenue, employees


def test_computed_refresh_uses_the_latest_value_at_or_before_each_time(org_a, inputs):
    measure = computed_measure(org_a, "revenue / employees")
    result = refresh_measure(measure)
    assert result.ok and result.created == 3, result.error
    # From the first time every input has a value (15 Jan), at every input time after it.
    assert series(measure) == [
        (day(2025, 1, 15), 100.0),  # 1000 / 10
        (day(2025, 2, 1), 120.0),  # 1200 / 10
        (day(2025, 3, 1), 125.0),  # 1500 / 12
    ]
    assert set(Observation.objects.filter(measure=measure).values_list("source", flat=True)) == {"computed"}
    again = refresh_measure(measure)
    assert again.ok and again.created == 0

    revenue, _ = inputs
    Observation.objects.create(measure=revenue, value=1800, observed_at=day(2025, 4, 1))
    assert refresh_measure(measure).created == 1
    assert series(measure)[-1] == (day(2025, 4, 1), 150.0)


def test_computed_by_id_reference(org_a, inputs):
    revenue, employees = inputs
    measure = computed_measure(org_a, f"m[{revenue.pk}] / m[{employees.pk}] * 2")
    assert refresh_measure(measure).created == 3
    assert series(measure)[0] == (day(2025, 1, 15), 200.0)


def test_points_that_cannot_be_computed_are_skipped_and_reported(org_a, inputs):
    _, employees = inputs
    Observation.objects.create(measure=employees, value=0, observed_at=day(2025, 2, 1))
    measure = computed_measure(org_a, "revenue / employees")
    result = refresh_measure(measure)
    assert result.ok and result.created == 2 and result.skipped == 1
    assert "Division by zero" in result.summary()
    assert [when for when, _ in series(measure)] == [day(2025, 1, 15), day(2025, 3, 1)]


def test_a_computed_measure_that_cannot_compute_anything_fails_and_keeps_its_values(org_a, inputs):
    measure = computed_measure(org_a, "revenue / employees")
    refresh_measure(measure)
    measure.formula = "revenue / (employees - employees)"
    result = refresh_measure(measure)
    assert not result.ok and "Division by zero" in result.error
    assert len(series(measure)) == 3
    assert "Division by zero" in Measure.objects.get(pk=measure.pk).last_refresh_error


@pytest.mark.parametrize(
    ("formula", "says"),
    [
        ("revenue / headcount", "'headcount' is not the name of a live measure"),
        ("m[999999] * 2", "no live measure with id 999999"),
        ("revenue_per_employee * 2", "not the name of a live measure"),  # itself: excluded by name
        ("revenue ** revenue", "constant number"),
        ("1 + 2", "uses no measure"),
    ],
)
def test_bad_formulas_fail_clearly(org_a, inputs, formula, says):
    measure = computed_measure(org_a, formula)
    result = refresh_measure(measure)
    assert not result.ok and says in result.error


def test_a_computed_measure_cannot_use_itself_by_id(org_a, inputs):
    measure = computed_measure(org_a, "revenue")
    measure.formula = f"m[{measure.pk}] + 1"
    result = refresh_measure(measure)
    assert not result.ok and "cannot use itself" in result.error


def test_an_input_without_observations_waits(org_a, inputs):
    manual_measure(org_a, "Customers", [])
    measure = computed_measure(org_a, "revenue / customers")
    result = refresh_measure(measure)
    assert result.ok and result.created == 0 and "no observations yet" in result.summary()


def test_names_prefer_the_same_product_then_the_organisation(org_a, inputs):
    north = Product.objects.create(organisation=org_a, name="North")
    south = Product.objects.create(organisation=org_a, name="South")
    north_revenue = manual_measure(org_a, "Revenue", [(day(2025, 1, 1), 5)], product=north)
    manual_measure(org_a, "Revenue", [(day(2025, 1, 1), 7)], product=south)
    organisation_revenue, _ = inputs
    in_north = computed_measure(org_a, "revenue * 2", product=north)
    assert resolve_inputs(in_north)["revenue"] == north_revenue
    at_top = computed_measure(org_a, "revenue * 2", name="Double")
    assert resolve_inputs(at_top)["revenue"] == organisation_revenue
    organisation_revenue.archived_at = timezone.now()
    organisation_revenue.save()
    with pytest.raises(ValidationFailed, match="matches several measures"):
        resolve_inputs(at_top)


# --- due measures and the jobs -------------------------------------------------------------------


def test_due_measures(org_a, source, inputs):
    now = timezone.now()
    never = sql_measure(org_a, source, name="Never", cadence_days=7)
    recent = sql_measure(
        org_a, source, name="Recent", cadence_days=7, last_refreshed_at=now - dt.timedelta(days=1)
    )
    old = sql_measure(org_a, source, name="Old", cadence_days=7, last_refreshed_at=now - dt.timedelta(days=8))
    failed_long_ago = sql_measure(
        org_a,
        source,
        name="Failed",
        cadence_days=7,
        last_refreshed_at=now - dt.timedelta(hours=2),
        last_refresh_error="boom",
    )
    sql_measure(
        org_a,
        source,
        name="Failed just now",
        cadence_days=7,
        last_refreshed_at=now - dt.timedelta(minutes=5),
        last_refresh_error="boom",
    )
    sql_measure(org_a, source, name="Archived", archived_at=now)
    top = computed_measure(org_a, "revenue_per_employee * 2", name="Top")
    base = computed_measure(org_a, "revenue / employees")
    due = due_measures(now)
    assert due == [never, old, failed_long_ago, base, top]  # SQL first, then computed in dependency order
    assert recent not in due


def test_refresh_due_reports_progress_and_failures(org_a, source, inputs):
    good = sql_measure(org_a, source, name="Sales")
    bad = sql_measure(org_a, source, name="Broken", query="SELECT 1")
    computed = computed_measure(org_a, "revenue / employees")
    calls = []
    results = refresh_due(progress=lambda done, total, result: calls.append((done, total, result)))
    assert [r.measure for r in results] == [good, bad, computed]
    assert [(d, t) for d, t, _ in calls] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert calls[0][2] is None and calls[-1][2] is results[-1]
    assert [r.ok for r in results] == [True, False, True]
    assert refresh_due() == []  # nothing due any more (the failure retries after an hour)


@pytest.fixture
def immediate_jobs():
    from truenorth.measures import jobs

    before = jobs.HUEY.immediate
    jobs.HUEY.immediate = True
    yield jobs
    jobs.HUEY.immediate = before


def test_jobs_run_in_immediate_mode(org_a, source, member, immediate_jobs):
    measure = sql_measure(org_a, source)
    handle = immediate_jobs.enqueue_refresh(measure.pk, member.user.pk)
    assert handle.get() == {
        "ok": True,
        "created": 3,
        "error": "",
        "summary": "3 new observations",
    }
    Measure.objects.filter(pk=measure.pk).update(archived_at=timezone.now())
    archived = immediate_jobs.enqueue_refresh(measure.pk).get()
    assert archived["ok"] is False and "archived" in archived["error"]
    assert immediate_jobs.enqueue_refresh(123456789).get() == {
        "ok": False,
        "error": "The measure no longer exists.",
    }
    broken = sql_measure(org_a, source, name="Broken", query="SELECT 1")
    immediate_jobs.refresh_due_measures()  # the periodic job, run inline (huey keeps no periodic result)
    assert "Wrong shape" in Measure.objects.get(pk=broken.pk).last_refresh_error
    Measure.objects.filter(pk=broken.pk).update(last_refreshed_at=None)
    summary = immediate_jobs.refresh_due_measures.call_local()
    assert summary == {"refreshed": 1, "failed": 1, "created": 0}
    assert "immediate" in immediate_jobs.queue_description()


def test_the_periodic_job_is_scheduled_every_five_minutes():
    from truenorth.measures import jobs

    validate = jobs.refresh_due_measures.task_class().validate_datetime
    assert validate(dt.datetime(2026, 1, 1, 10, 5))
    assert not validate(dt.datetime(2026, 1, 1, 10, 7))


# --- command line and `truenorth check` ----------------------------------------------------------


def test_cli_refresh_exits_1_and_names_the_failures(org_a, source, capsys):
    sql_measure(org_a, source)
    broken = sql_measure(org_a, source, name="Broken", query="SELECT month FROM revenue")
    assert main(["measure", "refresh"]) == 1
    out, err = capsys.readouterr()
    assert "“Revenue”" in out and "3 new observations" in out
    assert f"“Broken” (id {broken.pk})" in err and "Wrong shape" in err
    assert main(["measure", "refresh"]) == 0
    assert "No measure is due" in capsys.readouterr().out


def test_cli_refresh_one_measure_as_a_person(org_a, source, member, outsider, capsys):
    measure = sql_measure(org_a, source, last_refreshed_at=timezone.now())
    args = ["measure", "refresh", "--measure", str(measure.pk), "--org", "alpha"]
    assert main([*args, "--as", member.user.email]) == 0
    assert "3 new observations" in capsys.readouterr().out
    assert main([*args, "--as", outsider.user.email]) == 2
    assert "No organisation 'alpha'" in capsys.readouterr().err
    assert main(["measure", "refresh", "--org", "alpha"]) == 2
    assert main(["measure", "refresh", "--measure", "987654"]) == 2


def test_cli_worker_refuses_in_immediate_mode(immediate_jobs, capsys):
    assert main(["worker"]) == 2
    assert "TRUENORTH_JOBS_IMMEDIATE" in capsys.readouterr().err


def test_check_reports_failed_sources_and_refreshes(org_a, source, warehouse, capsys):
    assert next(r for r in run_checks() if r.name == "data sources and refreshes").status == "ok"
    measure = sql_measure(org_a, source, name="Revenue [m1]")
    warehouse.unlink()
    refresh_measure(measure)
    failing = {r.name: r for r in run_checks() if r.status == "error"}
    assert "does not exist" in failing["data source “Warehouse” (alpha)"].detail
    assert "last refresh failed" in failing[f"measure “Revenue [m1]” (id {measure.pk}, alpha)"].detail
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "Revenue [m1]" in out
