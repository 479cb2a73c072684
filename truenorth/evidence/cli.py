"""`truenorth evidence run`: compute an experiment's summary statistics where its events live.

No Django and no server: the source is a DuckDB file, a directory of Parquet/CSV files, or a
``postgresql://`` URL.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from truenorth.core.errors import ValidationFailed
from truenorth.evidence.compile import Tables, is_file
from truenorth.evidence.mapping import (
    FLAGS,
    discovered_metrics,
    distinct_names_sql,
    explain,
    mapping_of,
    tables_from_mapping,
    with_flag,
    with_overrides,
)
from truenorth.evidence.metrics import Metric, metrics_from_dicts
from truenorth.evidence.run import (
    DuckDBEngine,
    Engine,
    Evidence,
    PostgresEngine,
    QueryFailed,
    Stats,
    run_experiment,
    srm_p_value,
)
from truenorth.stats import engine as stats_engine
from truenorth.stats.quantile import QuantileStats
from truenorth.stats.summary import CupedStats, MeanStats, RatioStats

evidence_app = typer.Typer(
    help="Evidence queries: metric summaries computed where the events live.", no_args_is_help=True
)
console = Console()


def _engine(source: str) -> Engine:
    if source.startswith(("postgres://", "postgresql://")):
        return PostgresEngine(source)
    return DuckDBEngine(Path(source))


def _where(source: str) -> str:
    """How an error names the source: a file or directory name, or a URL's host and database."""
    if source.startswith(("postgres://", "postgresql://")):
        parsed = urlsplit(source)
        return f"PostgreSQL {parsed.hostname or 'localhost'}{parsed.path or ''}"
    return Path(source).name or source


_FILE_KEYS = {"metrics", "tables", "mapping", "control"}


def _load_metrics_file(path: Path) -> tuple[list[Metric] | None, Tables | None, str | None]:
    """A metrics YAML: ``metrics:`` (a list; optional when ``mapping:`` is given: then discovered),
    ``mapping:`` (evidence.mapping shape; ``tables:`` is the older flat form), ``control:``."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"cannot read {path}: {str(exc).splitlines()[0]}", field="--metrics") from None
    if isinstance(data, list):
        data = {"metrics": data}
    if not isinstance(data, dict) or not (
        isinstance(data.get("metrics"), list) or (data.get("metrics") is None and data.get("mapping"))
    ):
        raise ValidationFailed(f"{path} needs a `metrics:` list or a `mapping:`", field="--metrics")
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise ValidationFailed(f"{path}: unknown keys {unknown}", field="--metrics")
    tables = None
    if data.get("mapping") is not None and data.get("tables") is not None:
        raise ValidationFailed(f"{path}: give `mapping:` or `tables:`, not both", field="--metrics")
    if data.get("mapping") is not None:
        tables = tables_from_mapping(data["mapping"])
    if data.get("tables") is not None:
        if not isinstance(data["tables"], dict):
            raise ValidationFailed("tables must be a mapping", field="--metrics")
        try:
            tables = Tables(**{str(k): str(v) for k, v in data["tables"].items()})
        except TypeError as exc:
            raise ValidationFailed(f"tables: {exc}", field="--metrics") from None
    control = data.get("control")
    metrics = metrics_from_dicts(data["metrics"]) if data.get("metrics") else None
    return metrics, tables, str(control) if control is not None else None


def _discover_metrics(engine: Engine, tables: Tables) -> list[Metric]:
    """Without metric definitions: a count and a conversion metric per event name (evidence.mapping)."""
    found = engine.fetch(distinct_names_sql(tables, engine.dialect))
    try:
        return discovered_metrics(r[0] for r in found)
    except ValidationFailed:
        raise ValidationFailed(
            "the event table has no events to summarise; pass --metrics", field="--metrics"
        ) from None


def _local_files(tables: Tables, source: str) -> Tables:
    """Relative Parquet/CSV files are taken in the source's directory (the DuckDB file's, or the one
    given); the CLI is the operator's own process, so no organisation rules apply here."""
    if source.startswith(("postgres://", "postgresql://")):
        return tables
    base = Path(source) if Path(source).is_dir() else Path(source).parent
    overrides = {
        attr: str(base / spec)
        for attr in ("assignments", "events")
        if is_file(spec := getattr(tables, attr)) and not Path(spec).is_absolute()
    }
    return with_overrides(tables, overrides)


