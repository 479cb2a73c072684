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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

from truenorth.core.errors import ValidationFailed

#: Hard ceilings whatever a source asks for (a hostile admin cannot raise them).
MAX_TIMEOUT_SECONDS = 3600
MAX_ROWS = 100_000
MAX_BYTES = 64 * 1024 * 1024


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
    """More rows or bytes than the caps allow."""


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
    if isinstance(value, str | bytes):
        return len(value)
    return 8


class Connector(ABC):
    """One engine. Use as a context manager: ``with connector: rows = connector.fetch(sql)``."""

    #: The data source kind ("duckdb", "postgres", "spark", "clickhouse", "trino", …).
    kind: ClassVar[str]
    #: The SQLGlot dialect the compiled SQL is generated in.
    dialect: ClassVar[str]
    #: "real" when CI runs it against the real engine, "compiled" when only its SQL is checked.
    tested: ClassVar[str] = "compiled"
    #: Human label for forms and docs.
    label: ClassVar[str] = ""

    def __init__(self, config: Mapping[str, Any], limits: Limits | None = None) -> None:
        self.config = dict(config)
        self.limits = limits or Limits()
        self._connected = False
        self._lock = threading.Lock()

    # -- what an engine implements -------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> None:
        """Open the connection/session within ``limits.connect_timeout_seconds``, read-only where the
        engine supports it. Raise `EngineUnavailable` (or let ``translate`` do it)."""

    @abstractmethod
    def _execute(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """Start ``sql`` (already checked read-only) and yield its rows as tuples."""

    @abstractmethod
    def _cancel(self) -> None:
        """Stop the running query on the engine (called from the watchdog thread)."""

    def _close(self) -> None:  # noqa: B027 - optional
        """Release the connection/session."""

    @abstractmethod
    def translate(self, exc: BaseException) -> EngineError:
        """An engine/driver exception → an `EngineError` naming the table, column or setting."""

    # -- shared behaviour ----------------------------------------------------------------------
    def connect(self) -> None:
        if not self._connected:
            try:
                self._connect()
            except EngineError:
                raise
            except Exception as exc:
                raise self.translate(exc) from None
            self._connected = True

    def close(self) -> None:
        if self._connected:
            self._connected = False
            try:
                self._close()
            except Exception:  # noqa: S110 - closing must not mask the query's own error
                pass

    def __enter__(self) -> Connector:
        self.connect()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def check(self, sql: str) -> None:
        """Refuse anything but one read-only query, before it is sent."""
        from truenorth.engines.readonly import check_read_only

        check_read_only(sql, self.dialect)

    def stream(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql``, under the limits; the query is cancelled on the engine at the timeout."""
        self.check(sql)
        self.connect()
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            try:
                self._cancel()
            except Exception:  # noqa: S110 - the query's own error is reported
                pass

        timer = threading.Timer(self.limits.timeout_seconds, on_timeout)
        timer.daemon = True
        timer.start()
        rows = size = 0
        try:
            for row in self._execute(sql):
                if timed_out.is_set():
                    break
                rows += 1
                size += sum(cell_bytes(v) for v in row)
                if rows > self.limits.max_rows:
                    raise ResultTooLarge(
                        f"the query returned more than {self.limits.max_rows} rows", field="query"
                    )
                if size > self.limits.max_bytes:
                    raise ResultTooLarge(
                        f"the query returned more than {self.limits.max_bytes // 1024} KiB", field="query"
                    )
                yield tuple(row)
        except EngineError:
            if timed_out.is_set():
                raise self._timeout() from None
            raise
        except Exception as exc:
            if timed_out.is_set():
                raise self._timeout() from None
            raise self.translate(exc) from None
        finally:
            timer.cancel()
        if timed_out.is_set():
            raise self._timeout()

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        """All rows of ``sql`` (an evidence `Engine`)."""
        return list(self.stream(sql))

    def _timeout(self) -> EngineTimeout:
        return EngineTimeout(
            f"the query ran longer than {self.limits.timeout_seconds:g} s and was cancelled on the engine; "
            "raise the source's timeout or narrow the query",
            field="timeout_seconds",
        )
