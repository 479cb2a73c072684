"""Experiment results: run the evidence query where the raw events live, analyse the summaries with the
statistics engine, check the sample ratio, and store an immutable snapshot of it all.

The query runs through `measures.sources` (read-only, time-limited, DuckDB paths restricted to
TRUENORTH_DUCKDB_DIRS) wrapped as an evidence `Engine`, so the SQL compiled by `truenorth.evidence` is
the same for every engine. A failing query raises `ValidationFailed` and stores nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.db import transaction

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.core.validate import check_version
from truenorth.evidence import synthetic
from truenorth.evidence.compile import Tables, quoted_column, quoted_table
from truenorth.evidence.metrics import Metric, MetricError, metrics_from_dicts
from truenorth.evidence.run import Evidence, Stats, run_experiment
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.hypotheses import services
from truenorth.hypotheses.models import Experiment, MetricRole, ResultSnapshot
from truenorth.measures import sources
from truenorth.measures.models import DataSource
from truenorth.measures.services import require_query_author
from truenorth.orgs.models import Membership
from truenorth.stats import engine as stats_engine
from truenorth.stats import srm
from truenorth.stats.summary import CupedStats, MeanStats, RatioStats

METHODS = stats_engine.METHODS
CORRECTIONS = stats_engine.CORRECTIONS
MAX_ROWS = 1000
EVIDENCE_FIELDS = ("data_source", "evidence_key", "metric_definitions")
_KEY = re.compile(r"^[^\x00-\x1f]{1,200}$")


def slug(name: str) -> str:
    """An experiment metric's name as a metric-definition name: "Region download rate" → region_download_rate."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40]


# --- evidence settings ----------------------------------------------------------------------------


def clean_definitions(raw: Any) -> list[dict[str, Any]]:
    """Validate metric definitions (a JSON list in the evidence.metrics format); field errors name them."""
    if not isinstance(raw, list):
        raise ValidationFailed(
            "Give the metric definitions as a JSON list of objects.", field="metric_definitions"
        )
    try:
        metrics_from_dicts(raw)
    except MetricError as exc:
        raise ValidationFailed(f"{exc.field}: {exc.message}", field="metric_definitions") from None
    return [dict(item) for item in raw]


def configure_evidence(
    membership: Membership,
    actor: User,
    experiment_id: int,
    *,
    data_source_id: int | None,
    evidence_key: str,
    metric_definitions: Any,
    version: int | None = None,
) -> Experiment:
    """Set where an experiment's raw events live and how its metrics are computed (admins: the metric
    definitions become SQL run as the data source's role; members run the results); a stale version is
    refused with 409."""
    services.require_writer(membership)
    services.get_experiment(membership, experiment_id)  # 404 before any validation
    require_query_author(membership)
    source = None
    if data_source_id is not None:
        source = DataSource.objects.filter(
            pk=data_source_id, organisation_id=membership.organisation_id
        ).first()
        if source is None:
            raise ValidationFailed("No such data source in this organisation.", field="data_source")
    key = str(evidence_key or "").strip()
    if not _KEY.match(key):
        raise ValidationFailed(
            "Give the experiment's key in the assignments table (1-200 characters).", field="evidence_key"
        )
    definitions = clean_definitions(metric_definitions)
    with transaction.atomic():
        experiment = (
            Experiment.objects.select_for_update()
            .filter(pk=experiment_id, hypothesis__organisation_id=membership.organisation_id)
            .first()
        )
        if experiment is None:
            raise NotFound("No such experiment.")
        check_version(experiment, version)
        before = snapshot(experiment, EVIDENCE_FIELDS)
        experiment.data_source = source
        experiment.evidence_key = key
        experiment.metric_definitions = definitions
        experiment.save(update_fields=["data_source", "evidence_key", "metric_definitions"])
        after = snapshot(experiment, EVIDENCE_FIELDS)
        if after != before:
            Experiment.objects.filter(pk=experiment.pk).update(version=experiment.version + 1)
            record(
                membership.organisation, experiment, actor, HistoryEntry.Action.UPDATED, diff(before, after)
            )
    return services.get_experiment(membership, experiment_id)


