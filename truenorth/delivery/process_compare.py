"""Before/after comparison of flow and DORA measures around a process change, pure (no Django; numpy,
scipy and the statistics engine; mypy --strict).

A process change (a lower WIP limit, pairing on reviews …) is an observational before/after experiment:
the window of ``before`` days ending at the change and the window of ``after`` days starting at it. Each
measure is compared with an interval estimate at 95 %, never just two averages:

- **cycle time, median and 85th percentile** (days, items done in the window that were started): the
  statistics engine's quantile comparison (``truenorth.stats.quantile.welch``: a distribution-free
  order-statistic bracket per window, then Welch); effect = after - before, in days.
- **cycle time, geometric mean** (days): Welch's t interval on log cycle times (the engine's
  ``frequentist.welch``), turned back into the ratio after / before of the geometric means.
- **throughput** and **deployment frequency** (per week): counts over exposure time, compared as the
  ratio of Poisson rates after / before with the exact conditional interval (given the total count, the
  after count is binomial with p = r·t_after / (r·t_after + t_before); the Clopper-Pearson interval for p
  is mapped to the rate ratio). Counts of work are often over-dispersed (batches), so read it as a lower
  bound on the uncertainty.
- **lead time for changes** and **time to restore** (hours, medians): the engine's quantile comparison.
- **change failure rate**: difference of proportions after - before with Newcombe's hybrid score
  interval (Wilson intervals per window, combined); it stays honest at 0 failures and at small counts,
  where the Wald interval of a Welch test has no width at all.
- **WIP** (items in progress at the end of each window): one count each, shown without an interval.

Verdict per measure: ``better`` or ``worse`` when the whole interval lies on one side of no effect (0 for
a difference, 1 for a ratio), taking the measure's better direction into account; ``unclear`` when it
crosses no effect; ``too little data`` (with the reason, and no interval) when a window has fewer than
MIN_SAMPLES values, no events at all, or the engine itself cannot form the interval.

``dora_samples`` gives the per-commit lead times and per-failure restore times of a window under the
exact rules of ``truenorth.delivery.dora`` (whose ``dora_metrics`` returns only their medians).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
from scipy import special

from truenorth.delivery import dora
from truenorth.stats import frequentist
from truenorth.stats import quantile as quantiles
from truenorth.stats.summary import MeanStats

ALPHA: Final = 0.05
MIN_SAMPLES: Final = 5  # values per window for a quantile or a mean
MIN_DEPLOYMENTS: Final = 5  # deployments per window for the change failure rate
LOG_FLOOR_DAYS: Final = 1 / 1440  # a cycle time of 0 (done the minute it started) is logged as 1 minute
BETTER: Final = "better"
WORSE: Final = "worse"
UNCLEAR: Final = "unclear"
TOO_LITTLE: Final = "too little data"
NOT_TESTED: Final = "no interval"
VERDICTS: Final = (BETTER, WORSE, UNCLEAR, TOO_LITTLE, NOT_TESTED)


@dataclass(frozen=True)
class WindowData:
    """What one window holds: its length, the per-item and per-change samples and the counts."""

    days: float
    cycle_days: Sequence[float] = ()
    done: int = 0
    deployments: int = 0
    failed: int = 0
    lead_hours: Sequence[float] = ()
    restore_hours: Sequence[float] = ()
    wip: int | None = None


@dataclass(frozen=True)
class Effect:
    """One measure compared: values per window, the effect with its 95 % interval, and the verdict."""

    key: str
    label: str
    unit: str
    better_when: str  # "lower" or "higher"
    before: float | None
    after: float | None
    n_before: int
    n_after: int
    effect_kind: str  # "difference" (no effect = 0) or "ratio" (no effect = 1)
    effect: float | None = None
    low: float | None = None
    high: float | None = None
    verdict: str = TOO_LITTLE
    method: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {k: (_clean(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _clean(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float


def verdict(low: float, high: float, *, no_effect: float, better_when: str) -> str:
    """better/worse when the interval lies wholly on one side of no effect, else unclear."""
    if high < no_effect:
        return BETTER if better_when == "lower" else WORSE
    if low > no_effect:
        return WORSE if better_when == "lower" else BETTER
    return UNCLEAR


# --- intervals ------------------------------------------------------------------------------------------


def clopper_pearson(k: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Exact (Clopper-Pearson) two-sided interval for a binomial proportion k / n."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError("need 0 <= k <= n and n > 0")
    low = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high


def rate_ratio(
    k_before: int, t_before: float, k_after: int, t_after: float, alpha: float = ALPHA
) -> Interval:
    """Ratio of Poisson rates (after / before) with the exact conditional interval."""
    if t_before <= 0 or t_after <= 0:
        raise ValueError("exposure times must be positive")
    if k_before <= 0 or k_after <= 0:
        raise ValueError("both windows need at least one event")
    n = k_before + k_after
    lo_p, hi_p = clopper_pearson(k_after, n, alpha)
    scale = t_before / t_after

    def odds(p: float) -> float:
        return math.inf if p >= 1 else p / (1 - p)

    return Interval((k_after / t_after) / (k_before / t_before), odds(lo_p) * scale, odds(hi_p) * scale)


def wilson(k: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """Wilson score interval for a proportion k / n."""
    z = float(special.ndtri(1 - alpha / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_difference(
    k_before: int, n_before: int, k_after: int, n_after: int, alpha: float = ALPHA
) -> Interval:
    """Difference of proportions after - before, Newcombe's hybrid score interval (his method 10)."""
    if n_before <= 0 or n_after <= 0:
        raise ValueError("both windows need at least one trial")
    p1, p2 = k_before / n_before, k_after / n_after
    l1, u1 = wilson(k_before, n_before, alpha)
    l2, u2 = wilson(k_after, n_after, alpha)
    d = p2 - p1
    return Interval(
        d, d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    )


