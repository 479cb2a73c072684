"""One call from a table of per-variation summaries to results with plain-language sentences.

``analyze(table)`` takes rows (or columns) with ``metric``, ``variation``, ``n``, ``sum`` and
``sum_squares`` per metric x variation, and optionally:

* ``denominator_sum``, ``denominator_sum_squares``, ``main_denominator_sum_product`` — a ratio metric
  (delta method; also cluster-randomised metrics, with per-cluster sums and ``n`` = clusters);
* ``covariate_sum``, ``covariate_sum_squares``, ``main_covariate_sum_product`` — a pre-period
  covariate, used when ``cuped=True``;
* ``quantile_level``, ``quantile``, ``quantile_lower``, ``quantile_upper`` (optional
  ``quantile_nstar``) — a quantile metric from quantile summaries (see :mod:`truenorth.stats.quantile`;
  ``n`` is the number of values, ``sum``/``sum_squares`` may be empty);
* ``type`` — ``mean``, ``proportion``, ``ratio`` or ``quantile`` (otherwise: quantile or ratio when
  those columns are filled, proportion when ``sum == sum_squares ≤ n`` in every variation, else mean);
* ``inverse`` — true when less is better; ``users`` and ``weight`` — assignment counts and planned
  allocation for the sample-ratio-mismatch check (default: ``n`` and equal weights).

The control is the variation named ``control`` (any case), else the first variation in the table.
Each metric's comparisons are computed vectorised per kind; corrections (Holm / BH) run across every
comparison in the table and both corrected and uncorrected numbers are kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from truenorth.stats import bayesian, corrections, frequentist, quantile, sequential, srm
from truenorth.stats.summary import Comparison, CupedStats, FloatArray, MeanStats, RatioStats

Method = Literal["frequentist", "sequential", "bayesian"]
Correction = Literal["holm", "bh"]
METHODS: tuple[str, ...] = ("frequentist", "sequential", "bayesian")
CORRECTIONS: tuple[str, ...] = ("holm", "bh")
REQUIRED = ("metric", "variation", "n", "sum", "sum_squares")
RATIO_COLUMNS = ("denominator_sum", "denominator_sum_squares", "main_denominator_sum_product")
CUPED_COLUMNS = ("covariate_sum", "covariate_sum_squares", "main_covariate_sum_product")
QUANTILE_COLUMNS = ("quantile_level", "quantile", "quantile_lower", "quantile_upper")
NUMERIC = (
    "n",
    "sum",
    "sum_squares",
    *RATIO_COLUMNS,
    *CUPED_COLUMNS,
    *QUANTILE_COLUMNS,
    "quantile_nstar",
    "users",
    "weight",
)
CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


class TableError(ValueError):
    """The summary table cannot be analysed; ``column`` names the culprit."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"{column}: {message}")
        self.column = column
        self.message = message


@dataclass(frozen=True)
class ResultRow:
    """One treatment-vs-control comparison of one metric. Numbers are NaN when not enough data.

    ``p_value`` is the uncorrected p-value of the reported effect (relative when the control mean is
    non-zero); ``p_value_adjusted`` and ``ci_*_adjusted`` the corrected ones (equal to the
    uncorrected when no correction applies). Bayesian rows have no p-value; they carry
    ``chance_to_win`` (a posterior probability) and the risks (expected loss) instead, and their
    ``significant`` is always False (it means "p < alpha after correction").
    """

    metric: str
    variation: str
    control: str
    kind: str
    method: str
    scale: str
    n_control: float
    n_treatment: float
    control_mean: float
    treatment_mean: float
    effect: float
    ci_low: float
    ci_high: float
    effect_relative: float
    ci_low_relative: float
    ci_high_relative: float
    p_value: float
    p_value_adjusted: float
    ci_low_adjusted: float
    ci_high_adjusted: float
    chance_to_win: float
    risk_control: float
    risk_treatment: float
    significant: bool
    alpha: float
    correction: str | None
    not_enough_data: bool
    reason: str
    srm_p_value: float
    srm_mismatch: bool
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: NaN becomes None."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


@dataclass
class _Row:
    metric: str
    variation: str
    values: dict[str, float]
    type: str
    inverse: bool


