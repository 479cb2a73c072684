"""Queries on any source: the static checks, running with the limits, the (timestamp, value) shape,
and the preview."""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import math
from collections.abc import Iterable, Sequence
from typing import Any

from django.conf import settings
from django.utils import timezone

from truenorth.core.errors import ValidationFailed
from truenorth.measures.models import DataSource, DataSourceKind
from truenorth.measures.sources._common import (
    DEFAULT_LIMIT,
    MAX_QUERY_LENGTH,
    QueryFailed,
    SourceUnavailable,
    _Result,
    decrypt_config,
    engine_failure,
)
from truenorth.measures.sources.config import public_config
from truenorth.measures.sources.duckdb_runner import _duckdb_single_select, _run_duckdb
from truenorth.measures.sources.engine_config import runtime_config
from truenorth.measures.sources.kinds import KINDS, dialect_of, kind_info
from truenorth.measures.sources.postgres_runner import _run_postgres


def check_query(source: DataSource, query: str) -> str:
    """Static checks before running (also for saving a measure): length, and for DuckDB exactly one
    SELECT statement. Returns the query without a trailing semicolon."""
    if not isinstance(query, str) or not query.strip():
        raise QueryFailed("The query is empty.")
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryFailed(f"The query is too long ({len(query)} characters; at most {MAX_QUERY_LENGTH}).")
    text = query.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if source.kind == DataSourceKind.DUCKDB:
        _duckdb_single_select(text)
    elif kind_info(source.kind).connector:
        _read_only(text, dialect_of(source))
    return text


def _read_only(text: str, dialect: str) -> None:
    """The engines' read-only check (one SELECT; no file, URL or code functions), as a query error."""
    from truenorth.engines.base import EngineError

    try:
        from truenorth.engines.readonly import check_read_only
    except ImportError:  # pragma: no cover - the engines layer ships with TrueNorth
        return
    try:
        check_read_only(text, dialect)
    except EngineError as exc:
        raise QueryFailed(exc.message) from None


def _run_connector(source: DataSource, config: dict[str, Any], text: str, limit: int) -> _Result:
    """Run on a `truenorth.engines` connector: settings checked again now (`runtime_config`), then the
    connector's read-only check, timeout (cancelled on the engine) and byte cap. Returns at most
    ``limit + 1`` rows, like the DuckDB and PostgreSQL runners (one more tells "there is more")."""
    from truenorth.engines import registry
    from truenorth.engines.base import (
        EngineError,
        Limits,
    )

    try:
        runtime = runtime_config(source.kind, config, source.organisation_id)
    except QueryFailed:
        raise
    except ValidationFailed as exc:  # a setting no longer passes: say which, as a query failure
        raise QueryFailed(f"The data source's settings: {exc.message}", field=exc.field or "config") from None
    limits = Limits(
        timeout_seconds=source.timeout_seconds,
        connect_timeout_seconds=settings.TRUENORTH_ENGINES_CONNECT_TIMEOUT,
        max_rows=max(limit + 2, 1000),
    )
    # As the PostgreSQL runner does: the engine computes and sends at most limit + 1 rows. The newlines
    # keep a trailing comment in the query from swallowing the parenthesis.
    wrapped = f"SELECT * FROM (\n{text}\n) AS truenorth_query LIMIT {int(limit) + 1}"  # noqa: S608
    rows: list[tuple[Any, ...]] = []
    columns: list[str] = []
    try:
        connector = registry.connect(source.kind, runtime, limits)
        with connector:
            stream = connector.stream(wrapped)
            try:
                for row in stream:
                    rows.append(tuple(row))
                    if len(rows) > limit:
                        break
            finally:
                stream.close()
            columns = [str(c) for c in getattr(connector, "columns", None) or []]
    except EngineError as exc:
        raise engine_failure(exc, limit) from None
    if not columns and rows:
        columns = [f"column{i + 1}" for i in range(len(rows[0]))]
    return _Result(columns=columns, rows=rows)


def execute(source: DataSource, query: str, limit: int, *, files: Sequence[str] = ()) -> _Result:
    """Run one read-only query. ``files``: further files of the organisation the query may read (DuckDB
    only; each must pass the organisation's directory rules, like the source's own `files`). The
    connector kinds (Spark, chDB, ClickHouse, Trino, BigQuery, Snowflake) run through
    `truenorth.engines.registry.connect` with the source's time limit."""
    text = check_query(source, query)
    ceiling = settings.TRUENORTH_MAX_QUERY_SECONDS  # the instance-wide cap on any query's time
    if source.timeout_seconds > ceiling:
        source = copy.copy(source)  # not saved: the cap applies to this run only
        source.timeout_seconds = ceiling
    config = decrypt_config(source)
    if source.kind == DataSourceKind.DUCKDB:
        return _run_duckdb(source, config, text, limit, files)
    if files:
        raise QueryFailed("Only a DuckDB data source reads Parquet or CSV files.", field="files")
    if source.kind == DataSourceKind.POSTGRES:
        return _run_postgres(source, config, text, limit)
    if source.kind in KINDS:
        return _run_connector(source, config, text, limit)
    raise SourceUnavailable(f"Unknown data source kind '{source.kind}'.")


