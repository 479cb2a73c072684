"""DuckDB, embedded: a database file attached read-only and/or Parquet/CSV files as views.

Config: ``{"path": "/abs/x.duckdb" | "", "files": [allowed files or directories], "tables":
{view_name: file_or_directory}}``, plus optional ``"threads"`` and ``"memory_limit_mb"`` (clamped).
The caller (`truenorth.measures.sources`) has already checked the paths belong to the organisation;
here they are checked again to be absolute and to exist. Once the session is set up, DuckDB itself
confines it: the database file is attached ``READ_ONLY`` to an empty in-memory database, file access
outside the listed files/directories (and the tables' files) is off (``enable_external_access=false``
with ``allowed_paths``/``allowed_directories``), extensions are never installed or loaded, and
``lock_configuration`` forbids any further ``SET``. The query is cancelled with ``interrupt()``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from truenorth.engines.base import (
    Connector,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
    NotReadOnly,
    ResultTooLarge,
    first_line,
)
from truenorth.engines.registry import register

DEFAULT_MEMORY_LIMIT_MB = 1024
MAX_MEMORY_LIMIT_MB = 8192
DEFAULT_THREADS = 2
BATCH_ROWS = 2048
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_READERS = {".parquet": "read_parquet", ".csv": "read_csv_auto", ".tsv": "read_csv_auto"}
#: The file readers a query may call: DuckDB itself refuses any file not listed.
FILE_FUNCTIONS = frozenset({"read_parquet", "parquet_scan", "read_csv", "read_csv_auto"})
_NOISE = re.compile(r"\s*(Did you mean|Candidate bindings|Candidate functions|LINE \d+:).*$", re.S)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _clean(message: str) -> str:
    """DuckDB's message without its guesses and the SQL excerpt."""
    text = _NOISE.sub("", message)
    text = re.sub(r"^[A-Za-z ]+ Error:\s*", "", text.strip())
    return first_line(text.rstrip("!. ") or message)


