"""The connector interface every engine implements, and the parts they share.

A connector is built from a plain ``config`` mapping (already checked and decrypted by the caller) and
`Limits`. Subclasses implement ``_connect``, ``_execute`` (start the query, yield its rows), ``_cancel``
(stop the running query *on the engine*), ``_close`` and ``translate`` (an engine error → `EngineError`
naming what to fix). `Connector.fetch` / `Connector.stream` add what every engine shares: the read-only
check before anything is sent, a watchdog that cancels the query at the timeout, the row and byte caps,
and error translation. ``fetch(sql)`` makes every connector an evidence `Engine`
(`truenorth.evidence.run.run_experiment`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Self

from truenorth.core.errors import ValidationFailed

#: Hard ceilings whatever a source asks for (a hostile admin cannot raise them).
MAX_TIMEOUT_SECONDS = 3600
MAX_ROWS = 100_000
MAX_BYTES = 64 * 1024 * 1024
#: How long an error message may be (the first line of the engine's message, clipped).
MAX_MESSAGE_LENGTH = 300

#: Human labels of the known kinds (forms, docs, `truenorth check`).
LABELS: dict[str, str] = {
    "duckdb": "DuckDB",
    "postgres": "PostgreSQL",
    "spark": "Apache Spark",
    "chdb": "ClickHouse (chDB, embedded)",
    "clickhouse": "ClickHouse",
    "trino": "Trino",
    "bigquery": "BigQuery",
    "snowflake": "Snowflake",
}
#: "real": CI runs the kind's SQL on the real engine (ClickHouse: the same engine embedded as chDB;
#: the server connection through clickhouse-connect is not exercised). "compiled": only the SQL it
#: receives is checked (golden SQL).
TESTED: dict[str, str] = {
    "duckdb": "real",
    "postgres": "real",
    "spark": "real",
    "chdb": "real",
    "clickhouse": "compiled",
    "trino": "compiled",
    "bigquery": "compiled",
    "snowflake": "compiled",
}


class EngineError(ValidationFailed):
    """The engine refused or failed a query. The message names the table, column or setting to fix
    (``field`` the form/API field when there is one); never a raw driver trace."""


class EngineUnavailable(EngineError):
    """Cannot connect (address, credentials, engine not installed, connect timeout)."""


class EngineTimeout(EngineError):
    """The query ran longer than the source's timeout and was cancelled on the engine."""


class NotReadOnly(EngineError):
    """A write, DDL, multi-statement or otherwise unsafe query, refused before it was sent."""


class ResultTooLarge(EngineError):
    """More rows or bytes than the caps allow (``cap``: "rows" or "bytes")."""

    def __init__(self, message: str, field: str | None = "query", *, cap: str = "rows") -> None:
        super().__init__(message, field=field)
        self.cap = cap


@dataclass(frozen=True)
class Limits:
    """Per-query limits. Values above the module's ceilings are clamped, not trusted."""

    timeout_seconds: float = 300.0
    connect_timeout_seconds: float = 10.0
    max_rows: int = 10_000
    max_bytes: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "timeout_seconds", min(max(float(self.timeout_seconds), 0.1), MAX_TIMEOUT_SECONDS)
        )
        object.__setattr__(
            self, "connect_timeout_seconds", min(max(float(self.connect_timeout_seconds), 0.1), 120.0)
        )
        object.__setattr__(self, "max_rows", min(max(int(self.max_rows), 1), MAX_ROWS))
        object.__setattr__(self, "max_bytes", min(max(int(self.max_bytes), 1024), MAX_BYTES))


def cell_bytes(value: object) -> int:
    """A cheap size estimate of one result cell, for the byte cap."""
    if value is None:
        return 1
    if isinstance(value, str | bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, list | tuple | dict | set):  # arrays, maps, structs
        items = value.items() if isinstance(value, dict) else value
        return 8 + sum(cell_bytes(v) for v in items)
    return 8


