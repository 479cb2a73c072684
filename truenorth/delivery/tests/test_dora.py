"""DORA metrics on hand-computed cases (truenorth/delivery/dora.py) and the report-year bands."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from truenorth.delivery.dora import (
    BANDS_FILE,
    CommitRecord,
    DeploymentRecord,
    IncidentRecord,
    PullRecord,
    available_years,
    band,
    dora_metrics,
    group_deployments,
    table_year,
)

UTC = dt.UTC
START = dt.datetime(2026, 1, 1, tzinfo=UTC)
END = START + dt.timedelta(days=14)


def h(hours: float) -> dt.datetime:
    return START + dt.timedelta(hours=hours)


def dep(id: str, hours: float, ok: bool = True, shas: tuple[str, ...] = (), **kw: str) -> DeploymentRecord:
    return DeploymentRecord(id, h(hours), ok, commit_shas=shas, **kw)


def metrics(deps=(), commits=(), pulls=(), incidents=(), **kw):
    return dora_metrics(deps, commits, pulls, incidents, start=START, end=END, **kw)


def test_only_production_and_frequency_per_week():
    m = metrics(
        [
            dep("1", 10),
            dep("2", 20),
            dep("s", 30, environment="staging"),
            dep("3", 40, environment=" Production "),
        ]
    )
    assert m.deployments == 3
    assert m.deployment_frequency_per_week == pytest.approx(1.5)  # 3 over two weeks


def test_one_pipeline_run_counts_once_at_its_first_time_failed_if_any_failed():
    runs = group_deployments(
        [dep("b", 12, False, ("y",), run_id="r1"), dep("a", 10, True, ("x",), run_id="r1"), dep("c", 11)]
    )
    assert [(g.id, g.deployed_at, g.succeeded) for g in runs] == [("a", h(10), False), ("c", h(11), True)]
    assert runs[0].commit_shas == ["x", "y"] and runs[0].ids == {"a", "b"}
    m = metrics([dep("a", 10, True, run_id="r1"), dep("b", 12, False, run_id="r1"), dep("c", 20)])
    assert m.deployments == 2 and m.change_failure_rate == 0.5


def test_lead_time_first_commit_to_first_production_deployment_containing_it():
    commits = [CommitRecord("a", h(0)), CommitRecord("b", h(6)), CommitRecord("c", h(1))]
    deps = [
        dep("s", 5, shas=("a",), environment="staging"),
        dep("1", 10, shas=("a", "b")),  # a: 10h, b: 4h
        dep("2", 20, False, shas=("c",)),  # failed: c is not in production yet
        dep("3", 31, shas=("c", "a")),  # c: 30h; a already deployed
    ]
    m = metrics(deps, commits)
    assert m.lead_time_samples == 3
    assert m.lead_time_hours == 10.0  # median of 4, 10, 30


def test_squash_and_rebase_merges_start_at_the_pull_requests_first_commit():
    commits = [CommitRecord("squash", h(40)), CommitRecord("rebased", h(45))]
    pulls = [
        PullRecord(first_commit_at=h(10), merged_at=h(40), merge_sha="squash"),
        PullRecord(first_commit_at=h(20), merged_at=h(45), merge_sha="m2", commit_shas=("rebased",)),
    ]
    m = metrics([dep("1", 50, shas=("squash",)), dep("2", 60, shas=("rebased",))], commits, pulls)
    assert m.lead_time_hours == pytest.approx((40 + 40) / 2)  # 50-10 and 60-20


def test_deployment_without_commits_counts_but_has_no_lead_time():
    m = metrics([dep("1", 10), dep("2", 20, shas=("unknown",))])
    assert m.deployments == 2 and m.lead_time_hours is None and m.lead_time_samples == 0


def test_change_failure_rate_counts_failed_and_incident_linked_deployments():
    deps = [dep("1", 10), dep("2", 20, False), dep("3", 30), dep("4", 40)]
    incidents = [IncidentRecord("i", h(31), h(33), deployment_id="3")]
    m = metrics(deps, incidents=incidents)
    assert m.failed_deployments == 2 and m.change_failure_rate == 0.5


def test_time_to_restore_incidents_and_failed_deployments_without_incident():
    deps = [dep("1", 10), dep("2", 20, False), dep("3", 26), dep("4", 40, False), dep("5", 100)]
    incidents = [
        IncidentRecord("i1", h(41), h(43), deployment_id="4"),  # 2h; deployment 4 is covered by it
        IncidentRecord("i2", h(50), h(60)),  # 10h
        IncidentRecord("open", h(70), None),  # still open: no restore time
    ]
    m = metrics(deps, incidents=incidents)
    # samples: i1 2h, i2 10h, deployment 2 -> 3: 6h
    assert m.restore_samples == 3 and m.time_to_restore_hours == 6.0
    assert m.open_incidents == 1


def test_incident_resolved_after_end_is_open_and_has_no_restore_time():
    m = metrics([dep("1", 10)], incidents=[IncidentRecord("i", h(300), END + dt.timedelta(hours=5))])
    assert m.open_incidents == 1 and m.time_to_restore_hours is None


def test_failed_deployment_never_fixed_has_no_restore_time():
    m = metrics([dep("1", 10, False)])
    assert m.time_to_restore_hours is None and m.change_failure_rate == 1.0


def test_restore_looks_for_the_next_success_of_the_same_service():
    deps = [dep("a1", 10, False, service="api"), dep("w1", 11, service="web"), dep("a2", 15, service="api")]
    assert metrics(deps).time_to_restore_hours == 5.0


def test_rework_rate_after_a_failure_or_during_an_incident():
    deps = [dep("1", 10), dep("2", 20, False), dep("3", 22), dep("4", 30), dep("5", 50)]
    incidents = [IncidentRecord("i", h(29), h(31))]
    m = metrics(deps, incidents=incidents)
    assert m.rework_rate == pytest.approx(2 / 5)  # 3 follows a failure, 4 during the incident


def test_window_excludes_deployments_outside_and_empty_window_has_no_rates():
    before = dep("0", -5, shas=("a",))
    m = metrics([before, dep("1", 10, shas=("a",))], [CommitRecord("a", h(-10))])
    assert m.deployments == 1 and m.lead_time_hours is None  # a was first deployed before the window
    empty = metrics([])
    assert empty.deployments == 0 and empty.change_failure_rate is None and empty.rework_rate is None
    assert empty.deployment_frequency_per_week == 0.0 and empty.bands == {
        "deployment_frequency_per_week": "low"
    }


def test_bands_in_the_result_by_year():
    deps = [dep(str(n), n * 3.0, shas=(f"c{n}",)) for n in range(1, 101)]
    commits = [CommitRecord(f"c{n}", h(n * 3.0 - 2)) for n in range(1, 101)]
    m = metrics(deps, commits, year=2023)
    # 50 a week, 2 hours, no failure; rework and restore have no band (no value / none in the table)
    assert m.bands == {
        "deployment_frequency_per_week": "elite",
        "lead_time_hours": "elite",
        "change_failure_rate": "elite",
    }
    assert band("deployment_frequency_per_week", 50, 2021) == "elite"


def test_band_table_by_report_year():
    assert available_years()[:2] == [2021, 2023]
    assert table_year(2022) == 2021 and table_year(2023) == 2023 and table_year(2030) == available_years()[-1]
    assert table_year(2015) == 2021
    # lead time 12 hours: 2021 high (elite is under one hour), 2023 elite (under one day)
    assert band("lead_time_hours", 12, 2021) == "high"
    assert band("lead_time_hours", 12, 2023) == "elite"
    assert band("change_failure_rate", 0.12, 2021) == "elite"
    assert band("change_failure_rate", 0.12, 2023) == "medium"
    assert band("change_failure_rate", 0.5, 2023) == "low"
    assert band("deployment_frequency_per_week", 3, 2023) == "high"
    assert band("deployment_frequency_per_week", 0.5, 2023) == "medium"
    assert band("deployment_frequency_per_week", 0.1, 2023) == "low"
    assert band("deployment_frequency_per_week", 10, 2021) == "elite"
    assert band("time_to_restore_hours", 0.5, 2023) == "elite"
    assert band("time_to_restore_hours", 1000, 2023) == "low"
    with pytest.raises(ValueError, match="no DORA band for 'rework_rate'"):
        band("rework_rate", 0.1, 2023)


def test_bands_file_marks_each_reports_source():
    raw = json.loads(BANDS_FILE.read_text(encoding="utf-8"))
    for year in ("2021", "2023"):
        assert f"State of DevOps Report {year}" in raw["tables"][year]["source"]
