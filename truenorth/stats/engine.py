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

* ``role`` — ``primary``, ``secondary``, ``guardrail`` (or any label): the correction family.

The control is the variation named ``control`` (any case), else the first variation in the table.
The whole table is analysed as columns: one vectorised call per (kind, CUPED, inverse) group, never a
Python loop over the comparisons' arithmetic (10,000 metrics in tens of milliseconds; see
``benchmarks/stats_engine.py``).

Scales and p-values (one rule for the CLI, the API and the web page): every row carries both scales —
the absolute effect (treatment - control) and the relative one ((treatment - control) / |control|) —
each with its own p-value, corrected p-value and corrected interval (Bayesian: its own chance to win
and risks). A p-value always belongs to the interval of the same scale and the same correction. The
*reported* scale (``scale``; the fields without a scale in their name, and the sentence) is relative
when the control mean is non-zero, else absolute.

Corrections (Holm / BH, ``correction``) run within a family: by default (``family="role"``) each role
is its own family, so the primary metric's decision is not diluted by secondary and guardrail metrics;
``family="all"`` corrects across every comparison in the table (rows without a role form one family).
Corrected and uncorrected numbers are both kept; :func:`correction_summary` says what was applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from truenorth.stats import bayesian, corrections, frequentist, quantile, sequential, srm
from truenorth.stats.summary import BoolArray, Comparison, CupedStats, FloatArray, MeanStats, RatioStats
from truenorth.stats.table import CUPED_COLUMNS as CUPED_COLUMNS  # the table's columns, re-exported
from truenorth.stats.table import NUMERIC as NUMERIC
from truenorth.stats.table import QUANTILE_COLUMNS as QUANTILE_COLUMNS
from truenorth.stats.table import RATIO_COLUMNS as RATIO_COLUMNS
from truenorth.stats.table import REQUIRED as REQUIRED
from truenorth.stats.table import Table
from truenorth.stats.table import TableError as TableError
from truenorth.stats.table import parse_table as parse_table

Method = Literal["frequentist", "sequential", "bayesian"]
Correction = Literal["holm", "bh"]
Family = Literal["role", "all"]
METHODS: tuple[str, ...] = ("frequentist", "sequential", "bayesian")
CORRECTIONS: tuple[str, ...] = ("holm", "bh")
FAMILIES: tuple[str, ...] = ("role", "all")
CORRECTION_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


@dataclass(frozen=True)
class ResultRow:
    """One treatment-vs-control comparison of one metric. Numbers are NaN when not enough data.

    ``p_value`` is the uncorrected p-value of the reported effect (``scale``: relative when the
    control mean is non-zero); ``p_value_adjusted`` and ``ci_*_adjusted`` the corrected ones (equal to
    the uncorrected when no correction applies). Both scales are always there too:
    ``p_value_absolute[_adjusted]`` with ``ci_*`` / ``ci_*_absolute_adjusted`` and
    ``p_value_relative[_adjusted]`` with ``ci_*_relative`` / ``ci_*_relative_adjusted``; a p-value's
    interval is the one of the same scale and correction (it excludes 0 exactly when p < alpha).
    Bayesian rows have no p-value; they carry ``chance_to_win`` (a posterior probability) and the
    risks (expected loss) of the reported scale and ``chance_to_win_absolute`` /
    ``chance_to_win_relative`` … of both, and their ``significant`` is always False (it means
    "p < alpha after correction"). ``family`` is the correction family (a role, or ``all``) and
    ``family_size`` the number of p-values corrected together (0 without a correction).
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
    p_value_absolute: float
    p_value_absolute_adjusted: float
    ci_low_absolute_adjusted: float
    ci_high_absolute_adjusted: float
    p_value_relative: float
    p_value_relative_adjusted: float
    ci_low_relative_adjusted: float
    ci_high_relative_adjusted: float
    chance_to_win_absolute: float
    chance_to_win_relative: float
    risk_control_absolute: float
    risk_control_relative: float
    risk_treatment_absolute: float
    risk_treatment_relative: float
    family: str
    family_size: int

    @property
    def sentence(self) -> str:
        """The result in plain language (:func:`sentence`), written when first asked for."""
        got = self.__dict__.get("_sentence")
        if got is None:
            got = sentence(self)
            self.__dict__["_sentence"] = got  # after sentence(): the row's fields are in place
        return str(got)

    @classmethod
    def _shared(cls, columns: dict[str, Any], index: int) -> ResultRow:
        """Row ``index`` of ``columns`` (field name -> a list with one value per row, or one value for
        every row) without the frozen dataclass's per-field ``__init__``: the row's fields are copied
        out of the shared columns when one is first asked for (10,000 rows in a few milliseconds
        instead of ~50)."""
        row = object.__new__(cls)
        object.__setattr__(row, "__dict__", {"_columns": columns, "_index": index})
        return row

    if not TYPE_CHECKING:  # mypy keeps checking attribute names against the fields

        def __getattr__(self, name: str) -> Any:
            d = self.__dict__
            columns = d.get("_columns")
            if columns is None or name not in columns:
                raise AttributeError(name)
            i = d["_index"]
            full = {k: (v[i] if isinstance(v, list) else v) for k, v in columns.items()}
            object.__setattr__(self, "__dict__", full)
            return full[name]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: NaN becomes None; with the sentence."""
        out = {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in ((name, getattr(self, name)) for name in FIELD_NAMES)
        }
        out["sentence"] = self.sentence
        return out