def _rows(table: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(table, Mapping):
        lengths = {len(v) for v in table.values()}
        if len(lengths) > 1:
            raise TableError("table", "columns have different lengths")
        n = lengths.pop() if lengths else 0
        return [{k: table[k][i] for k in table} for i in range(n)]
    return [dict(r) for r in table]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _number(value: Any, column: str, line: int) -> float:
    if _missing(value):
        return math.nan
    if isinstance(value, bool):
        raise TableError(column, f"row {line}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TableError(column, f"row {line}: expected a number, got {value!r}") from None


def _truthy(value: Any) -> bool:
    if _missing(value):
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "t")
    return bool(value)


def parse_table(table: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]) -> list[_Row]:
    """Validate and normalise the table; :class:`TableError` names the bad column."""
    rows = _rows(table)
    if not rows:
        raise TableError("table", "no rows")
    columns = set().union(*(r.keys() for r in rows))
    for col in REQUIRED:
        if col not in columns:
            raise TableError(col, "required column is missing")
    out: list[_Row] = []
    seen: set[tuple[str, str]] = set()
    for i, r in enumerate(rows, start=1):
        if _missing(r.get("metric")):
            raise TableError("metric", f"row {i}: empty metric name")
        if _missing(r.get("variation")):
            raise TableError("variation", f"row {i}: empty variation name")
        metric, variation = str(r["metric"]), str(r["variation"])
        if (metric, variation) in seen:
            raise TableError("variation", f"row {i}: metric {metric!r} has variation {variation!r} twice")
        seen.add((metric, variation))
        values = {c: _number(r.get(c), c, i) for c in NUMERIC if c in r}
        kind = "" if _missing(r.get("type")) else str(r["type"]).strip().lower()
        if kind not in ("", "mean", "proportion", "ratio", "quantile"):
            raise TableError(
                "type", f"row {i}: unknown type {kind!r}; use mean, proportion, ratio or quantile"
            )
        out.append(_Row(metric, variation, values, kind, _truthy(r.get("inverse"))))
    return out


def _control_name(rows: list[_Row]) -> str:
    for r in rows:
        if r.variation.strip().lower() == "control":
            return r.variation
    return rows[0].variation


def _kind(rows: list[_Row]) -> str:
    declared = {r.type for r in rows if r.type}
    if len(declared) > 1:
        raise TableError("type", f"metric {rows[0].metric!r} has different types {sorted(declared)}")
    if declared:
        return declared.pop()
    if all(not math.isnan(r.values.get("quantile", math.nan)) for r in rows):
        return "quantile"
    if all(not math.isnan(r.values.get("denominator_sum", math.nan)) for r in rows):
        return "ratio"
    if all(
        r.values["sum"] == r.values["sum_squares"] and 0 <= r.values["sum"] <= r.values["n"] for r in rows
    ):
        return "proportion"
    return "mean"


def _col(rows: list[_Row], name: str) -> FloatArray:
    return np.array([r.values.get(name, math.nan) for r in rows], dtype=np.float64)


def _mean_stats(rows: list[_Row], proportion: bool) -> MeanStats:
    n, s = _col(rows, "n"), _col(rows, "sum")
    if proportion:
        return MeanStats.proportion(n, s)
    return MeanStats(n, s, _col(rows, "sum_squares"))


