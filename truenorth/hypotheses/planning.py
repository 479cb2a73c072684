"""Experiment planning: the power calculator (planned sample size), applying a plan to an experiment, and
the power achieved so far from the latest result snapshot.

The numbers come from the pure `truenorth.stats.power` (two-sided two-sample tests, equal allocation).
Unequal allocation is handled by the normal approximation: the variance of a control-vs-treatment
difference scales with ``1/n_control + 1/n_treatment``, so the total is sized for the worst comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from truenorth.core.errors import ValidationFailed
from truenorth.stats import power as pw

if TYPE_CHECKING:  # the calculator runs without Django (`truenorth power`); the rest imports it lazily
    from truenorth.accounts.models import User
    from truenorth.hypotheses.models import Experiment, ResultSnapshot
    from truenorth.orgs.models import Membership

MetricKind = Literal["proportion", "mean"]
METRIC_KINDS: tuple[str, ...] = ("proportion", "mean")
MAX_VARIATIONS = 20
ALLOCATION_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Plan:
    """The units each variation needs, the total and (given daily traffic) the days to collect them."""

    metric_kind: str
    mde: float
    relative: bool
    alpha: float
    power: float
    variations: int
    allocation: tuple[float, ...]
    per_variation: tuple[int, ...]
    total: int
    baseline_rate: float | None = None
    baseline_mean: float | None = None
    baseline_sd: float | None = None
    daily_traffic: float | None = None
    days: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["allocation"] = list(self.allocation)
        data["per_variation"] = list(self.per_variation)
        return data


@dataclass(frozen=True)
class Achieved:
    """Power achieved so far (None with the reason when it cannot be computed)."""

    power: float | None
    reason: str = ""
    n_per_variation: tuple[int, ...] = field(default_factory=tuple)
    snapshot_id: int | None = None


# --- validation -----------------------------------------------------------------------------------


def _num(value: Any, name: str, *, required: bool = True) -> float | None:
    if value is None or value == "":
        if required:
            raise ValidationFailed("This field is required.", field=name)
        return None
    if isinstance(value, bool):
        raise ValidationFailed("Must be a number.", field=name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationFailed("Must be a number.", field=name) from None
    if not math.isfinite(number):
        raise ValidationFailed("Must be a finite number.", field=name)
    return number


def _req(value: Any, name: str) -> float:
    number = _num(value, name)
    assert number is not None
    return number


def _allocation(raw: Sequence[Any] | None, variations: int) -> tuple[float, ...]:
    if raw is None or len(raw) == 0:
        return tuple([1.0 / variations] * variations)
    if len(raw) != variations:
        raise ValidationFailed(f"Give one share per variation ({variations}).", field="allocation")
    shares = [_req(v, "allocation") for v in raw]
    if any(s <= 0 for s in shares):
        raise ValidationFailed("Every share must be above 0.", field="allocation")
    total = sum(shares)
    if abs(total - 1) > ALLOCATION_TOLERANCE and abs(total - 100) > ALLOCATION_TOLERANCE * 100:
        raise ValidationFailed("The shares must add up to 1 (or 100 %).", field="allocation")
    return tuple(s / total for s in shares)


# --- the calculator -------------------------------------------------------------------------------


def plan_sample_size(
    *,
    metric_kind: str = "proportion",
    baseline_rate: Any = None,
    baseline_mean: Any = None,
    baseline_sd: Any = None,
    mde: Any,
    relative: bool = True,
    alpha: Any = 0.05,
    power: Any = 0.8,
    variations: Any = 2,
    allocation: Sequence[Any] | None = None,
    daily_traffic: Any = None,
) -> Plan:
    """Units per variation (control vs each treatment, two-sided) to detect ``mde`` with this power.

    ``mde`` is relative to the baseline (0.05: a 5 % lift) unless ``relative=False`` (an absolute change,
    in rate points or in the metric's unit). ``daily_traffic`` is the units entering the experiment per
    day across all variations.
    """
    if metric_kind not in METRIC_KINDS:
        raise ValidationFailed("Must be 'proportion' or 'mean'.", field="metric_kind")
    a = _req(alpha, "alpha")
    if not 0 < a <= 0.5:
        raise ValidationFailed("Must be above 0 and at most 0.5 (e.g. 0.05).", field="alpha")
    p = _req(power, "power")
    if not 0 < p < 1:
        raise ValidationFailed("Must be between 0 and 1 (e.g. 0.8).", field="power")
    if p <= a:
        raise ValidationFailed("Must be above the significance level (alpha).", field="power")
    effect = _req(mde, "mde")
    if effect <= 0:
        raise ValidationFailed("Must be above 0 (e.g. 0.05 for a 5 % lift).", field="mde")
    k = _req(variations, "variations")
    if k != int(k) or not 2 <= k <= MAX_VARIATIONS:
        raise ValidationFailed(f"Must be a whole number from 2 to {MAX_VARIATIONS}.", field="variations")
    k_int = int(k)
    shares = _allocation(allocation, k_int)
    traffic = _num(daily_traffic, "daily_traffic", required=False)
    if traffic is not None and traffic <= 0:
        raise ValidationFailed("Must be above 0.", field="daily_traffic")

    rate = mean = sd = None
    if metric_kind == "proportion":
        rate = _req(baseline_rate, "baseline_rate")
        if not 0 < rate < 1:
            raise ValidationFailed("Must be between 0 and 1 (e.g. 0.12 for 12 %).", field="baseline_rate")
        target = rate * (1 + effect) if relative else rate + effect
        if not 0 < target < 1:
            raise ValidationFailed(
                f"The rate to detect ({target:.4g}) must stay between 0 and 1; choose a smaller effect.",
                field="mde",
            )
        n_equal = float(pw.sample_size_proportions(rate, effect, alpha=a, power=p, relative=relative))
    else:
        sd = _req(baseline_sd, "baseline_sd")
        if sd <= 0:
            raise ValidationFailed("Must be above 0.", field="baseline_sd")
        mean = _num(baseline_mean, "baseline_mean", required=relative)
        if relative and mean == 0:
            raise ValidationFailed(
                "A relative effect needs a baseline mean other than 0.", field="baseline_mean"
            )
        n_equal = float(
            pw.sample_size_means(
                effect, sd, alpha=a, power=p, relative=relative, baseline_mean=abs(mean or 0.0)
            )
        )
    if not math.isfinite(n_equal):
        raise ValidationFailed("No sample size reaches this power for these inputs.", field="mde")

    # Size the total N for the worst control-vs-treatment comparison: 1/(a0 N) + 1/(ai N) = 2/n_equal.
    control = shares[0]
    total_units = max(n_equal * (1 / control + 1 / s) / 2 for s in shares[1:])
    per_variation = tuple(math.ceil(s * total_units - 1e-9) for s in shares)
    total = sum(per_variation)
    days = math.ceil(total / traffic) if traffic else None
    return Plan(
        metric_kind=metric_kind,
        mde=effect,
        relative=relative,
        alpha=a,
        power=p,
        variations=k_int,
        allocation=shares,
        per_variation=per_variation,
        total=total,
        baseline_rate=rate,
        baseline_mean=mean,
        baseline_sd=sd,
        daily_traffic=traffic,
        days=days,
    )


def apply_plan(
    membership: Membership, actor: User, experiment_id: int, plan: Plan, *, version: int | None
) -> Experiment:
    """Store the plan's total as the experiment's planned sample size (with its alpha, power and a relative
    MDE), recorded in history; a stale ``version`` is refused with Conflict (409)."""
    from truenorth.hypotheses import services

    design: dict[str, Any] = {"planned_sample_size": plan.total, "power": plan.power}
    if plan.alpha < 0.5:
        design["alpha"] = plan.alpha
    if plan.relative:
        design["minimum_detectable_effect"] = plan.mde
    return services.update_experiment(membership, actor, experiment_id, version=version, **design)


# --- achieved power -------------------------------------------------------------------------------


def _arms(data: Any, depth: int = 0) -> list[Mapping[str, Any]] | None:
    """The first group of ≥ 2 per-variation summaries (mappings with a numeric ``n``) in snapshot inputs."""
    if depth > 6:
        return None

    def is_arm(x: Any) -> bool:
        return isinstance(x, Mapping) and isinstance(x.get("n"), int | float) and not isinstance(x["n"], bool)

    if isinstance(data, Mapping):
        arms = [v for v in data.values() if is_arm(v)]
        if len(arms) >= 2:
            return arms
        children: list[Any] = list(data.values())
    elif isinstance(data, list):
        arms = [v for v in data if is_arm(v)]
        if len(arms) >= 2:
            return arms
        children = data
    else:
        return None
    for child in children:
        found = _arms(child, depth + 1)
        if found:
            return found
    return None


def _primary_arms(arms: list[Mapping[str, Any]], control_name: str | None) -> list[Mapping[str, Any]]:
    """From summary rows (one per metric x variation), the primary metric's rows, the control first."""
    if any("metric" in a for a in arms):
        primary = next((a["metric"] for a in arms if a.get("role") == "primary"), arms[0].get("metric"))
        arms = [a for a in arms if a.get("metric") == primary]
    if control_name is not None and any(a.get("variation") == control_name for a in arms):
        arms = sorted(arms, key=lambda a: a.get("variation") != control_name)
    return arms


def _latest_snapshot(experiment: Experiment) -> ResultSnapshot | None:
    from truenorth.hypotheses.models import ResultSnapshot

    # TrueNorth's own results only: an import from an outside tool never drives the power shown.
    return (
        ResultSnapshot.objects.filter(experiment=experiment, kind=ResultSnapshot.Kind.COMPUTED)
        .order_by("-computed_at", "-id")
        .first()
    )


def achieved_power_detail(membership: Membership, experiment_id: int) -> Achieved:
    """Power achieved with the latest snapshot's units per variation, for the experiment's own MDE and
    alpha. The baseline comes from the control's summary (sum, sum of squares) or the hypothesis."""
    from truenorth.hypotheses import services

    experiment = services.get_experiment(membership, experiment_id)
    mde = experiment.minimum_detectable_effect
    if not mde:
        return Achieved(None, "Set the experiment's minimum detectable effect first.")
    snap = _latest_snapshot(experiment)
    if snap is None:
        return Achieved(None, "No results yet: power so far needs a result snapshot.")
    arms = _arms(snap.inputs)
    if not arms:
        return Achieved(None, "The latest snapshot has no units per variation.", snapshot_id=snap.pk)
    first = experiment.variations.first()
    arms = _primary_arms(arms, first.name if first else None)
    if len(arms) < 2:
        return Achieved(None, "The latest snapshot has fewer than two variations.", snapshot_id=snap.pk)
    if arms[0].get("type") == "ratio":
        return Achieved(None, "Power so far is not computed for ratio metrics.", snapshot_id=snap.pk)
    ns = tuple(int(a["n"]) for a in arms)
    control = arms[0]
    alpha = experiment.alpha
    c_n = float(control["n"])
    c_sum, c_ss = control.get("sum"), control.get("sum_squares")
    # The smallest treatment arm limits power; with unequal arms use the effective equal-arm n.
    n_eff = min(2 / (1 / c_n + 1 / n) if c_n > 0 and n > 0 else 0.0 for n in ns[1:])
    if n_eff <= 0:
        return Achieved(None, "A variation has no units yet.", ns, snap.pk)
    value: float
    if isinstance(c_sum, int | float) and isinstance(c_ss, int | float) and c_n > 1:
        mean = c_sum / c_n
        kind = control.get("type")
        binary = kind == "proportion" or (kind is None and abs(c_ss - c_sum) < 1e-9)
        if binary and not 0 < mean < 1:
            return Achieved(None, "The control's rate is 0 or 1: not enough data yet.", ns, snap.pk)
        if binary:
            value = float(pw.power_proportions(n_eff, mean, mde, alpha=alpha, relative=True))
        else:
            var = (c_ss - c_sum**2 / c_n) / (c_n - 1)
            if var <= 0 or mean == 0:
                return Achieved(None, "The control has no variance (or a zero mean) yet.", ns, snap.pk)
            value = float(
                pw.power_means(
                    n_eff, mde, math.sqrt(var), alpha=alpha, relative=True, baseline_mean=abs(mean)
                )
            )
    else:
        rate = experiment.hypothesis.baseline
        if rate is None or not 0 < rate < 1:
            return Achieved(
                None,
                "Power so far needs the control's sums in the snapshot or a baseline rate between 0 and 1.",
                ns,
                snap.pk,
            )
        value = float(pw.power_proportions(n_eff, rate, mde, alpha=alpha, relative=True))
    if not math.isfinite(value):
        return Achieved(None, "Not enough data to compute power yet.", ns, snap.pk)
    return Achieved(value, "", ns, snap.pk)


def achieved_power(membership: Membership, experiment_id: int) -> float | None:
    """Power achieved so far, or None (see `achieved_power_detail` for the reason)."""
    return achieved_power_detail(membership, experiment_id).power