FIELD_NAMES = tuple(f.name for f in fields(ResultRow))
#: The numeric fields analyze fills from arrays, in this order.
_ARRAY_FIELDS = (
    "control_mean",
    "treatment_mean",
    "effect",
    "ci_low",
    "ci_high",
    "effect_relative",
    "ci_low_relative",
    "ci_high_relative",
    "p_value",
    "p_value_adjusted",
    "ci_low_adjusted",
    "ci_high_adjusted",
    "chance_to_win",
    "risk_control",
    "risk_treatment",
    "p_value_absolute",
    "p_value_absolute_adjusted",
    "ci_low_absolute_adjusted",
    "ci_high_absolute_adjusted",
    "p_value_relative",
    "p_value_relative_adjusted",
    "ci_low_relative_adjusted",
    "ci_high_relative_adjusted",
    "chance_to_win_absolute",
    "chance_to_win_relative",
    "risk_control_absolute",
    "risk_control_relative",
    "risk_treatment_absolute",
    "risk_treatment_relative",
)


def _codes(names: list[str]) -> tuple[list[str], npt.NDArray[np.intp]]:
    """Distinct names in order of first appearance and each element's index into them."""
    distinct = list(dict.fromkeys(names))
    index = {x: i for i, x in enumerate(distinct)}
    return distinct, np.fromiter(map(index.__getitem__, names), dtype=np.intp, count=len(names))


def _per_group_all(mask: BoolArray, codes: npt.NDArray[np.intp], groups: int) -> BoolArray:
    return np.asarray(np.bincount(codes, weights=~mask, minlength=groups) == 0, dtype=np.bool_)


KINDS = ("mean", "proportion", "ratio", "quantile")


def _kinds(t: Table, mcode: npt.NDArray[np.intp], metrics: list[str]) -> npt.NDArray[np.intp]:
    """Each metric's kind as an index into KINDS (declared, else guessed from the columns)."""
    m = len(metrics)
    kind = np.zeros(m, dtype=np.intp)
    proportion = _per_group_all(
        (t.col("sum") == t.col("sum_squares")) & (t.col("sum") >= 0) & (t.col("sum") <= t.col("n")), mcode, m
    )
    kind[proportion] = 1
    kind[_per_group_all(~np.isnan(t.col("denominator_sum")), mcode, m)] = 2
    kind[_per_group_all(~np.isnan(t.col("quantile")), mcode, m)] = 3
    declared: dict[int, set[str]] = {}
    for code, k in set(zip(mcode.tolist(), t.type, strict=True)):
        if k:
            declared.setdefault(code, set()).add(k)
    for code in sorted(declared):
        ks = declared[code]
        if len(ks) > 1:
            raise TableError("type", f"metric {metrics[code]!r} has different types {sorted(ks)}")
        kind[code] = KINDS.index(ks.pop())
    return kind