def _compare(
    kind: str,
    cuped: bool,
    control: list[_Row],
    treatment: list[_Row],
    method: str,
    alpha: float,
    inverse: bool,
    prior: bayesian.GaussianPrior,
) -> Comparison:
    if kind == "ratio":
        a, b = (
            RatioStats(
                _col(rs, "n"),
                _col(rs, "sum"),
                _col(rs, "sum_squares"),
                _col(rs, "denominator_sum"),
                _col(rs, "denominator_sum_squares"),
                _col(rs, "main_denominator_sum_product"),
            )
            for rs in (control, treatment)
        )
        if method == "bayesian":
            return bayesian.ratio(a, b, prior=prior, alpha=alpha, inverse=inverse)
        if method == "sequential":
            return sequential.ratio(a, b, alpha=alpha)
        return frequentist.ratio(a, b, alpha=alpha)
    if kind == "quantile":
        qa, qb = (
            quantile.QuantileStats(
                _col(rs, "n"),
                _col(rs, "quantile_level"),
                _col(rs, "quantile"),
                _col(rs, "quantile_lower"),
                _col(rs, "quantile_upper"),
                np.where(np.isnan(_col(rs, "quantile_nstar")), _col(rs, "n"), _col(rs, "quantile_nstar")),
            )
            for rs in (control, treatment)
        )
        if method == "bayesian":
            return quantile.bayes(qa, qb, prior=prior, alpha=alpha, inverse=inverse)
        if method == "sequential":
            return quantile.sequential_welch(qa, qb, alpha=alpha)
        return quantile.welch(qa, qb, alpha=alpha)
    proportion = kind == "proportion"
    if cuped:
        c, t = (
            CupedStats(
                _mean_stats(rs, proportion),
                MeanStats(_col(rs, "n"), _col(rs, "covariate_sum"), _col(rs, "covariate_sum_squares")),
                _col(rs, "main_covariate_sum_product"),
            )
            for rs in (control, treatment)
        )
        if method == "bayesian":
            return bayesian.cuped(c, t, prior=prior, alpha=alpha, inverse=inverse)
        if method == "sequential":
            return sequential.cuped(c, t, alpha=alpha)
        return frequentist.cuped(c, t, alpha=alpha)
    ma, mb = _mean_stats(control, proportion), _mean_stats(treatment, proportion)
    if method == "bayesian":
        return bayesian.means(ma, mb, prior=prior, alpha=alpha, inverse=inverse)
    if method == "sequential":
        return sequential.welch(ma, mb, alpha=alpha)
    return frequentist.welch(ma, mb, alpha=alpha)


def _label(variation: str) -> str:
    return f"Variant {variation}" if len(variation) <= 3 else variation


def _pct(x: float) -> str:
    v = x * 100
    if v == 0 or abs(v) >= 0.1:
        return f"{v:.1f}%"
    return f"{v:.2g}%"


def _num(x: float) -> str:
    return f"{x:.4g}"


def _p(p: float) -> str:
    return "p < 0.0001" if p < 0.0001 else f"p = {p:.2g}" if p < 0.01 else f"p = {p:.3g}"


def sentence(row: ResultRow) -> str:
    """The result in plain language (never calling a chance to win a p-value)."""
    who = _label(row.variation)
    if row.not_enough_data:
        text = f"{who} vs {row.control} on {row.metric}: not enough data: {row.reason}."
    else:
        rel = row.scale == "relative"
        est = row.effect_relative if rel else row.effect
        fmt = _pct if rel else _num
        level = f"{(1 - row.alpha) * 100:g}%"
        if row.method.startswith("bayesian"):
            lo, hi = (row.ci_low_relative, row.ci_high_relative) if rel else (row.ci_low, row.ci_high)
            verb = "increased" if est > 0 else "decreased" if est < 0 else "did not change"
            amount = f" by {fmt(abs(est))}" if est != 0 else ""
            text = (
                f"{who} {verb} {row.metric}{amount} ({level} credible interval {fmt(lo)} to {fmt(hi)}); "
                f"chance to beat {row.control}: {row.chance_to_win * 100:.1f}% (a posterior probability, "
                f"not a p-value); expected loss if chosen: {fmt(row.risk_treatment)}."
            )
        else:
            lo, hi = row.ci_low_adjusted, row.ci_high_adjusted
            kind = "always-valid CI" if row.method.startswith("sequential") else "CI"
            corr = f", {CORRECTION_NAMES[row.correction]}-corrected" if row.correction else ""
            p_text = _p(row.p_value_adjusted) + corr
            if row.significant:
                verb = "increased" if est > 0 else "decreased"
                text = f"{who} {verb} {row.metric} by {fmt(abs(est))} ({level} {kind} {fmt(lo)} to {fmt(hi)}; {p_text})."
            else:
                text = (
                    f"No significant difference: {who} changed {row.metric} by {fmt(est)} "
                    f"({level} {kind} {fmt(lo)} to {fmt(hi)}; {p_text})."
                )
            if not rel:
                text += " (Absolute change: the control mean is zero, so there is no relative effect.)"
    if row.srm_mismatch:
        text += f" Warning: sample ratio mismatch (p = {row.srm_p_value:.2g}): the split is not as planned."
    return text


