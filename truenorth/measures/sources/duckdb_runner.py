"""Running a query on a DuckDB source: one SELECT, read-only, inside the organisation's files."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from truenorth.core.errors import ValidationFailed
from truenorth.measures.models import DataSource
from truenorth.measures.sources._common import (
    DUCKDB_MEMORY_LIMIT,
    QueryFailed,
    QueryTimeout,
    SourceUnavailable,
    _Result,
    _short,
)
from truenorth.measures.sources.config import _inside, allowed_path, organisation_directories
from truenorth.orgs.models import Organisation


def _duckdb_single_select(text: str) -> None:
    import duckdb

    parser = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        statements = parser.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryFailed(f"The query is not valid SQL: {_short(exc)}") from None
    finally:
        parser.close()
    if len(statements) != 1:
        raise QueryFailed(f"Give exactly one SELECT statement (found {len(statements)}).")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryFailed(
            f"Only a SELECT (or WITH … SELECT) query may run; this is a {kind.name} statement. "
            "Data sources are read-only."
        )


def _run_duckdb(
    source: DataSource, config: dict[str, Any], text: str, limit: int, extra_files: Sequence[str] = ()
) -> _Result:
    import duckdb

    path = str(config.get("path") or "")
    files = [str(f) for f in config.get("files") or []] + [str(f) for f in extra_files]
    # Re-check the stored paths: the allowed directories may have been narrowed since.
    for raw in ([path] if path else []) + files:
        try:
            allowed_path(raw, "config", source.organisation_id)
        except ValidationFailed as exc:
            raise SourceUnavailable(exc.message) from None
    if path and not Path(path).is_file():
        raise SourceUnavailable(f"The DuckDB file {path} does not exist (or is not a file).")
    _no_links_out(source.organisation_id, [f for f in files if Path(f).is_dir()])
    try:
        conn = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "memory_limit": DUCKDB_MEMORY_LIMIT,
            },
        )
    except duckdb.Error as exc:
        raise SourceUnavailable(f"DuckDB could not start: {_short(exc)}") from None
    try:
        try:
            if path:
                conn.execute(f"ATTACH {_sql_string(path)} AS source (READ_ONLY)")
                conn.execute("USE source")
            directories = [f.rstrip("/") + "/" for f in files if Path(f).is_dir()]
            plain = [f for f in files if not Path(f).is_dir()]
            if directories:
                conn.execute(f"SET allowed_directories = {_sql_list(directories)}")
            if plain:
                conn.execute(f"SET allowed_paths = {_sql_list(plain)}")
            conn.execute("SET enable_external_access = false")
            conn.execute("SET lock_configuration = true")
        except duckdb.Error as exc:
            raise SourceUnavailable(f"Cannot open the DuckDB database {path}: {_short(exc)}") from None
        timer = threading.Timer(source.timeout_seconds, conn.interrupt)
        timer.daemon = True
        started = time.monotonic()
        timer.start()
        try:
            # TIMESTAMPTZ columns come back as UTC instants (converting them in Python needs pytz).
            relation = conn.sql(text)
            names, types = list(relation.columns), [str(t) for t in relation.types]
            zoned = [i for i, name in enumerate(types) if name == "TIMESTAMP WITH TIME ZONE"]
            if zoned:
                picks = ", ".join(
                    f"timezone('UTC', #{i + 1})" if i in zoned else f"#{i + 1}" for i in range(len(types))
                )
                cursor = conn.execute(f"SELECT {picks} FROM (\n{text}\n) AS truenorth_query")  # noqa: S608
            else:
                cursor = conn.execute(text)
            columns = names if zoned else [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(limit + 1)
            if zoned:
                rows = [_utc_columns(row, zoned) for row in rows]
        except duckdb.InterruptException:
            raise QueryTimeout(
                f"The query took longer than {source.timeout_seconds} s and was stopped "
                "(the data source's time limit)."
            ) from None
        except duckdb.Error as exc:
            if time.monotonic() - started >= source.timeout_seconds:
                raise QueryTimeout(
                    f"The query took longer than {source.timeout_seconds} s and was stopped."
                ) from None
            raise QueryFailed(f"The query failed: {_short(exc)}") from None
        finally:
            timer.cancel()
        return _Result(columns, rows)
    finally:
        conn.close()


MAX_SCANNED_ENTRIES = 100_000


def _no_links_out(organisation: Organisation | int, directories: list[str]) -> None:
    """Refuse a listed directory holding a symbolic link that leads outside the organisation's
    directories: DuckDB would list (glob) through it, naming another organisation's files."""
    allowed = organisation_directories(organisation)
    seen = 0
    for top in directories:
        for folder, subdirs, names in os.walk(top, followlinks=False):
            for name in subdirs + names:
                seen += 1
                if seen > MAX_SCANNED_ENTRIES:
                    raise SourceUnavailable(
                        f"The listed directories hold more than {MAX_SCANNED_ENTRIES:,} entries; list "
                        "narrower ones."
                    )
                entry = Path(folder) / name
                if entry.is_symlink() and not _inside(entry.resolve(), allowed):
                    raise SourceUnavailable(
                        f"{entry} is a link leading outside this organisation's DuckDB directories; "
                        "the server's operator must remove it."
                    )


def _utc_columns(row: tuple[Any, ...], indexes: list[int]) -> tuple[Any, ...]:
    return tuple(
        v.replace(tzinfo=dt.UTC) if i in indexes and isinstance(v, dt.datetime) else v
        for i, v in enumerate(row)
    )


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_sql_string(v) for v in values) + "]"
