"""Running a query on a DuckDB source: one SELECT, read-only, inside the organisation's files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from truenorth.core.errors import ValidationFailed
from truenorth.engines.base import (
    MAX_ROWS,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
)
from truenorth.engines.duckdb_engine import DuckDBConnector
from truenorth.measures.models import DataSource
from truenorth.measures.sources._common import (
    DUCKDB_MEMORY_LIMIT,
    QueryFailed,
    SourceUnavailable,
    _Result,
    _short,
    engine_failure,
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


class _SourceConnector(DuckDBConnector):
    """The engines' DuckDB connector with a data source's wording. DuckDB's own parser has already
    decided the query is one SELECT (`_duckdb_single_select`, again in the connector), and the engine
    confines files (``allowed_paths``, ``enable_external_access=false``, ``lock_configuration``), so
    the SQL check of `truenorth.engines` is not applied again: its refusals would hide DuckDB's."""

    def __init__(self, config: dict[str, Any], source: DataSource) -> None:
        super().__init__(
            config,
            Limits(timeout_seconds=source.timeout_seconds, max_rows=MAX_ROWS),
            memory_limit_mb=_MEMORY_LIMIT_MB,
        )
        self.source = source

    def check(self, sql: str) -> None:
        """Nothing to add (see the class)."""

    def _timeout(self) -> EngineTimeout:
        return EngineTimeout(_timeout_message(self.source), field="query")

    def translate(self, exc: BaseException) -> EngineError:
        import duckdb

        if isinstance(exc, duckdb.InterruptException):
            return self._timeout()
        if not self.connected:
            path = self.config.get("path") or "(in memory)"
            if isinstance(exc, duckdb.Error) and self.connection is None:
                return EngineUnavailable(f"DuckDB could not start: {_short(exc)}", field="config")
            return EngineUnavailable(f"Cannot open the DuckDB database {path}: {_short(exc)}", field="config")
        return EngineError(f"The query failed: {_short(exc)}", field="query")


_MEMORY_LIMIT_MB = int(DUCKDB_MEMORY_LIMIT.removesuffix("GB")) * 1024


def _timeout_message(source: DataSource) -> str:
    return (
        f"The query took longer than {source.timeout_seconds} s and was stopped "
        "(the data source's time limit)."
    )


def _run_duckdb(
    source: DataSource, config: dict[str, Any], text: str, limit: int, extra_files: Sequence[str] = ()
) -> _Result:
    """The source's query on `truenorth.engines`' DuckDB connector, after this module's organisation
    checks (paths inside its directories, no links leading out). At most ``limit + 1`` rows (one more
    tells "there is more")."""
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
    # A listed file removed since cannot be read anyway; the others still can.
    present = [f for f in files if Path(f).exists()]
    connector = _SourceConnector({"path": path, "files": present}, source)
    rows: list[tuple[Any, ...]] = []
    try:
        with connector:
            results = connector.stream(text)
            try:
                for row in results:
                    rows.append(row)
                    if len(rows) > limit:
                        break
            finally:
                results.close()
            columns = list(connector.columns)
    except EngineError as exc:
        raise engine_failure(exc, limit) from None
    return _Result(columns, rows)


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