def check_srm(rows: list[_Row], control: str) -> tuple[float, bool, list[str]]:
    """SRM on the assignment counts per variation (``users`` or, failing that, the largest ``n``)."""
    counts: dict[str, float] = {}
    weights: dict[str, float] = {}
    for r in rows:
        users = r.values.get("users", math.nan)
        value = users if not math.isnan(users) else r.values["n"]
        counts[r.variation] = max(counts.get(r.variation, 0.0), value)
        w = r.values.get("weight", math.nan)
        if not math.isnan(w):
            weights[r.variation] = w
    names = [control, *(v for v in counts if v != control)]
    if len(names) < 2:
        return math.nan, False, names
    obs = [counts[v] for v in names]
    planned = [weights.get(v, 1.0) for v in names] if weights else None
    res = srm.check(obs, planned)
    return float(res.p_value), bool(res.mismatch), names


def analyze(
    summary_table: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    *,
    method: Method = "frequentist",
    cuped: bool = False,
    correction: Correction | None = "holm",
    alpha: float = 0.05,
    prior: bayesian.GaussianPrior = bayesian.FLAT,
) -> list[ResultRow]:
    """Compare every variation with the control for every metric. See the module docstring."""
    if method not in METHODS:
        raise TableError("method", f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if correction is not None and correction not in CORRECTIONS:
        raise TableError("correction", f"unknown correction {correction!r}; use holm, bh or none")
    if not 0 < alpha < 1:
        raise TableError("alpha", f"must be between 0 and 1, got {alpha}")
    rows = parse_table(summary_table)
    control = _control_name(rows)
    srm_p, srm_flag, variations = check_srm(rows, control)
    by_metric: dict[str, dict[str, _Row]] = {}
    for r in rows:
        by_metric.setdefault(r.metric, {})[r.variation] = r

    # Group comparisons by (kind, cuped, inverse) so each group is one vectorised call.
    groups: dict[tuple[str, bool, bool], list[tuple[str, str, _Row | None, _Row | None]]] = {}
    for metric, per_var in by_metric.items():
        kind = _kind(list(per_var.values()))
        use_cuped = (
            cuped
            and kind not in ("ratio", "quantile")
            and all(
                not math.isnan(r.values.get(c, math.nan)) for r in per_var.values() for c in CUPED_COLUMNS
            )
        )
        inverse = any(r.inverse for r in per_var.values())
        for v in variations[1:]:
            groups.setdefault((kind, use_cuped, inverse), []).append(
                (metric, v, per_var.get(control), per_var.get(v))
            )

    computed: list[tuple[str, str, str, Comparison, int, str, float, float]] = []
    for (kind, use_cuped, inverse), items in groups.items():
        ok = [(m, v, c, t) for m, v, c, t in items if c is not None and t is not None]
        controls = [c for _, _, c, t in items if c is not None and t is not None]
        treatments = [t for _, _, c, t in items if c is not None and t is not None]
        if ok:
            comp = _compare(
                kind,
                use_cuped,
                controls,
                treatments,
                method,
                alpha,
                inverse,
                prior,
            )
            label = f"{kind} (CUPED)" if use_cuped else kind
            for i, (m, v, _c, _t) in enumerate(ok):
                computed.append(
                    (m, v, label, comp, i, "", controls[i].values["n"], treatments[i].values["n"])
                )
        for m, v, c, t in items:
            if c is None or t is None:
                missing = control if c is None else v
                computed.append(
                    (
                        m,
                        v,
                        kind,
                        _EMPTY,
                        -1,
                        f"no row for variation {missing!r} in this metric",
                        math.nan if c is None else c.values["n"],
                        math.nan if t is None else t.values["n"],
                    )
                )

    # Reported scale and its p-value per comparison; corrections across the whole table.
    def pick(comp: Comparison, i: int) -> tuple[str, float, float, float, float]:
        rel_ok = not math.isnan(float(comp.effect_relative[i]))
        if rel_ok:
            p = comp.p_value_relative if comp.p_value_relative is not None else comp.p_value
            return "relative", float(p[i]), float(comp.effect_relative[i]), float(comp.se_relative[i]), 1.0
        return "absolute", float(comp.p_value[i]), float(comp.effect[i]), float(comp.se[i]), 0.0

    picks = [
        pick(c, i) if i >= 0 else ("relative", math.nan, math.nan, math.nan, 0.0)
        for _, _, _, c, i, _, _, _ in computed
    ]
    p_all = np.array([p[1] for p in picks], dtype=np.float64)
    use_correction = correction if method != "bayesian" else None
    if use_correction is not None and p_all.size:
        p_adj = corrections.adjust(p_all, use_correction)
        m_family = np.full(p_all.shape, float(np.sum(~np.isnan(p_all))))
        alpha_star = corrections.implied_alpha(p_all, p_adj, np.full(p_all.shape, alpha), m_family)
    else:
        p_adj, alpha_star = p_all, np.full(p_all.shape, alpha)

    out: list[ResultRow] = []
    for k, ((metric, variation, label, comp, i, why, n_c, n_t), (scale, p, est, se, _)) in enumerate(
        zip(computed, picks, strict=True)
    ):
        out.append(
            _row(
                (metric, variation, control, label),
                comp,
                i,
                why,
                (scale, p, float(p_adj[k]), float(alpha_star[k]), est, se),
                (n_c, n_t),
                method,
                use_correction,
                alpha,
                (srm_p, srm_flag),
            )
        )
    order = {m: j for j, m in enumerate(by_metric)}
    vorder = {v: j for j, v in enumerate(variations)}
    out.sort(key=lambda r: (order[r.metric], vorder.get(r.variation, 0)))
    return out


def _nan_comparison() -> Comparison:
    nan = np.full(0, np.nan)
    return Comparison(
        nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, "none", np.zeros(0, bool), np.full(0, "")
    )


_EMPTY = _nan_comparison()


def _get(x: FloatArray | None, i: int) -> float:
    return math.nan if x is None or i < 0 else float(x[i])


def _row(
    names: tuple[str, str, str, str],
    comp: Comparison,
    i: int,
    why: str,
    numbers: tuple[str, float, float, float, float, float],
    counts: tuple[float, float],
    method: str,
    correction: str | None,
    alpha: float,
    srm_result: tuple[float, bool],
) -> ResultRow:
    nan = math.nan
    metric, variation, control, kind = names
    scale, p, p_adj, alpha_star, est, se = numbers
    srm_p, srm_flag = srm_result
    not_enough = i < 0 or bool(comp.not_enough_data[i])
    reason = why if i < 0 else str(comp.reason[i])
    lo = _get(comp.ci_low_relative if scale == "relative" else comp.ci_low, i)
    hi = _get(comp.ci_high_relative if scale == "relative" else comp.ci_high, i)
    lo_adj, hi_adj = lo, hi
    if correction is not None and not not_enough and not math.isnan(p):
        if method == "sequential":
            w = float(
                sequential.half_width(se, comp.extra["n_total"][i], alpha_star, comp.extra["tuning"][i])
            )
            lo_adj, hi_adj = est - w, est + w
        elif comp.df is not None:
            a, b = frequentist.t_interval(np.array(est), np.array(se), np.array(comp.df[i]), alpha_star)
            lo_adj, hi_adj = float(a), float(b)
    if method == "bayesian":
        significant = False
    else:
        significant = (not not_enough) and not math.isnan(p_adj) and p_adj < alpha
    row = ResultRow(
        metric=metric,
        variation=variation,
        control=control,
        kind=kind,
        method=comp.method if i >= 0 else method,
        scale=scale,
        n_control=counts[0],
        n_treatment=counts[1],
        control_mean=_get(comp.control_mean, i),
        treatment_mean=_get(comp.treatment_mean, i),
        effect=_get(comp.effect, i),
        ci_low=_get(comp.ci_low, i),
        ci_high=_get(comp.ci_high, i),
        effect_relative=_get(comp.effect_relative, i),
        ci_low_relative=_get(comp.ci_low_relative, i),
        ci_high_relative=_get(comp.ci_high_relative, i),
        p_value=nan if method == "bayesian" else p,
        p_value_adjusted=nan if method == "bayesian" else p_adj,
        ci_low_adjusted=lo_adj,
        ci_high_adjusted=hi_adj,
        chance_to_win=_get(comp.chance_to_win, i),
        risk_control=_get(comp.risk_control, i),
        risk_treatment=_get(comp.risk_treatment, i),
        significant=significant,
        alpha=alpha,
        correction=correction,
        not_enough_data=not_enough,
        reason=reason,
        srm_p_value=srm_p,
        srm_mismatch=srm_flag,
        sentence="",
    )
    return _with_sentence(row)


def _with_sentence(row: ResultRow) -> ResultRow:
    d = asdict(row)
    d["sentence"] = sentence(row)
    return ResultRow(**d)