def quantile_difference(before: Sequence[float], after: Sequence[float], nu: float) -> Interval | str:
    """after - before of the ``nu`` quantile (the engine's quantile Welch), or why it cannot be formed."""
    a = quantiles.QuantileStats.from_values(np.asarray(before, dtype=float), nu)
    b = quantiles.QuantileStats.from_values(np.asarray(after, dtype=float), nu)
    result = quantiles.welch(a, b, alpha=ALPHA)
    if bool(result.not_enough_data.item()):
        return str(result.reason.item())
    return Interval(float(result.effect.item()), float(result.ci_low.item()), float(result.ci_high.item()))


def log_mean_ratio(before: Sequence[float], after: Sequence[float]) -> Interval | str:
    """Ratio after / before of the geometric means: Welch's interval on the logs, exponentiated."""
    a = MeanStats.from_values(np.log(np.maximum(np.asarray(before, dtype=float), LOG_FLOOR_DAYS)))
    b = MeanStats.from_values(np.log(np.maximum(np.asarray(after, dtype=float), LOG_FLOOR_DAYS)))
    result = frequentist.welch(a, b, alpha=ALPHA)
    if bool(result.not_enough_data.item()):
        return str(result.reason.item())
    return Interval(
        math.exp(float(result.effect.item())),
        math.exp(float(result.ci_low.item())),
        math.exp(float(result.ci_high.item())),
    )


# --- the comparison --------------------------------------------------------------------------------------


def _median(values: Sequence[float], q: float = 0.5) -> float | None:
    return float(np.quantile(np.asarray(values, dtype=float), q, method="inverted_cdf")) if values else None


def _geomean(values: Sequence[float]) -> float | None:
    if not values:
        return None
    return float(np.exp(np.mean(np.log(np.maximum(np.asarray(values, dtype=float), LOG_FLOOR_DAYS)))))