def first_line(exc: BaseException | str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """The first non-empty line of an error, whitespace collapsed and clipped: never a trace."""
    text = str(exc)
    for line in text.splitlines():
        line = " ".join(line.split())
        if line.strip("^ "):
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return exc.__class__.__name__ if isinstance(exc, BaseException) else "unknown error"


class Connector(ABC):
    """One engine. Use as a context manager: ``with connector: rows = connector.fetch(sql)``.

    One query at a time per connector (a second concurrent ``stream`` is refused); ``columns`` holds
    the names of the running/last query's columns once its first row is asked for.
    """

    #: The data source kind ("duckdb", "postgres", "spark", "clickhouse", "trino", …).
    kind: ClassVar[str]
    #: The SQLGlot dialect the compiled SQL is generated in.
    dialect: ClassVar[str]
    #: "real" when CI runs it against the real engine, "compiled" when only its SQL is checked
    #: (defaults from `TESTED` by ``kind``).
    tested: ClassVar[str] = "compiled"
    #: Human label for forms and docs (defaults from `LABELS` by ``kind``).
    label: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        kind = cls.__dict__.get("kind")
        if isinstance(kind, str):
            if "label" not in cls.__dict__:
                cls.label = LABELS.get(kind, kind)
            if "tested" not in cls.__dict__:
                cls.tested = TESTED.get(kind, "compiled")

    def __init__(self, config: Mapping[str, Any], limits: Limits | None = None) -> None:
        self.config = dict(config)
        self.limits = limits or Limits()
        self.columns: list[str] = []
        self._connected = False
        self._busy = threading.Lock()

    # -- what an engine implements -------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None:
        """Open the connection/session within ``limits.connect_timeout_seconds``, read-only where the
        engine supports it. Raise `EngineUnavailable` (or let ``translate`` do it)."""

    @abstractmethod
    def _execute(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """Start ``sql`` (already checked read-only) and yield its rows as tuples, fetching in batches
        (never the whole result at once); set ``self.columns``. A generator: it is closed when the
        caller stops early or a cap is hit, so release the cursor in its ``finally``."""

    @abstractmethod
    def _cancel(self) -> None:
        """Stop the running query on the engine (called from the watchdog thread)."""

    def _close(self) -> None:  # noqa: B027 - optional
        """Release the connection/session."""

    @abstractmethod
    def translate(self, exc: BaseException) -> EngineError:
        """An engine/driver exception → an `EngineError` naming the table, column or setting."""

    def allowed_functions(self) -> frozenset[str]:
        """Functions the read-only check lets through for this source (e.g. DuckDB's ``read_parquet``
        when the engine itself restricts file access to the source's files)."""
        return frozenset()

    # -- shared behaviour ----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        if not self._connected:
            try:
                self._connect()
            except ValidationFailed:  # the connector's own, or a caller's hook (e.g. a server check)
                self._release()
                raise
            except Exception as exc:
                error = self._translated(exc)  # translated first: it may look at the half-open session
                self._release()
                raise error from None
            self._connected = True

    def _release(self) -> None:
        """Release a half-open session before a connect error is reported."""
        try:
            self._close()
        except Exception:  # noqa: S110 - the connect error is the one to report
            pass

    def close(self) -> None:
        if self._connected:
            self._connected = False
            try:
                self._close()
            except Exception:  # noqa: S110 - closing must not mask the query's own error
                pass

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def check(self, sql: str) -> None:
        """Refuse anything but one read-only query, before it is sent."""
        from truenorth.engines.readonly import check_read_only

        check_read_only(sql, self.dialect, allowed_functions=self.allowed_functions())

    def stream(self, sql: str) -> Generator[tuple[Any, ...], None, None]:
        """Rows of ``sql``, under the limits; the query is cancelled on the engine at the timeout.
        Checked and connected when the first row is asked for."""
        self.check(sql)
        self.connect()
        if not self._busy.acquire(blocking=False):
            raise EngineError("this connection is already running a query", field="query")
        try:
            yield from self._watched(sql)
        finally:
            self._busy.release()

    def _watched(self, sql: str) -> Generator[tuple[Any, ...], None, None]:
        timed_out = threading.Event()
        guard = threading.Lock()
        running = [True]

        def on_timeout() -> None:
            with guard:  # never cancel a query that has already finished (the next one would pay)
                if not running[0]:
                    return
                timed_out.set()
            try:
                self._cancel()
            except Exception:  # noqa: S110 - the timeout is reported
                pass

        def stop() -> None:
            with guard:
                running[0] = False
            timer.cancel()

        timer = threading.Timer(self.limits.timeout_seconds, on_timeout)
        timer.daemon = True
        self.columns = []
        rows = size = 0
        timer.start()
        results = self._execute(sql)
        try:
            for row in results:
                if timed_out.is_set():
                    break
                rows += 1
                size += sum(cell_bytes(v) for v in row)
                if rows > self.limits.max_rows:
                    raise ResultTooLarge(
                        f"the query returned more than {self.limits.max_rows:,} rows; aggregate in the "
                        "query or narrow it",
                        field="query",
                    )
                if size > self.limits.max_bytes:
                    raise ResultTooLarge(
                        f"the query returned more than {self.limits.max_bytes // 1024:,} KiB; aggregate "
                        "in the query or narrow it",
                        field="query",
                        cap="bytes",
                    )
                yield tuple(row)
        except EngineError as exc:
            stop()
            if timed_out.is_set():
                raise self._timeout() from None
            raise self._translated(exc) from None
        except Exception as exc:
            stop()
            if timed_out.is_set():
                raise self._timeout() from None
            raise self._translated(exc) from None
        finally:
            stop()
            close = getattr(results, "close", None)
            if close is not None:
                try:
                    close()  # the engine's cursor, also when the caller stopped early
                except Exception:  # noqa: S110 - the query's own outcome is reported
                    pass
        if timed_out.is_set():
            raise self._timeout()

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        """All rows of ``sql`` (an evidence `Engine`)."""
        return list(self.stream(sql))

    def _translated(self, exc: BaseException) -> EngineError:
        """``translate``, made safe: one clipped line, and a generic message if translating fails."""
        if isinstance(exc, EngineError):
            error = exc
        else:
            try:
                error = self.translate(exc)
            except Exception:
                error = EngineError(f"{self.label or self.kind} failed: {first_line(exc)}", field="query")
        message = first_line(error.message)
        if message != error.message:
            error.message = message
            error.args = (message,)
            if error.field:
                error.errors = {error.field: message}
        return error

    def _timeout(self) -> EngineTimeout:
        return EngineTimeout(
            f"the query ran longer than {self.limits.timeout_seconds:g} s and was cancelled on the engine; "
            "raise the source's timeout or narrow the query",
            field="timeout_seconds",
        )
