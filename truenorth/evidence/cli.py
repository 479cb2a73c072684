"""`truenorth evidence run`: compute an experiment's summary statistics where its events live.

No Django and no server: the source is a DuckDB file, a directory of Parquet/CSV files, or a
``postgresql://`` URL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from truenorth.core.errors import ValidationFailed
from truenorth.evidence.compile import Tables
from truenorth.evidence.metrics import EVENT_NAME, Metric, Selection, metrics_from_dicts
from truenorth.evidence.run import (
    DuckDBEngine,
    Engine,
    PostgresEngine,
    Stats,
    compare_to_control,
    run_experiment,
    srm_p_value,
)
from truenorth.stats.summary import CupedStats, MeanStats, RatioStats

evidence_app = typer.Typer(
    help="Evidence queries: metric summaries computed where the events live.", no_args_is_help=True
)
console = Console()


def _engine(source: str) -> Engine:
    if source.startswith(("postgres://", "postgresql://")):
        return PostgresEngine(source)
    return DuckDBEngine(Path(source))


def _load_metrics_file(path: Path) -> tuple[list[Metric] | None, Tables | None, str | None]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationFailed(f"cannot read {path}: {str(exc).splitlines()[0]}", field="--metrics") from None
    if isinstance(data, list):
        data = {"metrics": data}
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), list):
        raise ValidationFailed(f"{path} needs a `metrics:` list", field="--metrics")
    unknown = sorted(set(data) - {"metrics", "tables", "control"})
    if unknown:
        raise ValidationFailed(f"{path}: unknown keys {unknown}", field="--metrics")
    tables = None
    if data.get("tables") is not None:
        if not isinstance(data["tables"], dict):
            raise ValidationFailed("tables must be a mapping", field="--metrics")
        try:
            tables = Tables(**{str(k): str(v) for k, v in data["tables"].items()})
        except TypeError as exc:
            raise ValidationFailed(f"tables: {exc}", field="--metrics") from None
    control = data.get("control")
    return metrics_from_dicts(data["metrics"]), tables, str(control) if control is not None else None


def _discover_metrics(engine: Engine, tables: Tables) -> list[Metric]:
    """Without a metrics file: a count and a conversion metric per event name (at most 20 names)."""
    from truenorth.evidence.compile import quoted_column, quoted_table

    column, table = quoted_column(tables.name, engine.dialect), quoted_table(tables.events, engine.dialect)
    sql = f"SELECT DISTINCT {column} FROM {table} LIMIT 21"  # noqa: S608 (validated, quoted identifiers)
    names = sorted(str(r[0]) for r in engine.fetch(sql) if r[0] is not None and EVENT_NAME.match(str(r[0])))[
        :20
    ]
    metrics: list[Metric] = []
    for name in names:
        slug = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:28] or "event"
        slug = slug if slug[0].isalpha() else f"e_{slug}"
        if any(m.name == f"{slug}_count" for m in metrics):
            continue
        metrics.append(Metric(f"{slug}_count", "count", Selection((name,))))
        metrics.append(Metric(f"{slug}_converted", "proportion", Selection((name,))))
    if not metrics:
        raise ValidationFailed(
            "the events table has no events to summarise; pass --metrics", field="--metrics"
        )
    return metrics


def _fmt(value: Any, digits: int = 4) -> str:
    x = float(value)
    if x != x:
        return "—"
    return f"{x:,.{digits}g}" if abs(x) < 1e6 else f"{x:,.0f}"


def _summary(stats: Stats) -> tuple[str, str, str]:
    """(n, mean, standard deviation) of the metric per unit."""
    if isinstance(stats, CupedStats):
        base: MeanStats | RatioStats = stats.post
    else:
        base = stats
    variance = np.asarray(base.variance, dtype=np.float64)
    sd = np.sqrt(np.where(variance >= 0, variance, np.nan)) if np.isfinite(variance) else variance
    return _fmt(base.n, 9), _fmt(base.mean), _fmt(sd)


def run(
    source: Annotated[
        str,
        typer.Option(
            "--source", help="A DuckDB file, a directory of Parquet/CSV files, or a postgresql:// URL."
        ),
    ],
    experiment: Annotated[
        str, typer.Option("--experiment", help="The experiment's name in the assignments table.")
    ],
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            "--metrics",
            help="A YAML file of metric definitions (default: a count and a conversion per event name).",
        ),
    ] = None,
    control: Annotated[
        str | None,
        typer.Option("--control", help="The control variation (default: `control`, else the first)."),
    ] = None,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0001, max=0.5, help="Significance level.")] = 0.05,
    show_sql: Annotated[bool, typer.Option("--show-sql", help="Print the query that ran.")] = False,
) -> None:
    """Print each metric's summary statistics per variation and the effect against control."""
    metrics, tables, file_control = _load_metrics_file(metrics_file) if metrics_file else (None, None, None)
    engine = _engine(source)
    tables = tables or Tables()
    metrics = metrics or _discover_metrics(engine, tables)
    evidence = run_experiment(engine, experiment, metrics, tables=tables)
    variations = sorted(evidence.units)
    chosen = control or file_control or ("control" if "control" in variations else variations[0])
    results = compare_to_control(evidence, chosen, alpha=alpha) if len(variations) > 1 else {}
    level = f"{100 * (1 - alpha):g}%"
    table = Table(title=f"Experiment {escape(experiment)}: {len(metrics)} metrics, control {escape(chosen)}")
    for column in ("Metric", "Variation", "n", "Mean", "Std dev", "Lift", f"{level} CI", "p-value", "Method"):
        table.add_column(
            column,
            justify="left" if column in ("Metric", "Variation", "Method") else "right",
            overflow="fold",
        )
    for metric in metrics:
        for i, variation in enumerate(variations):
            n, mean, sd = _summary(evidence.metrics[metric.name][variation])
            lift = ci = p = method = ""
            c = results.get(metric.name, {}).get(variation)
            if c is not None:
                method = c.method
                if bool(c.not_enough_data):
                    lift = "not enough data"
                    ci = escape(str(c.reason))
                else:
                    lift = f"{100 * float(c.effect_relative):+.2f}%"
                    ci = f"{100 * float(c.ci_low_relative):+.2f}% to {100 * float(c.ci_high_relative):+.2f}%"
                    p = f"{float(c.p_value):.4f}"
            label = f"{escape(metric.name)}\n[dim]{metric.aggregation}[/dim]"
            table.add_row(
                label if i == 0 else "",
                escape(variation),
                n,
                mean,
                sd,
                lift,
                ci,
                p,
                method,
            )
        table.add_section()
    console.print(table)
    units = ", ".join(f"{escape(v)} {evidence.units[v]:,}" for v in variations)
    if len(variations) > 1:
        p_srm = srm_p_value(evidence.units)
        flag = (
            "[red]SAMPLE RATIO MISMATCH[/red] (p < 0.001 against an equal split)"
            if p_srm < 0.001
            else "no sample ratio mismatch against an equal split"
        )
        console.print(f"Units: {units}; SRM p = {p_srm:.4g}: {flag}")
    else:
        console.print(f"Units: {units}; only one variation, so no comparison")
    if show_sql:
        console.print(escape(evidence.query.sql), highlight=False)


evidence_app.command("run")(run)