# --- running the query ----------------------------------------------------------------------------


class SourceEngine:
    """An evidence `Engine` over a TrueNorth data source: read-only and time-limited (measures.sources)."""

    def __init__(self, source: DataSource) -> None:
        self.source = source
        self.dialect = "postgres" if source.kind == "postgres" else "duckdb"

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        result = sources._execute(self.source, sql, MAX_ROWS)
        return list(result.rows)


def summary_rows(
    evidence: Evidence, roles: Mapping[str, str], allocation: Mapping[str, float]
) -> list[dict[str, Any]]:
    """The summary table `stats.engine.analyze` takes (one row per metric x variation)."""
    rows: list[dict[str, Any]] = []
    for metric, per_variation in evidence.metrics.items():
        for variation, stats in per_variation.items():
            row: dict[str, Any] = {
                "metric": metric,
                "variation": variation,
                "users": evidence.units.get(variation, 0),
                "weight": allocation.get(variation, math.nan),
                "role": roles.get(metric, MetricRole.SECONDARY),
            }
            row.update(_stats(stats))
            rows.append(row)
    return rows


def _f(x: Any) -> float:
    return float(x)


def _stats(stats: Stats) -> dict[str, Any]:
    if isinstance(stats, RatioStats):
        return {
            "type": "ratio",
            "n": _f(stats.n),
            "sum": _f(stats.m_sum),
            "sum_squares": _f(stats.m_sum_squares),
            "denominator_sum": _f(stats.d_sum),
            "denominator_sum_squares": _f(stats.d_sum_squares),
            "main_denominator_sum_product": _f(stats.m_d_sum_of_products),
        }
    if isinstance(stats, CupedStats):
        out = _stats(stats.post)
        out.update(
            covariate_sum=_f(stats.pre.sum),
            covariate_sum_squares=_f(stats.pre.sum_squares),
            main_covariate_sum_product=_f(stats.post_pre_sum_of_products),
        )
        return out
    assert isinstance(stats, MeanStats)
    return {
        "type": "proportion" if stats.is_proportion else "mean",
        "n": _f(stats.n),
        "sum": _f(stats.sum),
        "sum_squares": _f(stats.sum_squares),
    }


def _freshness(engine: SourceEngine, tables: Tables) -> str | None:
    sql = (
        f"SELECT MAX({quoted_column(tables.at, engine.dialect)}) "  # noqa: S608 (validated, quoted names)
        f"FROM {quoted_table(tables.events, engine.dialect)}"
    )
    rows = engine.fetch(sql)
    value = rows[0][0] if rows and rows[0] else None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return None if value is None else str(value)


def _guardrail(row: dict[str, Any]) -> str:
    """A guardrail must not get worse: breached when the result says it fell."""
    if row["not_enough_data"]:
        return "unknown"
    if row["method"].startswith("bayesian"):
        return "breached" if (row["chance_to_win"] or 0.5) < 0.05 else "ok"
    effect = row["effect_relative"] if row["scale"] == "relative" else row["effect"]
    return "breached" if row["significant"] and (effect or 0) < 0 else "ok"


def _roles(experiment: Experiment, metrics: Sequence[Metric]) -> dict[str, str]:
    by_slug = {slug(m.name): m.role for m in experiment.metrics.all()}
    by_name = {m.name: m.role for m in experiment.metrics.all()}
    return {m.name: by_name.get(m.name) or by_slug.get(slug(m.name)) or MetricRole.SECONDARY for m in metrics}


