"""`truenorth analyze FILE.csv|FILE.parquet`: experiment results from a file, no server or database.

Two kinds of file are understood, told apart by their columns:

* summary statistics: ``metric, variation, n, sum, sum_squares`` per metric x variation, plus the
  optional columns of :mod:`truenorth.stats.engine` (ratio denominators, CUPED covariates, type,
  inverse, users, weight);
* raw events: ``unit, variation, metric, value`` (one row per event; a row with an empty metric only
  assigns the unit). DuckDB sums each unit's values per metric and then summarises per variation;
  units without events for a metric count as 0.

Registered in truenorth/cli.py. Bad files give one ``error:`` line naming the column (exit 2).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from truenorth.stats import engine

if TYPE_CHECKING:  # imported when a file is read: `truenorth serve` forks workers from the CLI's process,
    import duckdb  # and a DuckDB instance inherited across fork aborts the worker when it exits

console = Console()
RAW_COLUMNS = ("unit", "variation", "metric", "value")


class AnalyzeError(click.ClickException):
    """A bad file or option: printed as one ``error:`` line, exit code 2."""

    exit_code = 2


def _connect_and_read(path: Path) -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyRelation]:
    import duckdb

    if not path.is_file():
        raise AnalyzeError(f"FILE: no such file: {path}")
    suffix = path.suffix.lower()
    con = duckdb.connect(":memory:")
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            rel = con.read_csv(str(path), header=True)
        elif suffix in (".parquet", ".pq"):
            rel = con.read_parquet(str(path))
        else:
            raise AnalyzeError(f"FILE: unsupported file type '{suffix or path.name}': use .csv or .parquet")
    except duckdb.Error as exc:
        con.close()
        raise AnalyzeError(f"FILE: cannot read {path.name}: {str(exc).splitlines()[0]}") from None
    return con, rel


def _columns(rel: duckdb.DuckDBPyRelation) -> list[str]:
    return [c.strip().lower() for c in rel.columns]


#: `truenorth analyze` flags naming a raw-event file's columns (the same flags as `evidence run`).
RAW_FLAGS = {
    "unit": "--unit-column",
    "variation": "--variation-column",
    "metric": "--event-name-column",
    "value": "--value-column",
}


def _quoted(name: str) -> str:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


def read_table(path: Path, columns: dict[str, str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The file as summary rows (raw events aggregated first): ``("summary"|"raw", rows)``.
    ``columns`` maps a raw-event column (``unit``, ``variation``, ``metric``, ``value``) to the file's
    own name for it (a file column already called that is then ignored)."""
    import duckdb

    con, rel = _connect_and_read(path)
    try:
        original = list(rel.columns)
        cols = _columns(rel)
        if len(set(cols)) != len(cols):
            dup = next(c for c in cols if cols.count(c) > 1)
            raise AnalyzeError(f"{dup}: the column appears twice")
        for canonical, given in (columns or {}).items():
            if given.strip().lower() not in cols:
                raise AnalyzeError(
                    f"{RAW_FLAGS[canonical]}: no column `{given}` in {path.name} (it has {', '.join(original)})"
                )
            cols = ["" if c == canonical else c for c in cols]
            cols[cols.index(given.strip().lower())] = canonical
        kept = [(o, c) for o, c in zip(original, cols, strict=True) if c]
        cols = [c for _, c in kept]
        con.register("src_raw", rel)
        select = ", ".join(f"{_quoted(o)} AS {_quoted(c)}" for o, c in kept)
        con.execute(f"CREATE TEMP VIEW src AS SELECT {select} FROM src_raw")  # noqa: S608 (names from the file header, quoted)
        if "unit" in cols:
            for c in RAW_COLUMNS:
                if c not in cols:
                    raise AnalyzeError(
                        f"{c}: required column is missing (a raw-event file needs {', '.join(RAW_COLUMNS)})"
                    )
            return "raw", _aggregate_raw(con)
        for c in engine.REQUIRED:
            if c not in cols:
                raise AnalyzeError(
                    f"{c}: required column is missing (a summary file needs {', '.join(engine.REQUIRED)}; "
                    f"a raw-event file needs {', '.join(RAW_COLUMNS)})"
                )
        cur = con.execute("SELECT * FROM src")
        names = [d[0] for d in cur.description]
        return "summary", [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    except duckdb.Error as exc:
        raise AnalyzeError(f"FILE: cannot read {path.name}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _aggregate_raw(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    con.execute(
        """
        CREATE TEMP VIEW ev AS
        SELECT CAST(unit AS VARCHAR) AS u, CAST(variation AS VARCHAR) AS v,
               NULLIF(TRIM(CAST(metric AS VARCHAR)), '') AS m,
               TRY_CAST(value AS DOUBLE) AS x, value AS raw_value
        FROM src
        """
    )
    checks = [
        ("unit", "SELECT count(*) FROM ev WHERE u IS NULL OR TRIM(u) = ''", "empty unit id"),
        ("variation", "SELECT count(*) FROM ev WHERE v IS NULL OR TRIM(v) = ''", "empty variation name"),
        (
            "value",
            "SELECT count(*) FROM ev WHERE raw_value IS NOT NULL AND x IS NULL AND TRIM(CAST(raw_value AS VARCHAR)) <> ''",
            "not a number",
        ),
        ("value", "SELECT count(*) FROM ev WHERE NOT isfinite(x)", "NaN or infinite value"),
    ]
    for column, sql, message in checks:
        row = con.execute(sql).fetchone()
        bad = int(row[0]) if row else 0
        if bad:
            raise AnalyzeError(f"{column}: {bad} row(s) with {message}")
    row = con.execute("SELECT u FROM ev GROUP BY u HAVING count(DISTINCT v) > 1 LIMIT 1").fetchone()
    if row:
        raise AnalyzeError(f"variation: unit {row[0]!r} appears in more than one variation")
    cur = con.execute(
        """
        WITH units AS (SELECT v, count(DISTINCT u) AS n FROM ev GROUP BY v),
             metrics AS (SELECT DISTINCT m FROM ev WHERE m IS NOT NULL),
             per_unit AS (SELECT m, v, u, sum(coalesce(x, 0)) AS x FROM ev WHERE m IS NOT NULL GROUP BY m, v, u),
             agg AS (SELECT m, v, sum(x) AS s, sum(x * x) AS ss FROM per_unit GROUP BY m, v),
             first_seen AS (SELECT v, min(rowid_) AS r FROM (SELECT v, row_number() OVER () AS rowid_ FROM ev) GROUP BY v)
        SELECT metrics.m, units.v, units.n, coalesce(agg.s, 0), coalesce(agg.ss, 0)
        FROM metrics CROSS JOIN units
        LEFT JOIN agg ON agg.m = metrics.m AND agg.v = units.v
        JOIN first_seen ON first_seen.v = units.v
        ORDER BY metrics.m, first_seen.r
        """
    )
    rows = [
        {
            "metric": m,
            "variation": v,
            "n": float(n),
            "sum": float(s),
            "sum_squares": float(ss),
            "users": float(n),
        }
        for m, v, n, s, ss in cur.fetchall()
    ]
    if not rows:
        raise AnalyzeError("metric: no events with a metric name")
    return rows


def _fmt(x: float, pct: bool) -> str:
    if math.isnan(x):
        return "-"
    return f"{x * 100:+.2f}%" if pct else f"{x:+.4g}"


def _print_table(rows: list[engine.ResultRow], method: str) -> None:
    bayes = method == "bayesian"
    table = Table(title=f"Results ({method})")
    for name in ("Metric", "Variation", "Control mean", "Treatment mean", "Scale", "Effect", "Interval"):
        table.add_column(name)
    if bayes:
        table.add_column("Chance to win")
        table.add_column("Risk (treatment)")
    else:
        table.add_column("p (corrected)")
        table.add_column("p (uncorrected)")
    table.add_column("Note")
    for r in rows:
        pct = r.scale == "relative"
        eff = r.effect_relative if pct else r.effect
        lo, hi = (
            (r.ci_low_relative, r.ci_high_relative)
            if bayes and pct
            else (r.ci_low, r.ci_high)
            if bayes
            else (r.ci_low_adjusted, r.ci_high_adjusted)
        )
        interval = "-" if math.isnan(lo) else f"{_fmt(lo, pct)} to {_fmt(hi, pct)}"
        note = (
            f"not enough data: {r.reason}" if r.not_enough_data else ("significant" if r.significant else "")
        )
        if bayes:
            extra = [
                "-" if math.isnan(r.chance_to_win) else f"{r.chance_to_win:.1%}",
                _fmt(r.risk_treatment, pct),
            ]
        else:
            extra = [
                "-" if math.isnan(r.p_value_adjusted) else f"{r.p_value_adjusted:.4g}",
                "-" if math.isnan(r.p_value) else f"{r.p_value:.4g}",
            ]
        table.add_row(
            escape(r.metric),
            escape(r.variation),
            "-" if math.isnan(r.control_mean) else f"{r.control_mean:.4g}",
            "-" if math.isnan(r.treatment_mean) else f"{r.treatment_mean:.4g}",
            r.scale,
            _fmt(eff, pct),
            interval,
            *extra,
            escape(note),
        )
    console.print(table)
    summary = engine.correction_summary(rows)
    if summary:
        console.print(f"Correction: {escape(summary)}")


def analyze(
    file: Annotated[
        Path, typer.Argument(help="A .csv or .parquet file of summary statistics or raw events.")
    ],
    method: Annotated[str, typer.Option(help="frequentist, sequential or bayesian.")] = "frequentist",
    alpha: Annotated[float, typer.Option(help="Significance level (intervals at 1 - alpha).")] = 0.05,
    correction: Annotated[
        str, typer.Option(help="Multiple-comparison correction: holm, bh or none.")
    ] = "holm",
    cuped: Annotated[
        bool | None,
        typer.Option("--cuped/--no-cuped", help="CUPED with the covariate columns (default: when present)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    unit_column: Annotated[
        str | None, typer.Option("--unit-column", help="Raw events: the file's unit column (default unit).")
    ] = None,
    variation_column: Annotated[
        str | None, typer.Option("--variation-column", help="Raw events: the variation column.")
    ] = None,
    event_name_column: Annotated[
        str | None,
        typer.Option("--event-name-column", help="Raw events: the event name (metric) column (default metric)."),
    ] = None,
    value_column: Annotated[str | None, typer.Option("--value-column", help="Raw events: the value column.")] = None,
) -> None:
    """Compare every variation with the control for every metric in a summary or raw-event file."""
    if method not in engine.METHODS:
        raise AnalyzeError(f"--method: unknown method '{method}'; choose one of {', '.join(engine.METHODS)}")
    if correction not in (*engine.CORRECTIONS, "none"):
        raise AnalyzeError(f"--correction: unknown correction '{correction}'; choose holm, bh or none")
    if not (0 < alpha < 1):
        raise AnalyzeError(f"--alpha: must be between 0 and 1, got {alpha}")
    named = {"unit": unit_column, "variation": variation_column, "metric": event_name_column, "value": value_column}
    kind, rows = read_table(file, {k: v for k, v in named.items() if v})
    use_cuped = cuped if cuped is not None else any(c in rows[0] for c in engine.CUPED_COLUMNS)
    try:
        results = engine.analyze(
            rows,
            method=method,  # type: ignore[arg-type]
            cuped=use_cuped,
            correction=None if correction == "none" else correction,  # type: ignore[arg-type]
            alpha=alpha,
        )
    except engine.TableError as exc:
        raise AnalyzeError(str(exc)) from None
    if as_json:
        typer.echo(
            json.dumps({"file": str(file), "kind": kind, "results": [r.to_dict() for r in results]}, indent=2)
        )
        return
    _print_table(results, method)
    if results:
        srm_p = results[0].srm_p_value
        if results[0].srm_mismatch:
            console.print(
                f"[red]Sample ratio mismatch[/red]: {engine.format_p_value(srm_p)}; the split is not as planned."
            )
        elif not math.isnan(srm_p):
            console.print(f"Sample ratio check: {engine.format_p_value(srm_p)} (no mismatch).")
    for r in results:
        console.print(escape(r.sentence))
