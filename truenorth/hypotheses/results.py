"""Experiment results: run the evidence query where the raw events live, analyse the summaries with the
statistics engine, check the sample ratio, and store an immutable snapshot of it all.

The query runs through `measures.sources` (read-only, time-limited, DuckDB paths restricted to
TRUENORTH_DUCKDB_DIRS) wrapped as an evidence `Engine`, so the SQL compiled by `truenorth.evidence` is
the same for every engine. A failing query raises `ValidationFailed` and stores nothing.
"""

from __future__ import annotations

import copy
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
from truenorth.evidence import mapping as evidence_mapping
from truenorth.evidence import synthetic
from truenorth.evidence.compile import Tables, is_file, quoted_column, table_sql
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
from truenorth.stats.quantile import QuantileStats
from truenorth.stats.summary import CupedStats, MeanStats, RatioStats

METHODS = stats_engine.METHODS
CORRECTIONS = stats_engine.CORRECTIONS
FAMILIES = stats_engine.FAMILIES
#: The default correction: Holm within each role (primary, secondary, guardrail), so the primary
#: metric's decision is not diluted by the others (docs/statistics.md: one rule for p-values).
DEFAULT_CORRECTION = "holm"
DEFAULT_FAMILY = "role"
#: The choices the results page offers: (correction, family) -> label.
CORRECTION_CHOICES = {
    ("holm", "role"): "Holm within each role (default)",
    ("bh", "role"): "Benjamini-Hochberg within each role",
    ("holm", "all"): "Holm across all metrics",
    ("bh", "all"): "Benjamini-Hochberg across all metrics",
    ("none", "role"): "None (each p-value on its own)",
}
MAX_ROWS = 1000
EVIDENCE_FIELDS = ("data_source", "evidence_key", "metric_definitions", "evidence_mapping")
PREVIEW_ROWS = 5
PREVIEW_SECONDS = 10
_KEY = re.compile(r"^[^\x00-\x1f]{1,200}$")


def slug(name: str) -> str:
    """An experiment metric's name as a metric-definition name: "Region download rate" → region_download_rate."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40]


# --- evidence settings ----------------------------------------------------------------------------


def clean_definitions(raw: Any) -> list[dict[str, Any]]:
    """Validate metric definitions (a JSON list in the evidence.metrics format); field errors name them.
    An empty list means "discover them": a count and a conversion per event name (evidence.mapping)."""
    if not isinstance(raw, list):
        raise ValidationFailed(
            "Give the metric definitions as a JSON list of objects.", field="metric_definitions"
        )
    if not raw:
        return []
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
    mapping: Any = None,
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
    if mapping is not None:
        tables = clean_mapping(mapping, source, membership)
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
        if mapping is not None:
            changed = evidence_mapping.mapping_of(tables, only_changed=True)
            # Stored in one normal form (no empty sections), so saving the defaults again changes nothing.
            experiment.evidence_mapping = {section: keys for section, keys in changed.items() if keys}
        experiment.save(
            update_fields=["data_source", "evidence_key", "metric_definitions", "evidence_mapping"]
        )
        after = snapshot(experiment, EVIDENCE_FIELDS)
        if after != before:
            Experiment.objects.filter(pk=experiment.pk).update(version=experiment.version + 1)
            record(
                membership.organisation, experiment, actor, HistoryEntry.Action.UPDATED, diff(before, after)
            )
    return services.get_experiment(membership, experiment_id)


# --- running the query ----------------------------------------------------------------------------


def clean_mapping(raw: Any, source: DataSource | None, membership: Membership) -> Tables:
    """Validate a table/column mapping (evidence.mapping shape) for ``source``: names are checked, a
    Parquet/CSV file must lie in the organisation's DuckDB directories and needs a DuckDB source."""
    try:
        tables = evidence_mapping.tables_from_mapping(raw)
    except MetricError as exc:
        raise ValidationFailed(exc.message, field=exc.field or "mapping") from None
    resolve_files(tables, source, membership.organisation_id)
    return tables


def resolve_files(
    tables: Tables, source: DataSource | None, organisation_id: int, *, must_exist: bool = False
) -> tuple[Tables, list[str]]:
    """``tables`` with its Parquet/CSV files resolved inside the organisation's DuckDB directories
    (measures.sources rules: relative to its own directory, no way out), and the resolved paths
    (with ``must_exist``, a missing file is an error naming the setting)."""
    files: list[str] = []
    values: dict[str, str] = {}
    for attr in ("assignments", "events"):
        spec = getattr(tables, attr)
        if not is_file(spec):
            continue
        field = evidence_mapping.form_name(attr)
        if source is not None and source.kind != "duckdb":
            raise ValidationFailed(
                f"The {evidence_mapping.LABELS[attr]} “{spec}” is a file: choose a DuckDB data source "
                "to read Parquet or CSV files, or name a PostgreSQL table.",
                field=field,
            )
        path = sources.allowed_path(spec, field, organisation_id)
        if must_exist and not Path(path).is_file():
            raise ValidationFailed(
                f"no file `{spec}` in this organisation's DuckDB directory: "
                f"{evidence_mapping.in_settings(attr)}",
                field=field,
            )
        values[attr] = path
        files.append(path)
    return evidence_mapping.with_overrides(tables, values), files