@register
class DuckDBConnector(Connector):
    """DuckDB, embedded in the TrueNorth process (read-only, confined to the source's files)."""

    kind = "duckdb"
    dialect = "duckdb"

    def __init__(
        self,
        config: Mapping[str, Any],
        limits: Limits | None = None,
        *,
        memory_limit_mb: int | None = None,
        threads: int | None = None,
        confine_files: bool = True,
    ) -> None:
        """``confine_files=False`` is for the operator's own process only (the evidence CLI and
        benchmarks, whose mapping may name files anywhere): file access is then not limited to the
        listed files. Never set it from a data source's config."""
        super().__init__(config, limits)
        self.confine_files = confine_files
        wanted_memory = memory_limit_mb or self.config.get("memory_limit_mb") or DEFAULT_MEMORY_LIMIT_MB
        self.memory_limit_mb = min(max(int(wanted_memory), 64), MAX_MEMORY_LIMIT_MB)
        wanted_threads = threads or self.config.get("threads") or DEFAULT_THREADS
        self.threads = min(max(int(wanted_threads), 1), os.cpu_count() or 1)
        self.connection: Any = None

    # -- configuration -------------------------------------------------------------------------
    def _paths(self) -> tuple[str, list[str], dict[str, str]]:
        """The checked (path, files, tables)."""
        path = str(self.config.get("path") or "")
        if path:
            if not os.path.isabs(path):
                raise EngineUnavailable(f"the DuckDB path {path} is not absolute", field="path")
            if not Path(path).is_file():
                raise EngineUnavailable(
                    f"the DuckDB file {path} does not exist (or is not a file)", field="path"
                )
        files = [str(f) for f in self.config.get("files") or []]
        for f in files:
            if not os.path.isabs(f) or not Path(f).exists():
                raise EngineUnavailable(
                    f"the listed file {f} does not exist (or is not absolute)", field="files"
                )
        tables: dict[str, str] = {}
        raw_tables = self.config.get("tables") or {}
        if not isinstance(raw_tables, Mapping):
            raise EngineUnavailable("tables must map view names to files", field="tables")
        for name, target in raw_tables.items():
            name, target = str(name), str(target)
            if not _IDENTIFIER.fullmatch(name):
                raise EngineUnavailable(
                    f"the table name {name!r} is not an identifier", field=f"tables.{name}"
                )
            where = Path(target)
            if not where.is_absolute() or not where.exists():
                raise EngineUnavailable(
                    f"the file {target} of table {name} does not exist (or is not absolute)",
                    field=f"tables.{name}",
                )
            if where.is_dir():
                if not any(where.glob("*.parquet")):
                    raise EngineUnavailable(
                        f"the directory {target} of table {name} holds no Parquet files",
                        field=f"tables.{name}",
                    )
            elif where.suffix.lower() not in _READERS:
                raise EngineUnavailable(
                    f"the file {target} of table {name} is not Parquet or CSV", field=f"tables.{name}"
                )
            tables[name] = target
        return path, files, tables

    def allowed_functions(self) -> frozenset[str]:
        confined = self.confine_files and not (self.config.get("files") or self.config.get("tables"))
        return frozenset() if confined else FILE_FUNCTIONS

    # -- the engine ----------------------------------------------------------------------------
    def _connect(self) -> None:
        import duckdb

        path, files, tables = self._paths()
        self.connection = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "memory_limit": f"{self.memory_limit_mb}MB",
                "threads": self.threads,
                # No replacement scans: `FROM some_name` must never read a Python object of the worker.
                "python_enable_replacements": False,
            },
        )
        conn = self.connection
        if path:
            conn.execute(f"ATTACH {_literal(path)} AS source (READ_ONLY)")
            conn.execute("USE source")
        reachable = list(files)
        for name, target in tables.items():
            where = Path(target)
            if where.is_dir():
                reader, pattern = "read_parquet", str(where / "*.parquet")
            else:
                reader, pattern = _READERS[where.suffix.lower()], target
            reachable.append(target)
            # `name` is an identifier (checked) and the path an escaped literal.
            conn.execute(f'CREATE TEMP VIEW "{name}" AS SELECT * FROM {reader}({_literal(pattern)})')  # noqa: S608
        if self.confine_files:
            directories = sorted({f.rstrip("/") + "/" for f in reachable if Path(f).is_dir()})
            plain = sorted({f for f in reachable if not Path(f).is_dir()})
            if directories:
                conn.execute(f"SET allowed_directories = [{', '.join(map(_literal, directories))}]")
            if plain:
                conn.execute(f"SET allowed_paths = [{', '.join(map(_literal, plain))}]")
            conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")

    def _execute(self, sql: str) -> Iterator[tuple[Any, ...]]:
        import duckdb

        conn = self.connection
        # DuckDB's own parser agrees it is exactly one SELECT (behind the dialect-wide check).
        statements = conn.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise NotReadOnly("only one SELECT query may run on a data source (read-only)", field="query")
        relation = conn.sql(sql)
        names, types = list(relation.columns), [str(t) for t in relation.types]
        zoned = [i for i, name in enumerate(types) if name == "TIMESTAMP WITH TIME ZONE"]
        if zoned:
            # TIMESTAMPTZ comes back as UTC instants (converting them in Python needs pytz).
            picks = ", ".join(
                f"timezone('UTC', #{i + 1})" if i in zoned else f"#{i + 1}" for i in range(len(types))
            )
            cursor = conn.execute(f"SELECT {picks} FROM (\n{sql}\n) AS truenorth_query")  # noqa: S608
        else:
            cursor = conn.execute(sql)
        self.columns = names if zoned else [d[0] for d in cursor.description or []]
        while True:
            batch = cursor.fetchmany(BATCH_ROWS)
            if not batch:
                return
            for row in batch:
                if zoned:
                    row = tuple(
                        v.replace(tzinfo=dt.UTC) if i in zoned and isinstance(v, dt.datetime) else v
                        for i, v in enumerate(row)
                    )
                yield row

    def _cancel(self) -> None:
        if self.connection is not None:
            self.connection.interrupt()

    def _close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def translate(self, exc: BaseException) -> EngineError:
        import duckdb

        message = str(exc)
        text = _clean(message)
        if isinstance(exc, duckdb.InterruptException):
            return EngineTimeout("the query was cancelled on the engine", field="timeout_seconds")
        if isinstance(exc, duckdb.OutOfMemoryException):
            return ResultTooLarge(
                f"the query needs more than {self.memory_limit_mb} MB of memory: aggregate or narrow it",
                field="query",
            )
        if isinstance(exc, duckdb.PermissionException) or "file system operations are disabled" in message:
            found = re.search(r'"([^"]+)"', message)
            what = f'file "{found.group(1)}"' if found else "that file"
            return EngineError(
                f"permission denied: {what} is not among the source's files; list it in files",
                field="files",
            )
        if isinstance(exc, duckdb.CatalogException):
            found = re.search(r"(?:Table|View) with name (\S+?) does not exist", message)
            if found:
                name = found.group(1).strip('"')
                return EngineError(
                    f'table "{name}" does not exist in {self._where()}: check tables.{name} in the mapping',
                    field=f"tables.{name}",
                )
            found = re.search(
                r"(?:Scalar |Table |Aggregate )?Function with name (\S+?) does not exist", message
            )
            if found:
                return EngineError(f"DuckDB has no function {found.group(1)}", field="query")
            return EngineError(f"DuckDB: {text}", field="query")
        if isinstance(exc, duckdb.BinderException):
            found = re.search(r'Table "([^"]+)" does not have a column named "([^"]+)"', message)
            if found:
                table, column = found.groups()
                return EngineError(
                    f'column "{column}" does not exist in table "{table}": check the column names in the mapping',
                    field="query",
                )
            found = re.search(r'Referenced column "([^"]+)" not found', message) or re.search(
                r'column "?([^" ]+)"? (?:not found|does not exist)', message
            )
            if found:
                return EngineError(
                    f'column "{found.group(1)}" does not exist in the query\'s tables ({self._where()}): '
                    "check the column names in the mapping",
                    field="query",
                )
            return EngineError(f"DuckDB could not bind the query: {text}", field="query")
        if isinstance(exc, duckdb.IOException):
            found = re.search(
                r'(?:No files found that match the pattern|Cannot open file|open file) "([^"]+)"', message
            )
            if found:
                return EngineError(
                    f'file "{found.group(1)}" does not exist or cannot be read: check the tables and files of the source',
                    field="tables",
                )
            if not self.connected:
                return EngineUnavailable(
                    f"cannot open the DuckDB database {self.config.get('path') or ''}: {text}", field="path"
                )
            return EngineError(f"DuckDB could not read a file: {text}", field="files")
        if isinstance(exc, duckdb.ParserException):
            return EngineError(f"the query is not valid DuckDB SQL: {text}", field="query")
        if isinstance(exc, duckdb.Error) and not self.connected:
            return EngineUnavailable(f"DuckDB could not open the source: {text}", field="path")
        return EngineError(f"DuckDB: {text}", field="query")

    def _where(self) -> str:
        path = self.config.get("path")
        return f"the DuckDB file {Path(str(path)).name}" if path else "the DuckDB source"