def _control_name(variations: list[str]) -> str:
    for v in variations:
        if v.strip().lower() == "control":
            return v
    return variations[0]


def check_srm(
    t: Table, vcode: npt.NDArray[np.intp], variations: list[str], control: str
) -> tuple[float, bool, list[str]]:
    """SRM on the assignment counts per variation (``users`` or, failing that, the largest ``n``)."""
    users, n = t.col("users"), t.col("n")
    value = np.where(np.isnan(users), n, users)
    counts = np.zeros(len(variations))
    np.maximum.at(counts, vcode, np.where(np.isnan(value), 0.0, value))
    w = t.col("weight")
    weights = {variations[vcode[i]]: float(w[i]) for i in np.flatnonzero(~np.isnan(w))}
    names = [control, *(v for v in variations if v != control)]
    if len(names) < 2:
        return math.nan, False, names
    index = {v: j for j, v in enumerate(variations)}
    obs = [float(counts[index[v]]) for v in names]
    planned = [weights.get(v, 1.0) for v in names] if weights else None
    res = srm.check(obs, planned)
    return float(res.p_value), bool(res.mismatch), names


def _compare(
    kind: str,
    cuped: bool,
    t: Table,
    control: npt.NDArray[np.intp],
    treatment: npt.NDArray[np.intp],
    method: str,
    alpha: float,
    inverse: bool,
    prior: bayesian.GaussianPrior,
) -> Comparison:
    def col(name: str, rows: npt.NDArray[np.intp]) -> FloatArray:
        return np.asarray(t.col(name)[rows], dtype=np.float64)

    def mean_stats(rows: npt.NDArray[np.intp], proportion: bool) -> MeanStats:
        if proportion:
            return MeanStats.proportion(col("n", rows), col("sum", rows))
        return MeanStats(col("n", rows), col("sum", rows), col("sum_squares", rows))

    if kind == "ratio":
        a, b = (
            RatioStats(
                col("n", rs),
                col("sum", rs),
                col("sum_squares", rs),
                col("denominator_sum", rs),
                col("denominator_sum_squares", rs),
                col("main_denominator_sum_product", rs),
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
                col("n", rs),
                col("quantile_level", rs),
                col("quantile", rs),
                col("quantile_lower", rs),
                col("quantile_upper", rs),
                np.where(np.isnan(col("quantile_nstar", rs)), col("n", rs), col("quantile_nstar", rs)),
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
        c, tr = (
            CupedStats(
                mean_stats(rs, proportion),
                MeanStats(col("n", rs), col("covariate_sum", rs), col("covariate_sum_squares", rs)),
                col("main_covariate_sum_product", rs),
            )
            for rs in (control, treatment)
        )
        if method == "bayesian":
            return bayesian.cuped(c, tr, prior=prior, alpha=alpha, inverse=inverse)
        if method == "sequential":
            return sequential.cuped(c, tr, alpha=alpha)
        return frequentist.cuped(c, tr, alpha=alpha)
    ma, mb = mean_stats(control, proportion), mean_stats(treatment, proportion)
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


format_p_value = _p  # how every sentence, CLI line and page (the `p_value` filter) writes a p-value


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
            # Named only when the p-value was corrected with others (a family of one is left as it is).
            corr = (
                f", {CORRECTION_NAMES[row.correction]}-corrected"
                if row.correction and row.family_size > 1
                else ""
            )
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
        text += f" Warning: sample ratio mismatch ({_p(row.srm_p_value)}): the split is not as planned."
    return text


ROLE_ORDER = ("primary", "secondary", "guardrail")


def correction_summary(rows: Sequence[ResultRow]) -> str:
    """What was applied, in words: "Holm across 3 secondary metrics; primary uncorrected (one metric)"."""
    if not rows:
        return ""
    if rows[0].method.startswith("bayesian"):
        return "No correction: Bayesian chances to win are not p-values."
    if rows[0].correction is None:
        return "No correction: each p-value on its own."
    families: dict[str, list[ResultRow]] = {}
    for r in rows:
        families.setdefault(r.family, []).append(r)
    order = sorted(families, key=lambda f: (ROLE_ORDER.index(f) if f in ROLE_ORDER else len(ROLE_ORDER), f))
    parts = []
    for f in order:
        tested = [r for r in families[f] if not math.isnan(r.p_value)]
        metrics = len({r.metric for r in tested})
        comparisons = len(tested)
        name = f"{f} " if f and f != "all" else ""
        if comparisons == 0:
            parts.append(f"{name}no p-values (not enough data)".strip())
        elif comparisons == 1:
            parts.append(f"{name}uncorrected (one metric)")
        else:
            things = (
                f"{metrics} {name}metrics"
                if comparisons == metrics
                else f"{comparisons} {name}comparisons ({metrics} metric{'s' if metrics != 1 else ''} x "
                f"{comparisons // max(metrics, 1)} variations)"
            )
            parts.append(f"{CORRECTION_NAMES[rows[0].correction]} across {things}")
    text = "; ".join(parts)
    return text[0].upper() + text[1:]


def analyze(
    summary_table: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
    *,
    method: Method = "frequentist",
    cuped: bool = False,
    correction: Correction | None = "holm",
    family: Family = "role",
    alpha: float = 0.05,
    prior: bayesian.GaussianPrior = bayesian.FLAT,
) -> list[ResultRow]:
    """Compare every variation with the control for every metric. See the module docstring."""
    if method not in METHODS:
        raise TableError("method", f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if correction is not None and correction not in CORRECTIONS:
        raise TableError("correction", f"unknown correction {correction!r}; use holm, bh or none")
    if family not in FAMILIES:
        raise TableError("family", f"unknown family {family!r}; use role or all")
    if not 0 < alpha < 1:
        raise TableError("alpha", f"must be between 0 and 1, got {alpha}")
    t = parse_table(summary_table)
    metrics, mcode = _codes(t.metric)
    seen_variations, vcode = _codes(t.variation)
    control = _control_name(seen_variations)
    srm_p, srm_flag, variations = check_srm(t, vcode, seen_variations, control)
    n_metrics = len(metrics)
    if len(variations) < 2:
        return []

    # Per metric: kind, CUPED, inverse, role (any row's role; the first non-empty one wins).
    kind = _kinds(t, mcode, metrics)
    has_cov = np.ones(len(t.metric), dtype=np.bool_)
    for c in CUPED_COLUMNS:
        has_cov &= ~np.isnan(t.col(c))
    use_cuped = cuped & (kind <= 1) & _per_group_all(has_cov, mcode, n_metrics)
    inverse = np.bincount(mcode, weights=t.inverse, minlength=n_metrics) > 0
    metric_role = [""] * n_metrics
    for code, r in zip(mcode.tolist(), t.role, strict=True):
        if r and not metric_role[code]:
            metric_role[code] = r

    # Every (metric, treatment) pair, metric-major then in variation order; row index or -1.
    index = np.full((n_metrics, len(seen_variations)), -1, dtype=np.intp)
    index[mcode, vcode] = np.arange(len(t.metric))
    vpos = {v: j for j, v in enumerate(seen_variations)}
    treatments = np.array([vpos[v] for v in variations[1:]], dtype=np.intp)
    k_metric = np.repeat(np.arange(n_metrics), treatments.size)
    k_var = np.tile(treatments, n_metrics)
    c_row, t_row = index[k_metric, vpos[control]], index[k_metric, k_var]
    present = (c_row >= 0) & (t_row >= 0)
    size = k_metric.size

    nan = np.full(size, np.nan)
    out: dict[str, FloatArray] = {
        name: nan.copy()
        for name in (
            "control_mean", "treatment_mean", "effect", "ci_low", "ci_high", "effect_relative",
            "ci_low_relative", "ci_high_relative", "se", "se_relative", "p_absolute", "p_relative", "df",
            "n_total", "rho", "ctw_relative", "ctw_absolute", "risk_control_relative",
            "risk_control_absolute", "risk_treatment_relative", "risk_treatment_absolute",
        )
    }  # fmt: skip
    not_enough = ~present
    reason = np.full(size, "", dtype=object)
    method_name = np.full(size, method, dtype=object)
    n_c = np.where(c_row >= 0, t.col("n")[c_row], np.nan)
    n_t = np.where(t_row >= 0, t.col("n")[t_row], np.nan)
    missing_c = c_row < 0
    reason[missing_c] = f"no row for variation {control!r} in this metric"
    for j in np.flatnonzero(~missing_c & (t_row < 0)).tolist():
        reason[j] = f"no row for variation {seen_variations[k_var[j]]!r} in this metric"

    # One vectorised call per (kind, CUPED, inverse) group.
    group = kind[k_metric] * 4 + use_cuped[k_metric] * 2 + inverse[k_metric]
    for g in np.unique(group[present]).tolist():
        sel = np.flatnonzero(present & (group == g))
        k, cup, inv = KINDS[g // 4], bool(g & 2), bool(g & 1)
        comp = _compare(k, cup, t, c_row[sel], t_row[sel], method, alpha, inv, prior)
        p_rel = comp.p_value_relative if comp.p_value_relative is not None else comp.p_value
        pairs: dict[str, FloatArray | None] = {
            "control_mean": comp.control_mean,
            "treatment_mean": comp.treatment_mean,
            "effect": comp.effect,
            "ci_low": comp.ci_low,
            "ci_high": comp.ci_high,
            "effect_relative": comp.effect_relative,
            "ci_low_relative": comp.ci_low_relative,
            "ci_high_relative": comp.ci_high_relative,
            "se": comp.se,
            "se_relative": comp.se_relative,
            "p_absolute": comp.p_value,
            "p_relative": p_rel,
            "df": comp.df,
            "n_total": comp.extra.get("n_total"),
            "rho": comp.extra.get("rho"),
            "ctw_relative": comp.chance_to_win,
            "ctw_absolute": comp.extra.get("chance_to_win_absolute"),
            "risk_control_relative": comp.risk_control,
            "risk_control_absolute": comp.extra.get("risk_control_absolute"),
            "risk_treatment_relative": comp.risk_treatment,
            "risk_treatment_absolute": comp.extra.get("risk_treatment_absolute"),
        }
        for name, values in pairs.items():
            if values is not None:
                out[name][sel] = values
        not_enough[sel] = comp.not_enough_data
        reason[sel] = comp.reason
        method_name[sel] = comp.method
    label = np.array([f"{KINDS[k]} (CUPED)" if c else KINDS[k] for k, c in zip(kind, use_cuped, strict=True)])
    # The reported scale: relative when the control mean is non-zero, else absolute.
    relative = ~np.isnan(out["effect_relative"])

    # Corrections within each family (a role, or the whole table), each scale on its own p-values.
    use_correction = correction if method != "bayesian" else None
    families = np.array(
        [metric_role[m] or "" for m in range(n_metrics)] if family == "role" else ["all"] * n_metrics, dtype=object
    )[k_metric]
    if family == "role":
        families = np.where(families == "", "all", families)
    adjusted: dict[str, tuple[FloatArray, FloatArray, FloatArray, FloatArray]] = {}
    family_size = np.zeros(size)
    for scale, est, se, lo, hi in (
        ("absolute", out["effect"], out["se"], out["ci_low"], out["ci_high"]),
        ("relative", out["effect_relative"], out["se_relative"], out["ci_low_relative"], out["ci_high_relative"]),
    ):
        p = out[f"p_{scale}"]
        if use_correction is None:
            adjusted[scale] = (p, p, lo, hi)
            continue
        p_adj, lo_adj, hi_adj = p.copy(), lo.copy(), hi.copy()
        for f in set(families.tolist()):
            sel = np.flatnonzero(families == f)
            ps = p[sel]
            pa = corrections.adjust(ps, use_correction)
            m = float(np.sum(~np.isnan(ps)))
            if scale == "relative":
                family_size[sel] = np.where(relative[sel], m, family_size[sel])
            else:
                family_size[sel] = np.where(relative[sel], family_size[sel], m)
            a_star = corrections.implied_alpha(ps, pa, np.full(ps.shape, alpha), np.full(ps.shape, m))
            ok = ~np.isnan(ps)
            if method == "sequential":
                w = sequential.half_width(se[sel], out["n_total"][sel], a_star, mixture_rho=out["rho"][sel])
                a, b = est[sel] - w, est[sel] + w
            else:
                a, b = frequentist.t_interval(est[sel], se[sel], out["df"][sel], a_star)
            p_adj[sel] = pa
            lo_adj[sel] = np.where(ok, a, lo[sel])
            hi_adj[sel] = np.where(ok, b, hi[sel])
        adjusted[scale] = (p, p_adj, lo_adj, hi_adj)
    bayes = method == "bayesian"
    p_abs, p_abs_adj, lo_abs_adj, hi_abs_adj = adjusted["absolute"]
    p_rel, p_rel_adj, lo_rel_adj, hi_rel_adj = adjusted["relative"]
    p_rep = np.where(relative, p_rel, p_abs)
    p_rep_adj = np.where(relative, p_rel_adj, p_abs_adj)
    with np.errstate(invalid="ignore"):
        significant = ~not_enough & (p_rep_adj < alpha) & (not bayes)
    if use_correction is None:
        family_size = np.zeros(size)

    renamed = {
        "chance_to_win_relative": "ctw_relative",
        "chance_to_win_absolute": "ctw_absolute",
    }
    reported = {
        "p_value": p_rep,
        "p_value_adjusted": p_rep_adj,
        "ci_low_adjusted": np.where(relative, lo_rel_adj, lo_abs_adj),
        "ci_high_adjusted": np.where(relative, hi_rel_adj, hi_abs_adj),
        "chance_to_win": np.where(relative, out["ctw_relative"], out["ctw_absolute"]),
        "risk_control": np.where(relative, out["risk_control_relative"], out["risk_control_absolute"]),
        "risk_treatment": np.where(relative, out["risk_treatment_relative"], out["risk_treatment_absolute"]),
        "p_value_absolute": p_abs,
        "p_value_absolute_adjusted": p_abs_adj,
        "ci_low_absolute_adjusted": lo_abs_adj,
        "ci_high_absolute_adjusted": hi_abs_adj,
        "p_value_relative": p_rel,
        "p_value_relative_adjusted": p_rel_adj,
        "ci_low_relative_adjusted": lo_rel_adj,
        "ci_high_relative_adjusted": hi_rel_adj,
    }
    columns: list[list[Any]] = []
    for name in _ARRAY_FIELDS:
        values = reported[name] if name in reported else out[renamed.get(name, name)]
        if bayes and name.startswith("p_value"):
            values = nan
        columns.append(values.tolist())
    names_m = [metrics[m] for m in k_metric.tolist()]
    names_v = [seen_variations[v] for v in k_var.tolist()]
    labels = np.where(present, label[k_metric], np.array(KINDS)[kind[k_metric]]).tolist()
    scales = np.where(relative | ~present, "relative", "absolute").tolist()
    each: dict[str, Any] = {
        "metric": names_m,
        "variation": names_v,
        "control": control,
        "kind": labels,
        "method": method_name.tolist(),
        "scale": scales,
        "n_control": n_c.tolist(),
        "n_treatment": n_t.tolist(),
        "significant": significant.tolist(),
        "alpha": alpha,
        "correction": use_correction,
        "not_enough_data": not_enough.tolist(),
        "reason": [str(x) for x in reason.tolist()],
        "srm_p_value": srm_p,
        "srm_mismatch": srm_flag,
        "family": families.tolist(),
        "family_size": family_size.astype(np.int64).tolist(),
        **dict(zip(_ARRAY_FIELDS, columns, strict=True)),
    }
    assert sorted(each) == sorted(FIELD_NAMES)
    make = ResultRow._shared
    return [make(each, i) for i in range(size)]