def mapping_tables(experiment: Experiment) -> Tables:
    """The experiment's saved mapping (defaults where it names nothing)."""
    try:
        return evidence_mapping.tables_from_mapping(experiment.evidence_mapping or None)
    except MetricError as exc:
        raise ValidationFailed(f"The saved mapping is not valid: {exc.message}", field="mapping") from None


def source_label(source: DataSource) -> str:
    """How an error names the data source: its DuckDB file's name, else the source's name."""
    if source.kind == "duckdb":
        path = str(sources.decrypt_config(source).get("path") or "")
        if path:
            return Path(path).name
        return f"“{source.name}” (this organisation's DuckDB directory)"
    return f"“{source.name}”"


class SourceEngine:
    """An evidence `Engine` over a TrueNorth data source: read-only and time-limited (measures.sources).
    ``files`` are the resolved Parquet/CSV files the mapping reads (checked again by sources)."""

    def __init__(self, source: DataSource, files: Sequence[str] = (), *, limit: int = MAX_ROWS) -> None:
        self.source = source
        self.files = list(files)
        self.limit = limit
        self.dialect = sources.dialect_of(source)  # the source kind's SQLGlot dialect

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        result = sources.execute(self.source, sql, self.limit, files=self.files)
        return list(result.rows)


def explained(exc: ValidationFailed, tables: Tables, source: DataSource) -> ValidationFailed:
    """A failed evidence query as what to fix, naming the mapping field (form name) to change."""
    attr, message = evidence_mapping.explain(exc.message, tables, source_label(source))
    field = evidence_mapping.form_name(attr) if attr else "query"
    return ValidationFailed(f"The evidence query failed: {message}", field=field)


def check_preview(membership: Membership, experiment_id: int, data_source_id: int | None, mapping: Any) -> None:
    """What a mapping preview refuses before running: not an admin (403), another organisation's
    experiment (404), no data source or a bad mapping (422)."""
    services.get_experiment(membership, experiment_id)
    require_query_author(membership)
    source = (
        DataSource.objects.filter(pk=data_source_id, organisation_id=membership.organisation_id).first()
        if data_source_id is not None
        else None
    )
    if source is None:
        raise ValidationFailed("Choose a data source to preview.", field="data_source")
    clean_mapping(mapping, source, membership)


def preview_mapping(
    membership: Membership, *, data_source_id: int | None, mapping: Any
) -> list[dict[str, Any]]:
    """A few rows (`PREVIEW_ROWS`) of each mapped table, its mapped columns only, within
    `PREVIEW_SECONDS` (admins: it runs on the data source). Per table: {"title", "table", "columns",
    "rows", "error"}; a table's failure is explained, not raised."""
    require_query_author(membership)
    source = (
        DataSource.objects.filter(pk=data_source_id, organisation_id=membership.organisation_id).first()
        if data_source_id is not None
        else None
    )
    if source is None:
        raise ValidationFailed("Choose a data source to preview.", field="data_source")
    tables = clean_mapping(mapping, source, membership)
    resolved, files = resolve_files(tables, source, membership.organisation_id)
    quick = copy.copy(source)  # not saved: a preview waits at most PREVIEW_SECONDS
    quick.timeout_seconds = min(source.timeout_seconds, PREVIEW_SECONDS)
    engine = SourceEngine(quick, files, limit=PREVIEW_ROWS)
    out = []
    for attr, columns in (
        ("assignments", ("unit_id", "variation", "first_exposure_at", "experiment")),
        ("events", ("event_unit_id", "name", "value", "at")),
    ):
        names = [getattr(tables, c) for c in columns]
        picks = ", ".join(quoted_column(n, engine.dialect) for n in dict.fromkeys(names))
        sql = (
            f"SELECT {picks} FROM {table_sql(getattr(resolved, attr), engine.dialect)} "  # noqa: S608 (validated, quoted)
            f"AS {'e' if attr == 'events' else 'assignment_rows'} LIMIT {PREVIEW_ROWS}"
        )
        entry: dict[str, Any] = {
            "title": evidence_mapping.LABELS[attr].capitalize(),
            "table": getattr(tables, attr),
            "columns": list(dict.fromkeys(names)),
            "rows": [],
            "error": "",
        }
        try:
            entry["rows"] = [[sources.text_cell(v) for v in row] for row in engine.fetch(sql)]
        except ValidationFailed as exc:
            entry["error"] = evidence_mapping.explain(exc.message, tables, source_label(source))[1]
        out.append(entry)
    return out


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