def _weights(text: str | None, variations: list[str]) -> dict[str, float] | None:
    """``0.5,0.5`` (in the order of the variations sorted by name) or ``control=0.5,treatment=0.5``."""
    if not text:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            weights = {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        else:
            if len(parts) != len(variations):
                raise ValidationFailed(
                    f"give {len(variations)} weights, one per variation in the order {', '.join(variations)} "
                    "(or name=weight pairs)",
                    field="--weights",
                )
            weights = dict(zip(variations, (float(p) for p in parts), strict=True))
    except ValueError:
        raise ValidationFailed(f"{text!r} is not a list of numbers", field="--weights") from None
    if set(weights) != set(variations):
        raise ValidationFailed(
            f"weights name {sorted(weights)} but the data has variations {variations}", field="--weights"
        )
    if any(not math.isfinite(w) or w <= 0 for w in weights.values()):
        raise ValidationFailed("weights must be positive numbers", field="--weights")
    return weights


def _fmt(value: Any, digits: int = 4) -> str:
    x = float(value)
    if x != x:
        return "—"
    return f"{x:,.{digits}g}" if abs(x) < 1e6 else f"{x:,.0f}"


def _summary(stats: Stats) -> tuple[str, str, str]:
    """(n, mean, standard deviation) of the metric per unit (a quantile metric: n values, the
    quantile and its standard error)."""
    if isinstance(stats, QuantileStats):
        return _fmt(stats.n, 9), _fmt(stats.quantile), _fmt(stats.se)
    if isinstance(stats, CupedStats):
        base: MeanStats | RatioStats = stats.post
    else:
        base = stats
    variance = np.asarray(base.variance, dtype=np.float64)
    sd = np.sqrt(np.where(variance >= 0, variance, np.nan)) if np.isfinite(variance) else variance
    return _fmt(base.n, 9), _fmt(base.mean), _fmt(sd)


def summary_table(
    evidence: Evidence, variations: list[str], weights: dict[str, float] | None
) -> list[dict[str, Any]]:
    """The per metric x variation summary rows `stats.engine.analyze` takes (control first)."""
    rows: list[dict[str, Any]] = []
    for metric, per_variation in evidence.metrics.items():
        for variation in variations:
            stats = per_variation[variation]
            row: dict[str, Any] = {
                "metric": metric,
                "variation": variation,
                "users": evidence.units[variation],
                "weight": (weights or {}).get(variation, 1.0),
            }
            if isinstance(stats, QuantileStats):
                row.update(
                    type="quantile",
                    n=float(stats.n),
                    sum=math.nan,
                    sum_squares=math.nan,
                    quantile_level=float(stats.nu),
                    quantile=float(stats.quantile),
                    quantile_lower=float(stats.lower),
                    quantile_upper=float(stats.upper),
                    quantile_nstar=float(stats.n_star),
                )
            elif isinstance(stats, RatioStats):
                row.update(
                    type="ratio",
                    n=float(stats.n),
                    sum=float(stats.m_sum),
                    sum_squares=float(stats.m_sum_squares),
                    denominator_sum=float(stats.d_sum),
                    denominator_sum_squares=float(stats.d_sum_squares),
                    main_denominator_sum_product=float(stats.m_d_sum_of_products),
                )
            else:
                post = stats.post if isinstance(stats, CupedStats) else stats
                row.update(
                    type="proportion" if post.is_proportion else "mean",
                    n=float(post.n),
                    sum=float(post.sum),
                    sum_squares=float(post.sum_squares),
                )
                if isinstance(stats, CupedStats):
                    row.update(
                        covariate_sum=float(stats.pre.sum),
                        covariate_sum_squares=float(stats.pre.sum_squares),
                        main_covariate_sum_product=float(stats.post_pre_sum_of_products),
                    )
            rows.append(row)
    return rows


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def run(
    source: Annotated[
        str,
        typer.Option(
            "--source", help="A DuckDB file, a directory of Parquet/CSV files, or a postgresql:// URL."
        ),
    ],
    experiment: Annotated[
        str, typer.Option("--experiment", help="The experiment's key in the assignment table.")
    ],
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics",
            help="A YAML file of metric definitions and/or a `mapping:` (default: a count and a "
            "conversion per event name).",
        ),
    ] = None,
    control: Annotated[
        str | None,
        typer.Option("--control", help="The control variation (default: `control`, else the first)."),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="frequentist, sequential or bayesian.")
    ] = "frequentist",
    correction: Annotated[
        str,
        typer.Option(
            "--correction", help="Multiple-comparison correction across the metrics run: holm, bh or none."
        ),
    ] = "holm",
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="Planned allocation for the sample-ratio check: `0.5,0.5` (variations sorted by name) "
            "or `control=0.5,treatment=0.5` (default: equal).",
        ),
    ] = None,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0001, max=0.5, help="Significance level.")] = 0.05,
    assignments: Annotated[
        str | None, typer.Option("--assignments", help="Assignment table, or a .parquet/.csv file.")
    ] = None,
    unit_column: Annotated[str | None, typer.Option("--unit-column", help="Assignment unit column.")] = None,
    variation_column: Annotated[str | None, typer.Option("--variation-column", help="Variation column.")] = None,
    exposure_column: Annotated[
        str | None, typer.Option("--exposure-column", help="Exposure time column.")
    ] = None,
    experiment_column: Annotated[
        str | None, typer.Option("--experiment-column", help="Experiment key column.")
    ] = None,
    events: Annotated[
        str | None, typer.Option("--events", help="Event table, or a .parquet/.csv file.")
    ] = None,
    event_unit_column: Annotated[
        str | None, typer.Option("--event-unit-column", help="Event unit column (default: --unit-column).")
    ] = None,
    event_name_column: Annotated[
        str | None, typer.Option("--event-name-column", help="Event name column.")
    ] = None,
    value_column: Annotated[str | None, typer.Option("--value-column", help="Event value column.")] = None,
    timestamp_column: Annotated[
        str | None, typer.Option("--timestamp-column", help="Event timestamp column.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    show_sql: Annotated[bool, typer.Option("--show-sql", help="Print the query that ran.")] = False,
) -> None:
    """Print each metric's summary statistics per variation and the effect against control."""
    if method not in stats_engine.METHODS:
        raise ValidationFailed(
            f"unknown method {method!r}; choose one of {', '.join(stats_engine.METHODS)}", field="--method"
        )
    if correction not in (*stats_engine.CORRECTIONS, "none"):
        raise ValidationFailed(f"unknown correction {correction!r}; choose holm, bh or none", field="--correction")
    metrics, tables, file_control = _load_metrics_file(metrics_file) if metrics_file else (None, None, None)
    try:
        tables = with_overrides(
            tables or Tables(),
            {
                "assignments": assignments,
                "unit_id": unit_column,
                "variation": variation_column,
                "first_exposure_at": exposure_column,
                "experiment": experiment_column,
                "events": events,
                "event_unit_id": event_unit_column or unit_column,
                "name": event_name_column,
                "value": value_column,
                "at": timestamp_column,
            },
        )
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, field=FLAGS.get(exc.field or "", exc.field)) from None
    engine = _engine(source)
    local = _local_files(tables, source)
    try:
        metrics = metrics or _discover_metrics(engine, local)
        evidence = run_experiment(engine, experiment, metrics, tables=local)
    except QueryFailed as exc:
        attr, message = explain(exc.message, tables, _where(source), fix=with_flag)
        raise ValidationFailed(message, field=FLAGS[attr] if attr else exc.field) from None
    names = sorted(evidence.units)
    chosen = control or file_control or ("control" if "control" in names else names[0])
    if chosen not in names:
        raise ValidationFailed(f"no variation {chosen!r}; the experiment has {names}", field="--control")
    variations = [chosen, *(v for v in names if v != chosen)]
    planned = _weights(weights, names)
    rows: list[stats_engine.ResultRow] = []
    if len(variations) > 1:
        try:
            rows = stats_engine.analyze(
                summary_table(evidence, variations, planned),
                method=method,  # type: ignore[arg-type]
                cuped=True,
                correction=None if correction == "none" else correction,  # type: ignore[arg-type]
                alpha=alpha,
            )
        except stats_engine.TableError as exc:
            raise ValidationFailed(str(exc), field=f"--{exc.column}") from None
    p_srm = srm_p_value(evidence.units, planned) if len(variations) > 1 else None
    if as_json:
        payload = {
            "experiment": experiment,
            "control": chosen,
            "method": method,
            "correction": correction,
            "alpha": alpha,
            "mapping": mapping_of(tables),
            "metrics": [
                {"name": m.name, "aggregation": m.aggregation, "events": list(m.select.events)} for m in metrics
            ],
            "units": dict(evidence.units),
            "excluded_units": evidence.excluded_units,
            "srm": {
                "p_value": p_srm,
                "planned": planned or dict.fromkeys(names, 1.0),
                "mismatch": p_srm is not None and p_srm < 0.001,
            },
            "results": [r.to_dict() for r in rows],
        }
        if show_sql:
            payload["sql"] = evidence.query.sql
            if evidence.quantile_query is not None:
                payload["quantile_sql"] = evidence.quantile_query.sql
        typer.echo(json.dumps(_json_safe(payload), indent=2))
        return
    _print(experiment, metrics, evidence, variations, chosen, rows, method, alpha)
    units = ", ".join(f"{escape(v)} {evidence.units[v]:,}" for v in variations)
    if evidence.excluded_units:
        units += f" ({evidence.excluded_units:,} assigned to more than one variation: excluded)"
    if p_srm is not None:
        against = "the planned split" if planned else "an equal split"
        flag = (
            f"[red]SAMPLE RATIO MISMATCH[/red] (p < 0.001 against {against})"
            if p_srm < 0.001
            else f"no sample ratio mismatch against {against}"
        )
        console.print(f"Units: {units}; SRM p = {p_srm:.4g}: {flag}")
    else:
        console.print(f"Units: {units}; only one variation, so no comparison")
    if show_sql:
        console.print(escape(evidence.query.sql), highlight=False)
        if evidence.quantile_query is not None:
            console.print(escape(evidence.quantile_query.sql), highlight=False)


