"""DORA metrics from deployments, commits, pull requests and incidents, pure (no Django; mypy --strict).

Rules (each tested on hand-computed cases in tests/test_dora.py):

- Only deployments to the ``production`` environment count (compared case-insensitively, stripped).
- Deployments sharing a non-empty ``run_id`` (one pipeline run deploying several services or retrying)
  count as ONE deployment: at the earliest ``deployed_at`` of the run, failed if any of them failed,
  containing the union of their commits, with the first one's id and service. Grouping happens before
  the window is applied; a deployment counts in the window when its (first) time is in [start, end].
- A deployment has **failed** when ``succeeded`` is false or an incident names it (``deployment_id``, any
  id of the run).
- **Deployment frequency**: deployments in the window / (window length in days / 7), per week.
- **Lead time for changes** (hours, median): for each commit, from its start to the FIRST successful
  production deployment that contains it (a later deployment listing it again does not count). Its start
  is the earliest of: the commit's ``authored_at`` and the ``first_commit_at`` of every pull request whose
  ``merge_sha`` is that sha or that lists it in ``commit_shas`` (so a squash or rebase merge, whose sha is
  new, starts at the pull request's first commit). Commits whose first deployment is in the window count;
  commits with no known start have no lead time; deployments without commits count as deployments but add
  no lead time. Negative spans (clock skew) count as 0.
- **Change failure rate**: failed deployments / deployments in the window.
- **Time to restore** (hours, median; the 2023 report's "failed deployment recovery time"): one sample
  per incident opened in the window and resolved by ``end`` (opened -> resolved), plus one per failed
  deployment in the window that no incident names (failed deployment -> the next successful production
  deployment of the same service, if there is one by ``end``). Incidents still open at ``end`` have no
  restore time; they are counted in ``open_incidents`` (opened by ``end``, not resolved by ``end``).
- **Rework rate** (the 2024 report's "deployment rework rate"): the share of deployments in the window
  that were unplanned fixes: the previous production deployment of the same service had failed, or an
  incident was open when it was deployed (opened at or before it, resolved after it or not yet).
- **Bands**: each metric's DORA performance band (elite/high/medium/low) from ``dora_bands.json``, the
  latest report year at or before ``year`` (see ``band``); a metric without a value or without a band
  in that table is left out.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

BANDS_FILE: Final = Path(__file__).with_name("dora_bands.json")
HOUR_SECONDS: Final = 3600.0
BAND_NAMES: Final = ("elite", "high", "medium", "low")
METRICS: Final = (
    "deployment_frequency_per_week",
    "lead_time_hours",
    "change_failure_rate",
    "time_to_restore_hours",
    "rework_rate",
)


@dataclass(frozen=True)
class DeploymentRecord:
    id: str
    deployed_at: dt.datetime
    succeeded: bool
    environment: str = "production"
    run_id: str = ""
    commit_shas: Sequence[str] = ()
    service: str = ""


@dataclass(frozen=True)
class CommitRecord:
    sha: str
    authored_at: dt.datetime


@dataclass(frozen=True)
class PullRecord:
    first_commit_at: dt.datetime | None
    merged_at: dt.datetime | None
    merge_sha: str = ""
    commit_shas: Sequence[str] = ()


@dataclass(frozen=True)
class IncidentRecord:
    id: str
    opened_at: dt.datetime
    resolved_at: dt.datetime | None
    deployment_id: str = ""


@dataclass
class DoraMetrics:
    deployments: int
    deployment_frequency_per_week: float | None
    lead_time_hours: float | None
    change_failure_rate: float | None
    time_to_restore_hours: float | None
    rework_rate: float | None
    open_incidents: int
    bands: dict[str, str]
    failed_deployments: int = 0
    lead_time_samples: int = 0
    restore_samples: int = 0
    year: int = 2023


@dataclass
class Deployment:
    """One counted production deployment (a pipeline run's deployments merged)."""

    id: str
    deployed_at: dt.datetime
    succeeded: bool
    service: str
    commit_shas: list[str]
    ids: set[str] = field(default_factory=set)


def _hours(delta: dt.timedelta) -> float:
    return max(delta.total_seconds() / HOUR_SECONDS, 0.0)


def group_deployments(
    deployments: Iterable[DeploymentRecord], production: str = "production"
) -> list[Deployment]:
    """Production deployments, one per pipeline run, in time order."""
    env = production.strip().casefold()
    runs: dict[str, Deployment] = {}
    out: list[Deployment] = []
    for d in sorted(deployments, key=lambda d: (d.deployed_at, d.id)):
        if d.environment.strip().casefold() != env:
            continue
        if d.run_id and d.run_id in runs:
            g = runs[d.run_id]
            g.succeeded = g.succeeded and d.succeeded
            g.ids.add(d.id)
            g.commit_shas.extend(s for s in d.commit_shas if s not in g.commit_shas)
            continue
        g = Deployment(
            d.id, d.deployed_at, d.succeeded, d.service, list(dict.fromkeys(d.commit_shas)), {d.id}
        )
        if d.run_id:
            runs[d.run_id] = g
        out.append(g)
    return out


def dora_metrics(
    deployments: Iterable[DeploymentRecord],
    commits: Iterable[CommitRecord],
    pulls: Iterable[PullRecord],
    incidents: Iterable[IncidentRecord],
    *,
    start: dt.datetime,
    end: dt.datetime,
    production: str = "production",
    year: int = 2023,
) -> DoraMetrics:
    """DORA metrics for the window [start, end] (see the module docstring for every rule)."""
    if end < start:
        raise ValueError("end is before start")
    incidents = [i for i in incidents if i.opened_at <= end]
    runs = [d for d in group_deployments(deployments, production) if d.deployed_at <= end]
    named = {i.deployment_id for i in incidents if i.deployment_id}
    for d in runs:
        if d.ids & named:
            d.succeeded = False
    window = [d for d in runs if d.deployed_at >= start]

    # lead time for changes
    starts: dict[str, dt.datetime] = {c.sha: c.authored_at for c in commits}
    for p in pulls:
        if p.first_commit_at is None:
            continue
        for sha in (p.merge_sha, *p.commit_shas):
            if sha and (sha not in starts or p.first_commit_at < starts[sha]):
                starts[sha] = p.first_commit_at
    seen: set[str] = set()
    leads: list[float] = []
    for d in runs:
        if not d.succeeded:
            continue
        for sha in d.commit_shas:
            if sha in seen:
                continue
            seen.add(sha)
            if d.deployed_at >= start and sha in starts:
                leads.append(_hours(d.deployed_at - starts[sha]))

    # time to restore
    restores = [
        _hours(i.resolved_at - i.opened_at)
        for i in incidents
        if i.opened_at >= start and i.resolved_at is not None and i.resolved_at <= end
    ]
    next_success: dict[str, Deployment] = {}  # per service, scanning backwards in time
    for d in reversed(runs):
        fix = next_success.get(d.service)
        if d.succeeded:
            next_success[d.service] = d
        elif fix is not None and d.deployed_at >= start and not d.ids & named:
            restores.append(_hours(fix.deployed_at - d.deployed_at))
    open_incidents = sum(1 for i in incidents if i.resolved_at is None or i.resolved_at > end)

    # rework; incidents open at t: opened at or before t minus resolved at or before t
    opened = sorted(i.opened_at for i in incidents)
    closed = sorted(i.resolved_at for i in incidents if i.resolved_at is not None)
    rework = 0
    last_by_service: dict[str, Deployment] = {}
    for d in runs:
        prev = last_by_service.get(d.service)
        last_by_service[d.service] = d
        if d.deployed_at < start:
            continue
        during = bisect_right(opened, d.deployed_at) > bisect_right(closed, d.deployed_at)
        if (prev is not None and not prev.succeeded) or during:
            rework += 1

    count = len(window)
    failed = sum(1 for d in window if not d.succeeded)
    weeks = (end - start).total_seconds() / (7 * 86_400)
    result = DoraMetrics(
        deployments=count,
        deployment_frequency_per_week=count / weeks if weeks > 0 else None,
        lead_time_hours=statistics.median(leads) if leads else None,
        change_failure_rate=failed / count if count else None,
        time_to_restore_hours=statistics.median(restores) if restores else None,
        rework_rate=rework / count if count else None,
        open_incidents=open_incidents,
        bands={},
        failed_deployments=failed,
        lead_time_samples=len(leads),
        restore_samples=len(restores),
        year=year,
    )
    for metric in METRICS:
        value = getattr(result, metric)
        if value is not None and has_band(metric, year):
            result.bands[metric] = band(metric, value, year)
    return result


# ----- performance bands -------------------------------------------------------------------------------


@cache
def _tables() -> dict[int, dict[str, Any]]:
    raw = json.loads(BANDS_FILE.read_text(encoding="utf-8"))
    return {int(y): t for y, t in raw["tables"].items()}


def available_years() -> list[int]:
    """The report years that have a band table, ascending."""
    return sorted(_tables())


def table_year(year: int) -> int:
    """The latest report year at or before ``year`` (the earliest table for an older year)."""
    years = available_years()
    earlier = [y for y in years if y <= year]
    return earlier[-1] if earlier else years[0]


def has_band(metric: str, year: int) -> bool:
    return metric in _tables()[table_year(year)]["metrics"]


def band(metric: str, value: float, year: int) -> str:
    """elite/high/medium/low for ``value`` of ``metric`` (units as in DoraMetrics: deployments per week,
    hours, rates as fractions 0-1) in the table of the latest report at or before ``year``.

    Each table lists a bound per band in the order the bands are tried (best first, except where a
    report's clusters are not ordered on a metric, e.g. 2024's change failure rate: elite 5 %, medium
    10 %, high 20 %): for metrics where higher is better the value must be at least the bound, otherwise
    at most the bound; the first band met wins, the last band (bound null) takes the rest."""
    table = _tables()[table_year(year)]["metrics"]
    if metric not in table:
        raise ValueError(f"no DORA band for {metric!r} in the {table_year(year)} report")
    spec = table[metric]
    higher = spec["better"] == "higher"
    for name, bound in spec["bands"]:
        if bound is None or (value >= bound if higher else value <= bound):
            return str(name)
    return str(spec["bands"][-1][0])
