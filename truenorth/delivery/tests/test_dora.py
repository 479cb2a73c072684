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
    assert available_years() == [2021, 2023, 2024]
    assert table_year(2022) == 2021 and table_year(2023) == 2023 and table_year(2030) == 2024
    assert table_year(2015) == 2021
    # lead time 12 hours: between 2021's elite (under an hour) and high (from a day): the gap is elite
    assert band("lead_time_hours", 12, 2021) == "elite"
    assert band("lead_time_hours", 12, 2023) == "elite"
    assert band("change_failure_rate", 0.12, 2021) == "elite"
    assert band("change_failure_rate", 0.12, 2023) == "medium"
    assert band("change_failure_rate", 0.12, 2024) == "high"
    assert band("change_failure_rate", 0.5, 2023) == "low"
    assert band("deployment_frequency_per_week", 3, 2023) == "high"
    assert band("deployment_frequency_per_week", 0.5, 2023) == "medium"
    assert band("deployment_frequency_per_week", 0.1, 2023) == "low"
    assert band("deployment_frequency_per_week", 10, 2021) == "elite"
    assert band("time_to_restore_hours", 0.5, 2023) == "elite"
    assert band("time_to_restore_hours", 1000, 2023) == "low"
    for year in available_years():
        with pytest.raises(ValueError, match="no DORA band for 'rework_rate'"):
            band("rework_rate", 0.1, year)


# Boundaries as the reports word them (dora_bands.json): once a day = 7 a week, once a month = 12/52,
# once every six months = 2/52; a day = 24 h, a week = 168 h, a month = 730 h, six months = 4,380 h.
MONTHLY, HALF_YEARLY = 12 / 52, 2 / 52


@pytest.mark.parametrize(
    ("metric", "value", "want"),
    [
        # deployment frequency: elite on demand; high once a week to once a month; medium once a month to
        # once every six months; low fewer. Between weekly and daily is a gap: the better band (elite).
        ("deployment_frequency_per_week", 14, "elite"),
        ("deployment_frequency_per_week", 1, "elite"),
        ("deployment_frequency_per_week", 0.99, "high"),
        ("deployment_frequency_per_week", MONTHLY, "high"),
        ("deployment_frequency_per_week", MONTHLY - 0.001, "medium"),
        ("deployment_frequency_per_week", HALF_YEARLY, "medium"),
        ("deployment_frequency_per_week", HALF_YEARLY - 0.001, "low"),
        # lead time: elite under an hour, high a day to a week, medium a month to six months, low more;
        # the gaps (an hour to a day, a week to a month) go to the better band.
        ("lead_time_hours", 0.5, "elite"),
        ("lead_time_hours", 24, "elite"),
        ("lead_time_hours", 25, "high"),
        ("lead_time_hours", 400, "high"),
        ("lead_time_hours", 731, "medium"),
        ("lead_time_hours", 4380, "medium"),
        ("lead_time_hours", 4381, "low"),
        # time to restore: elite under an hour, high under a day, medium a day to a week, low over six
        # months; a week to six months is a gap, so medium.
        ("time_to_restore_hours", 1, "elite"),
        ("time_to_restore_hours", 1.5, "high"),
        ("time_to_restore_hours", 24, "high"),
        ("time_to_restore_hours", 2000, "medium"),
        ("time_to_restore_hours", 5000, "low"),
        # change failure rate: elite 0-15 %; high, medium and low all 16-30 %: above 30 % is low.
        ("change_failure_rate", 0.15, "elite"),
        ("change_failure_rate", 0.16, "high"),
        ("change_failure_rate", 0.30, "high"),
        ("change_failure_rate", 0.31, "low"),
    ],
)
def test_2021_boundaries(metric: str, value: float, want: str) -> None:
    assert band(metric, value, 2021) == want