def _print(
    experiment: str,
    metrics: list[Metric],
    evidence: Evidence,
    variations: list[str],
    chosen: str,
    rows: list[stats_engine.ResultRow],
    method: str,
    alpha: float,
) -> None:
    bayes = method == "bayesian"
    level = f"{100 * (1 - alpha):g}%"
    table = Table(
        title=f"Experiment {escape(experiment)}: {len(metrics)} metrics, control {escape(chosen)}, {method}"
    )
    last = "Chance to win" if bayes else "p-value"
    for column in ("Metric", "Variation", "n", "Mean", "Std dev", "Effect", f"{level} interval", last, "Kind"):
        table.add_column(
            column,
            justify="left" if column in ("Metric", "Variation", "Kind") else "right",
            overflow="fold",
        )
    by_key = {(r.metric, r.variation): r for r in rows}
    for metric in metrics:
        for i, variation in enumerate(variations):
            n, mean, sd = _summary(evidence.metrics[metric.name][variation])
            lift = ci = p = kind = ""
            r = by_key.get((metric.name, variation))
            if r is not None:
                kind = r.kind
                if r.not_enough_data:
                    lift, ci = "not enough data", escape(str(r.reason))
                else:
                    pct = r.scale == "relative"
                    eff = r.effect_relative if pct else r.effect
                    # As on the results page: Bayesian relative intervals, else the corrected ones.
                    if pct and bayes:
                        lo, hi = r.ci_low_relative, r.ci_high_relative
                    else:
                        lo, hi = r.ci_low_adjusted, r.ci_high_adjusted
                    show = (lambda x: f"{100 * x:+.2f}%") if pct else (lambda x: f"{x:+.4g}")
                    lift = show(eff)
                    ci = "—" if math.isnan(lo) else f"{show(lo)} to {show(hi)}"
                    value = r.chance_to_win if bayes else r.p_value_adjusted
                    p = "—" if math.isnan(value) else (f"{value:.1%}" if bayes else f"{value:.4f}")
            label = f"{escape(metric.name)}\n[dim]{metric.aggregation}[/dim]"
            table.add_row(label if i == 0 else "", escape(variation), n, mean, sd, lift, ci, p, escape(kind))
        table.add_section()
    console.print(table)


evidence_app.command("run")(run)