def check_computable(
    membership: Membership, experiment_id: int, method: str, correction: str | None
) -> tuple[Experiment, str | None]:
    """What compute_results refuses before running anything (a writer, a known method and correction,
    evidence settings); returns the experiment and the correction (None for "none")."""
    services.require_writer(membership)
    experiment = services.get_experiment(membership, experiment_id)
    if method not in METHODS:
        raise ValidationFailed(f"'{method}' is not one of: {', '.join(METHODS)}.", field="method")
    if correction in ("", "none"):
        correction = None
    if correction is not None and correction not in CORRECTIONS:
        raise ValidationFailed(
            f"'{correction}' is not one of: {', '.join(CORRECTIONS)}, none.", field="correction"
        )
    if experiment.data_source_id is None or not experiment.evidence_key:
        raise ValidationFailed(
            "Set the experiment's data source and its key in the assignments table first.",
            field="data_source",
        )
    return experiment, correction


def compute_results(
    membership: Membership,
    actor: User,
    experiment_id: int,
    *,
    method: str = "frequentist",
    correction: str | None = "holm",
) -> ResultSnapshot:
    """Compute an experiment's results from its raw events and store them as a new snapshot."""
    experiment, correction = check_computable(membership, experiment_id, method, correction)
    assert experiment.data_source_id is not None  # check_computable refused it otherwise
    source = DataSource.objects.get(pk=experiment.data_source_id)
    definitions = clean_definitions(experiment.metric_definitions)
    metrics = metrics_from_dicts(definitions)
    tables = Tables()
    engine = SourceEngine(source)
    try:
        evidence = run_experiment(engine, experiment.evidence_key, metrics, tables=tables)
        freshness = _freshness(engine, tables)
    except ValidationFailed as exc:
        raise ValidationFailed(f"The evidence query failed: {exc.message}", field="query") from None
    roles = _roles(experiment, metrics)
    allocation = {v.name: v.allocation for v in experiment.variations.all()}
    table = summary_rows(evidence, roles, allocation)
    if allocation and set(allocation) != set(evidence.units):
        raise ValidationFailed(
            f"The data has variations {sorted(evidence.units)} but the experiment plans "
            f"{sorted(allocation)}; name them alike.",
            field="variations",
        )
    analysed = [{k: v for k, v in r.items() if k != "role"} for r in table]
    try:
        rows = stats_engine.analyze(
            analysed,
            method=method,  # type: ignore[arg-type]
            cuped=True,
            correction=correction,  # type: ignore[arg-type]
            alpha=experiment.alpha,
        )
    except stats_engine.TableError as exc:
        raise ValidationFailed(exc.message, field=exc.column) from None
    names = list(evidence.units)
    planned = [allocation.get(n, 1.0) for n in names] if allocation else None
    check = srm.check([evidence.units[n] for n in names], planned)
    results_rows = []
    for r in rows:
        d = r.to_dict()
        d["role"] = roles.get(r.metric, MetricRole.SECONDARY)
        if d["role"] == MetricRole.GUARDRAIL:
            d["guardrail"] = _guardrail(d)
        results_rows.append(d)
    results = {
        "rows": results_rows,
        "srm": {
            "units": dict(evidence.units),
            "planned": dict(allocation),
            "p_value": None if bool(check.not_enough_data) else float(check.p_value),
            "mismatch": bool(check.mismatch),
        },
        "freshness": freshness,
        "alpha": experiment.alpha,
        "correction": correction,
    }
    inputs = {
        "method": method,
        "correction": correction,
        "alpha": experiment.alpha,
        "cuped": True,
        "data_source": source.name,
        "experiment_key": experiment.evidence_key,
        "metric_definitions": definitions,
        "summary": table,
    }
    label = method if correction is None else f"{method} ({stats_engine.CORRECTION_NAMES[correction]})"
    stored = services.store_snapshot(
        experiment, method=label, inputs=inputs, results=results, query=evidence.query.sql, author=actor
    )
    record(
        membership.organisation,
        stored,
        actor,
        HistoryEntry.Action.CREATED,
        diff({}, {"method": label, "experiment": experiment.pk}),
    )
    return stored