@pytest.mark.parametrize(
    ("metric", "value", "want"),
    [
        # elite on demand, high once a day to once a week, medium and low both once a week to once a month
        ("deployment_frequency_per_week", 7, "elite"),
        ("deployment_frequency_per_week", 6.9, "high"),
        ("deployment_frequency_per_week", 1, "high"),
        ("deployment_frequency_per_week", 0.9, "medium"),
        ("deployment_frequency_per_week", MONTHLY, "medium"),
        ("deployment_frequency_per_week", MONTHLY - 0.001, "low"),
        # elite under a day, high a day to a week, medium and low both a week to a month
        ("lead_time_hours", 24, "elite"),
        ("lead_time_hours", 168, "high"),
        ("lead_time_hours", 169, "medium"),
        ("lead_time_hours", 730, "medium"),
        ("lead_time_hours", 731, "low"),
        # one typical rate per cluster: 5 %, 10 %, 15 %, 64 %
        ("change_failure_rate", 0.05, "elite"),
        ("change_failure_rate", 0.06, "high"),
        ("change_failure_rate", 0.10, "high"),
        ("change_failure_rate", 0.15, "medium"),
        ("change_failure_rate", 0.16, "low"),
        # elite under an hour, high under a day, medium a day to a week, low (from a month) beyond
        ("time_to_restore_hours", 1, "elite"),
        ("time_to_restore_hours", 24, "high"),
        ("time_to_restore_hours", 500, "medium"),
        ("time_to_restore_hours", 731, "low"),
    ],
)
def test_2023_boundaries(metric: str, value: float, want: str) -> None:
    assert band(metric, value, 2023) == want


@pytest.mark.parametrize(
    ("metric", "value", "want"),
    [
        ("deployment_frequency_per_week", 7, "elite"),
        ("deployment_frequency_per_week", 1, "high"),
        ("deployment_frequency_per_week", MONTHLY, "medium"),
        ("deployment_frequency_per_week", 0.1, "low"),
        ("lead_time_hours", 24, "elite"),
        ("lead_time_hours", 168, "high"),
        ("lead_time_hours", 730, "medium"),
        ("lead_time_hours", 1000, "low"),
        # clusters not ordered on failure rate: elite 5 %, medium 10 %, high 20 %, low 40 %
        ("change_failure_rate", 0.05, "elite"),
        ("change_failure_rate", 0.08, "medium"),
        ("change_failure_rate", 0.10, "medium"),
        ("change_failure_rate", 0.15, "high"),
        ("change_failure_rate", 0.20, "high"),
        ("change_failure_rate", 0.21, "low"),
        # high and medium both under a day, low a week to a month: a day to a week is medium
        ("time_to_restore_hours", 1, "elite"),
        ("time_to_restore_hours", 24, "high"),
        ("time_to_restore_hours", 100, "medium"),
        ("time_to_restore_hours", 169, "low"),
    ],
)
def test_2024_boundaries(metric: str, value: float, want: str) -> None:
    assert band(metric, value, 2024) == want


def test_bands_file_marks_each_reports_source_and_what_was_checked():
    raw = json.loads(BANDS_FILE.read_text(encoding="utf-8"))
    assert sorted(raw["tables"]) == ["2021", "2023", "2024"]
    for year, table in raw["tables"].items():
        assert f"State of DevOps Report {year}" in table["source"]
        assert table["verified"] and isinstance(table["unverified"], list)
        assert set(table["metrics"]) == {
            "deployment_frequency_per_week",
            "lead_time_hours",
            "time_to_restore_hours",
            "change_failure_rate",
        }  # no report gives bands for rework rate
        for spec in table["metrics"].values():
            bounds = [b for _, b in spec["bands"]]
            assert bounds[-1] is None and None not in bounds[:-1]
            # tried in order: each bound is less demanding than the one before
            assert bounds[:-1] == sorted(bounds[:-1], reverse=spec["better"] == "higher")
    assert raw["tables"]["2024"]["source"].count("p. 13") == 1