def _or_none(x: Any) -> float | None:
    value = float(x)
    return None if math.isnan(value) else value


def _stats(stats: Stats) -> dict[str, Any]:
    if isinstance(stats, QuantileStats):
        return {
            "type": "quantile",
            "n": _f(stats.n),
            "sum": None,  # a quantile has no sums (JSON has no NaN)
            "sum_squares": None,
            "quantile_level": _f(stats.nu),
            # No values (n = 0): no quantile; JSON has no NaN, and the engine reads None as missing.
            "quantile": _or_none(stats.quantile),
            "quantile_lower": _or_none(stats.lower),
            "quantile_upper": _or_none(stats.upper),
            "quantile_nstar": _f(stats.n_star),
        }
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
        f"FROM {table_sql(tables.events, engine.dialect)} AS e"
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
    membership: Membership,
    experiment_id: int,
    method: str,
    correction: str | None,
    family: str = DEFAULT_FAMILY,
) -> tuple[Experiment, str | None]:
    """What compute_results refuses before running anything (a writer, a known method, correction and
    correction family, evidence settings); returns the experiment and the correction (None for "none")."""
    services.require_writer(membership)
    experiment = services.get_experiment(membership, experiment_id)
    if method not in METHODS:
        raise ValidationFailed(f"'{method}' is not one of: {', '.join(METHODS)}.", field="method")
    if family not in FAMILIES:
        raise ValidationFailed(f"'{family}' is not one of: {', '.join(FAMILIES)}.", field="family")
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
    correction: str | None = DEFAULT_CORRECTION,
    family: str = DEFAULT_FAMILY,
) -> ResultSnapshot:
    """Compute an experiment's results from its raw events and store them as a new snapshot (with
    the correction and its family, and in words what was applied: `results["correction_applied"]`)."""
    experiment, correction = check_computable(membership, experiment_id, method, correction, family)
    assert experiment.data_source_id is not None  # check_computable refused it otherwise
    source = DataSource.objects.get(pk=experiment.data_source_id)
    definitions = clean_definitions(experiment.metric_definitions)
    tables = mapping_tables(experiment)
    try:
        resolved, files = resolve_files(tables, source, membership.organisation_id, must_exist=True)
    except ValidationFailed as exc:
        raise ValidationFailed(f"The evidence query failed: {exc.message}", field=exc.field) from None
    engine = SourceEngine(source, files)
    try:
        if definitions:
            metrics = metrics_from_dicts(definitions)
        else:  # discovered: a count and a conversion per event name (evidence.mapping)
            found = engine.fetch(evidence_mapping.distinct_names_sql(resolved, engine.dialect))
            metrics = evidence_mapping.discovered_metrics(r[0] for r in found)
        evidence = run_experiment(engine, experiment.evidence_key, metrics, tables=resolved)
        freshness = _freshness(engine, resolved)
    except MetricError as exc:
        raise ValidationFailed(exc.message, field="metric_definitions") from None
    except ValidationFailed as exc:
        raise explained(exc, tables, source) from None
    roles = _roles(experiment, metrics)
    allocation = {v.name: v.allocation for v in experiment.variations.all()}
    table = summary_rows(evidence, roles, allocation)
    if allocation and set(allocation) != set(evidence.units):
        raise ValidationFailed(
            f"The data has variations {sorted(evidence.units)} but the experiment plans "
            f"{sorted(allocation)}; name them alike.",
            field="variations",
        )
    try:
        rows = stats_engine.analyze(
            table,
            method=method,  # type: ignore[arg-type]
            cuped=True,
            correction=correction,  # type: ignore[arg-type]
            family=family,  # type: ignore[arg-type]
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
            # Units assigned to more than one variation: left out of every metric and of the SRM check.
            "excluded_units": evidence.excluded_units,
        },
        "freshness": freshness,
        "alpha": experiment.alpha,
        "correction": correction,
        "family": family,
        "correction_applied": stats_engine.correction_summary(rows),
    }
    inputs = {
        "method": method,
        "correction": correction,
        "family": family,
        "alpha": experiment.alpha,
        "cuped": True,
        "data_source": source.name,
        "experiment_key": experiment.evidence_key,
        "metric_definitions": definitions or [
            {"name": m.name, "aggregation": m.aggregation, "events": list(m.select.events)} for m in metrics
        ],
        "mapping": evidence_mapping.mapping_of(tables),
        "summary": table,
    }
    label = (
        method
        if correction is None
        else f"{method} ({stats_engine.CORRECTION_NAMES[correction]}"
        f"{' within roles' if family == 'role' else ' across all metrics'})"
    )
    query = evidence.query.sql
    if evidence.quantile_query is not None:  # quantile metrics: the second, summary-only query
        query = f"{query};\n\n-- quantiles\n{evidence.quantile_query.sql}"
    stored = services.store_snapshot(
        experiment, method=label, inputs=inputs, results=results, query=query, author=actor
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