def _too_few(n_before: int, n_after: int, minimum: int, what: str) -> str:
    if min(n_before, n_after) >= minimum:
        return ""
    return f"{n_before} {what} before and {n_after} after: at least {minimum} in each window are needed."


def _with(base: Effect, found: Interval | str, method: str, no_effect: float) -> Effect:
    if isinstance(found, str):
        return Effect(**{**asdict(base), "verdict": TOO_LITTLE, "method": method, "reason": found})
    if not (math.isfinite(found.low) and math.isfinite(found.high)):
        return Effect(
            **{**asdict(base), "verdict": TOO_LITTLE, "method": method, "reason": "the interval is unbounded"}
        )
    return Effect(
        **{
            **asdict(base),
            "effect": found.estimate,
            "low": found.low,
            "high": found.high,
            "verdict": verdict(found.low, found.high, no_effect=no_effect, better_when=base.better_when),
            "method": method,
        }
    )


def _quantile_effect(
    key: str, label: str, unit: str, before: Sequence[float], after: Sequence[float], nu: float, what: str
) -> Effect:
    base = Effect(
        key,
        label,
        unit,
        "lower",
        _median(before, nu),
        _median(after, nu),
        len(before),
        len(after),
        "difference",
    )
    method = f"difference of {int(nu * 100)}th percentiles (order-statistic bracket, Welch)"
    short = _too_few(len(before), len(after), MIN_SAMPLES, what)
    return _with(base, short or quantile_difference(before, after, nu), method, 0.0)


def _rate_effect(
    key: str, label: str, k_before: int, d_before: float, k_after: int, d_after: float, what: str
) -> Effect:
    weeks_before, weeks_after = d_before / 7, d_after / 7
    base = Effect(
        key,
        label,
        "per week",
        "higher",
        k_before / weeks_before if weeks_before > 0 else None,
        k_after / weeks_after if weeks_after > 0 else None,
        k_before,
        k_after,
        "ratio",
    )
    method = "ratio of Poisson rates (exact conditional interval)"
    if weeks_before <= 0 or weeks_after <= 0:
        return _with(base, "a window has no length", method, 1.0)
    if k_before == 0 or k_after == 0:
        return _with(
            base, f"{k_before} {what} before and {k_after} after: a rate of 0 has no ratio.", method, 1.0
        )
    return _with(base, rate_ratio(k_before, weeks_before, k_after, weeks_after), method, 1.0)


def compare(before: WindowData, after: WindowData) -> list[Effect]:
    """Every measure compared (see the module docstring), in display order."""
    out = [
        _quantile_effect(
            "cycle_time_p50", "Cycle time, median", "days", before.cycle_days, after.cycle_days, 0.5, "items"
        ),
        _quantile_effect(
            "cycle_time_p85",
            "Cycle time, 85th percentile",
            "days",
            before.cycle_days,
            after.cycle_days,
            0.85,
            "items",
        ),
    ]
    geo = Effect(
        "cycle_time_geomean",
        "Cycle time, geometric mean",
        "days",
        "lower",
        _geomean(before.cycle_days),
        _geomean(after.cycle_days),
        len(before.cycle_days),
        len(after.cycle_days),
        "ratio",
    )
    short = _too_few(len(before.cycle_days), len(after.cycle_days), MIN_SAMPLES, "items")
    out.append(
        _with(
            geo,
            short or log_mean_ratio(before.cycle_days, after.cycle_days),
            "ratio of geometric means (Welch on logs)",
            1.0,
        )
    )
    out.append(
        _rate_effect(
            "throughput", "Throughput", before.done, before.days, after.done, after.days, "items done"
        )
    )
    out.append(
        Effect(
            "wip",
            "Work in progress at the window's end",
            "items",
            "lower",
            _num(before.wip),
            _num(after.wip),
            1 if before.wip is not None else 0,
            1 if after.wip is not None else 0,
            "difference",
            verdict=NOT_TESTED,
            method="one count per window",
            reason="a single count has no interval",
        )
    )
    out.append(
        _rate_effect(
            "deployment_frequency",
            "Deployment frequency",
            before.deployments,
            before.days,
            after.deployments,
            after.days,
            "deployments",
        )
    )
    out.append(
        _quantile_effect(
            "lead_time",
            "Lead time for changes, median",
            "hours",
            before.lead_hours,
            after.lead_hours,
            0.5,
            "changes",
        )
    )
    cfr = Effect(
        "change_failure_rate",
        "Change failure rate",
        "share",
        "lower",
        before.failed / before.deployments if before.deployments else None,
        after.failed / after.deployments if after.deployments else None,
        before.deployments,
        after.deployments,
        "difference",
    )
    short = _too_few(before.deployments, after.deployments, MIN_DEPLOYMENTS, "deployments")
    out.append(
        _with(
            cfr,
            short or newcombe_difference(before.failed, before.deployments, after.failed, after.deployments),
            "difference of proportions (Newcombe hybrid score)",
            0.0,
        )
    )
    out.append(
        _quantile_effect(
            "time_to_restore",
            "Time to restore, median",
            "hours",
            before.restore_hours,
            after.restore_hours,
            0.5,
            "restores",
        )
    )
    return out