# --- synthetic evidence (demo and tests) ----------------------------------------------------------


def write_duckdb(
    path: Path,
    units: int,
    *,
    seed: int = 7,
    planted: synthetic.Planted | None = None,
    treatment: str = "treatment",
) -> tuple[int, int]:
    """A DuckDB file with ``assignments`` and ``events`` tables of a synthetic experiment (key
    `synthetic.EXPERIMENT`, variations ``control`` and ``treatment``) with known planted effects;
    returns (units, events)."""
    import duckdb
    import numpy as np

    p = planted or synthetic.Planted()
    rng = np.random.default_rng(seed)
    assignments, events = synthetic.generate_chunk(rng, 0, units, p)
    path.unlink(missing_ok=True)
    conn = duckdb.connect(str(path))
    try:
        conn.register(
            "a_src",
            {
                "unit_id": assignments["unit_id"],
                "variation": np.where(assignments["variation"] == "control", "control", treatment),
                "first_exposure_at": assignments["first_exposure_at"],
            },
        )
        names = np.array(synthetic.EVENT_NAMES)[events["name"].astype(np.int64)]
        conn.register(
            "e_src",
            {"unit_id": events["unit_id"], "at": events["at"], "name": names, "value": events["value"]},
        )
        experiment = synthetic.EXPERIMENT.replace("'", "''")
        conn.execute(
            "CREATE TABLE assignments AS SELECT unit_id, "  # noqa: S608 (a constant)
            f"'{experiment}' AS experiment, variation, first_exposure_at FROM a_src"
        )
        conn.execute(
            'CREATE TABLE events AS SELECT unit_id, "at", name, '
            "CASE WHEN isnan(value) THEN NULL ELSE value END AS value FROM e_src"
        )
    finally:
        conn.close()
    return int(assignments["unit_id"].size), int(events["unit_id"].size)


# --- display --------------------------------------------------------------------------------------


def effect_chart(snapshot_: ResultSnapshot) -> dict[str, Any] | None:
    """One Vega-Lite spec: a point and an error bar per metric x variation (relative effect and CI)."""
    points = []
    for r in snapshot_.results.get("rows", []):
        if r.get("not_enough_data") or r.get("scale") != "relative":
            continue
        bayes = str(r.get("method", "")).startswith("bayesian")
        low = r["ci_low_relative"] if bayes else r["ci_low_adjusted"]
        high = r["ci_high_relative"] if bayes else r["ci_high_adjusted"]
        if None in (r.get("effect_relative"), low, high):
            continue
        points.append(
            {
                "label": f"{r['metric']} ({r['variation']})",
                "effect": r["effect_relative"],
                "low": low,
                "high": high,
                "role": r.get("role", "secondary"),
            }
        )
    if not points:
        return None
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "description": "Relative effect of each variation against control, with its confidence interval",
        "width": 480,
        "data": {"values": points},
        "encoding": {"y": {"field": "label", "type": "nominal", "title": None, "sort": None}},
        "layer": [
            {"mark": {"type": "rule", "color": "#888"}, "encoding": {"x": {"datum": 0}}},
            {
                "mark": {"type": "errorbar", "ticks": True},
                "encoding": {
                    "x": {
                        "field": "low",
                        "type": "quantitative",
                        "title": "Relative effect",
                        "axis": {"format": "%"},
                    },
                    "x2": {"field": "high"},
                },
            },
            {
                "mark": {"type": "point", "filled": True, "size": 80},
                "encoding": {
                    "x": {"field": "effect", "type": "quantitative"},
                    "color": {"field": "role", "type": "nominal", "title": "Role"},
                    "tooltip": [
                        {"field": "label", "type": "nominal"},
                        {"field": "effect", "type": "quantitative", "format": ".2%"},
                        {"field": "low", "type": "quantitative", "format": ".2%"},
                        {"field": "high", "type": "quantitative", "format": ".2%"},
                    ],
                },
            },
        ],
    }