def _probe(source: DataSource) -> str:
    result = execute(source, "SELECT 1", 1)
    if result.rows != [(1,)]:
        raise SourceUnavailable("The data source answered a test query unexpectedly.")
    if source.kind == DataSourceKind.POSTGRES:
        return f"Connected to PostgreSQL at {public_config(source).get('dsn', '')} (read-only)."
    if source.kind != DataSourceKind.DUCKDB:
        shown = public_config(source)
        where = shown.get("url") or shown.get("master") or shown.get("driver") or "the organisation's files"
        name = source.get_kind_display().split(" (")[0]
        return f"Connected to {name} ({where}); a test query ran read-only."
    config = decrypt_config(source)
    where = config.get("path") or "an in-memory database"
    return f"Opened DuckDB {where} read-only."


def _timestamp(value: Any, row: int) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise QueryFailed(
                f"Row {row}: the first column must be a timestamp or date, got the text “{value[:40]}”."
            ) from None
    if isinstance(value, dt.datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if value is None:
        raise QueryFailed(f"Row {row}: the timestamp is empty (NULL).")
    raise QueryFailed(f"Row {row}: the first column must be a timestamp or date, got {type(value).__name__}.")


def _value(value: Any, row: int) -> float:
    if value is None:
        raise QueryFailed(f"Row {row}: the value is empty (NULL); filter such rows out in the query.")
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise QueryFailed(
            f"Row {row}: the second column must be a number, got {type(value).__name__} "
            "(cast it in the query)."
        )
    number = float(value)
    if not math.isfinite(number):
        raise QueryFailed(f"Row {row}: the value is not a finite number ({value}).")
    return number


def shape(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[tuple[dt.datetime, float]]:
    """Check a result is (timestamp, number) rows with distinct timestamps; return them sorted."""
    if len(columns) != 2:
        listed = ", ".join(columns) if columns else "none"
        raise QueryFailed(
            f"Wrong shape: the query must return exactly two columns (timestamp, value); it returned "
            f"{len(columns)}: {listed}."
        )
    seen: dict[dt.datetime, int] = {}
    out = []
    for number, row in enumerate(rows, start=1):
        observed_at = _timestamp(row[0], number)
        value = _value(row[1], number)
        if observed_at in seen:
            raise QueryFailed(
                f"Rows {seen[observed_at]} and {number} have the same timestamp {observed_at.isoformat()}; "
                "aggregate them in the query."
            )
        seen[observed_at] = number
        out.append((observed_at, value))
    out.sort(key=lambda pair: pair[0])
    return out


def run_query(
    source: DataSource, query: str, *, limit: int = DEFAULT_LIMIT
) -> list[tuple[dt.datetime, float]]:
    """Run a measure's query read-only within the source's time limit; return (observed_at, value) pairs
    (sorted by time, aware datetimes). Raises QueryFailed (SourceUnavailable, QueryTimeout) with a
    message fit to show on the measure page."""
    result = execute(source, query, limit)
    if len(result.rows) > limit:
        raise QueryFailed(
            f"The query returned more than {limit:,} rows; aggregate or filter it (e.g. one row per day)."
        )
    return shape(result.columns, result.rows)


PREVIEW_ROWS = 20


def text_cell(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return "NULL" if value is None else str(value)[:200]


def preview_query(source: DataSource, query: str, *, limit: int = PREVIEW_ROWS) -> dict[str, Any]:
    """The first `limit` rows a query returns (read-only, within the source's time limit), as text,
    and whether a refresh would accept them: {"columns", "rows", "more", "problem", "summary"}.
    Callers check who may run it (`services.require_query_author`). Raises QueryFailed when it cannot run."""
    result = execute(source, query, limit)
    rows = result.rows[:limit]
    try:
        shape(result.columns, rows)
        problem = ""
    except QueryFailed as exc:
        problem = exc.message
    more = len(result.rows) > limit
    count = f"the first {len(rows)} rows" if more else f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    summary = f"The query returned {count} from “{source.name}”."
    if problem:
        summary += f" A refresh would refuse them: {problem}"
    return {
        "columns": list(result.columns),
        "rows": [[text_cell(v) for v in row] for row in rows],
        "more": more,
        "problem": problem,
        "summary": summary,
    }