def _num(value: int | None) -> float | None:
    return None if value is None else float(value)


# --- DORA samples ----------------------------------------------------------------------------------------


@dataclass
class DoraSamples:
    deployments: int = 0
    failed: int = 0
    lead_hours: list[float] = field(default_factory=list)
    restore_hours: list[float] = field(default_factory=list)


def _hours(delta: dt.timedelta) -> float:
    return max(delta.total_seconds() / 3600.0, 0.0)


def dora_samples(
    deployments: Iterable[dora.DeploymentRecord],
    commits: Iterable[dora.CommitRecord],
    pulls: Iterable[dora.PullRecord],
    incidents: Iterable[dora.IncidentRecord],
    *,
    start: dt.datetime,
    end: dt.datetime,
    production: str = "production",
) -> DoraSamples:
    """The window's deployment counts and its lead-time and restore samples, by dora.py's rules (the medians
    of these samples are ``dora_metrics``' lead_time_hours and time_to_restore_hours)."""
    if end < start:
        raise ValueError("end is before start")
    incidents = [i for i in incidents if i.opened_at <= end]
    runs = [d for d in dora.group_deployments(deployments, production) if d.deployed_at <= end]
    named = {i.deployment_id for i in incidents if i.deployment_id}
    for d in runs:
        if d.ids & named:
            d.succeeded = False
    window = [d for d in runs if d.deployed_at >= start]
    starts: dict[str, dt.datetime] = {c.sha: c.authored_at for c in commits}
    for p in pulls:
        if p.first_commit_at is None:
            continue
        for sha in (p.merge_sha, *p.commit_shas):
            if sha and (sha not in starts or p.first_commit_at < starts[sha]):
                starts[sha] = p.first_commit_at
    out = DoraSamples(len(window), sum(1 for d in window if not d.succeeded))
    seen: set[str] = set()
    for d in runs:
        if not d.succeeded:
            continue
        for sha in d.commit_shas:
            if sha in seen:
                continue
            seen.add(sha)
            if d.deployed_at >= start and sha in starts:
                out.lead_hours.append(_hours(d.deployed_at - starts[sha]))
    out.restore_hours = [
        _hours(i.resolved_at - i.opened_at)
        for i in incidents
        if i.opened_at >= start and i.resolved_at is not None and i.resolved_at <= end
    ]
    next_success: dict[str, dora.Deployment] = {}
    for d in reversed(runs):
        fix = next_success.get(d.service)
        if d.succeeded:
            next_success[d.service] = d
        elif fix is not None and d.deployed_at >= start and not d.ids & named:
            out.restore_hours.append(_hours(fix.deployed_at - d.deployed_at))
    return out
