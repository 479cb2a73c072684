"""The shared connector behaviour: watchdog, caps, translation, one query at a time (a tiny in-test
connector stands in for an engine; the real engines are in test_duckdb / test_postgres)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from truenorth.engines.base import (
    MAX_ROWS,
    Connector,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
    NotReadOnly,
    ResultTooLarge,
    first_line,
)


class Counting(Connector):
    """Yields ``config["rows"]`` rows of ``config["width"]`` characters, one every ``config["pause"]``
    seconds; ``_cancel`` stops it like an engine would (the next fetch raises)."""

    kind = "counting"
    dialect = "duckdb"

    def __init__(self, config: dict[str, Any], limits: Limits | None = None) -> None:
        super().__init__(config, limits)
        self.cancelled = threading.Event()
        self.closed = False
        self.cursor_closed = False

    def _connect(self) -> None:
        if self.config.get("refuse"):
            raise ConnectionRefusedError("connection refused\n  at line 12 of driver.c")

    def _execute(self, sql: str) -> Iterator[tuple[Any, ...]]:
        self.columns = ["n", "text"]
        try:
            for i in range(int(self.config.get("rows", 3))):
                if self.cancelled.is_set():
                    raise InterruptedError("INTERRUPT Error: Interrupted!")
                if sql == "SELECT boom":
                    raise RuntimeError("boom\nTraceback (most recent call last):")
                time.sleep(float(self.config.get("pause", 0)))
                yield (i, "x" * int(self.config.get("width", 1)))
        finally:
            self.cursor_closed = True

    def _cancel(self) -> None:
        self.cancelled.set()

    def _close(self) -> None:
        self.closed = True

    def translate(self, exc: BaseException) -> EngineError:
        if isinstance(exc, ConnectionRefusedError):
            return EngineUnavailable(f"cannot connect: {exc}", field="config")
        return EngineError(f"the query failed: {exc}", field="query")


def test_rows_stream_back_and_the_connector_closes():
    connector = Counting({"rows": 3})
    with connector:
        assert connector.fetch("SELECT 1") == [(0, "x"), (1, "x"), (2, "x")]
        assert connector.columns == ["n", "text"]
    assert connector.closed and not connector.connected


def test_the_watchdog_cancels_the_query_at_the_timeout():
    connector = Counting({"rows": 1000, "pause": 0.05}, Limits(timeout_seconds=0.3))
    started = time.monotonic()
    with connector, pytest.raises(EngineTimeout) as caught:
        connector.fetch("SELECT 1")
    assert time.monotonic() - started < 1.5
    assert connector.cancelled.is_set() and connector.cursor_closed
    assert caught.value.field == "timeout_seconds" and "cancelled on the engine" in caught.value.message


def test_a_finished_query_is_never_cancelled_afterwards():
    connector = Counting({"rows": 2}, Limits(timeout_seconds=0.2))
    with connector:
        connector.fetch("SELECT 1")
        time.sleep(0.4)
    assert not connector.cancelled.is_set()


def test_rows_and_bytes_are_capped_and_the_cursor_released():
    connector = Counting({"rows": 50}, Limits(max_rows=10))
    with connector, pytest.raises(ResultTooLarge, match="more than 10 rows"):
        connector.fetch("SELECT 1")
    assert connector.cursor_closed
    wide = Counting({"rows": 50, "width": 1000}, Limits(max_bytes=4096))
    with wide, pytest.raises(ResultTooLarge, match="more than 4 KiB") as caught:
        wide.fetch("SELECT 1")
    assert caught.value.field == "query" and caught.value.cap == "bytes"


def test_limits_are_clamped_to_the_ceilings():
    limits = Limits(timeout_seconds=10**9, max_rows=10**9, max_bytes=-5, connect_timeout_seconds=0)
    assert limits.timeout_seconds == 3600 and limits.max_rows == MAX_ROWS
    assert limits.max_bytes == 1024 and limits.connect_timeout_seconds == 0.1


def test_driver_errors_are_translated_to_one_line():
    connector = Counting({"rows": 3})
    with connector, pytest.raises(EngineError) as caught:
        connector.fetch("SELECT boom")
    assert "\n" not in caught.value.message and "Traceback" not in caught.value.message
    assert caught.value.message.startswith("the query failed:")
    with pytest.raises(EngineUnavailable) as refused:
        Counting({"refuse": True}).connect()
    assert refused.value.message == "cannot connect: connection refused"


def test_an_empty_query_is_refused_before_connecting():
    connector = Counting({"refuse": True})
    with pytest.raises(NotReadOnly):
        connector.fetch("  ")
    assert not connector.connected


def test_one_query_at_a_time_per_connector():
    connector = Counting({"rows": 5})
    with connector:
        first = connector.stream("SELECT 1")
        next(first)
        with pytest.raises(EngineError, match="already running"):
            connector.fetch("SELECT 1")
        first.close()
        assert connector.cursor_closed
        assert len(connector.fetch("SELECT 1")) == 5


def test_labels_and_tested_follow_the_kind():
    class Duck(Counting):
        kind = "duckdb"

    assert Duck.label == "DuckDB" and Duck.tested == "real"
    assert Counting.label == "counting" and Counting.tested == "compiled"


def test_first_line_is_clipped():
    assert first_line(ValueError("a\n b")) == "a"
    assert len(first_line("x" * 1000)) == 300
    assert first_line(ValueError("")) == "ValueError"
