"""`truenorth check` covers observability: metrics on or off and their directory, the log format, error
reports (the Sentry lines with a DSN are in test_sentry.py, which needs a fresh process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from truenorth.core import telemetry
from truenorth.core.health import CheckResult, run_checks


def checks() -> dict[str, CheckResult]:
    return {result.name: result for result in run_checks()}


@pytest.fixture
def data_dir(settings, tmp_path: Path) -> Path:
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir(mode=0o700)
    return settings.DATA_DIR


def test_metrics_off_without_a_token_and_on_with_one(settings, db, data_dir: Path) -> None:
    settings.TRUENORTH_METRICS_TOKEN = ""
    assert checks()["metrics"] == CheckResult(
        "metrics", "ok", "off (set TRUENORTH_METRICS_TOKEN to serve /metrics)"
    )
    settings.TRUENORTH_METRICS_TOKEN = "x" * 32
    result = checks()["metrics"]
    assert result.status == "ok" and "/metrics on" in result.detail and "x" * 32 not in result.detail


def test_the_metrics_directory_must_be_writable_and_private(db, data_dir: Path, monkeypatch) -> None:
    assert checks()["metrics directory"].status == "ok"  # not there yet: the data directory is writable

    (data_dir / "metrics").mkdir(mode=0o755)
    (data_dir / "metrics").chmod(0o755)
    result = checks()["metrics directory"]
    assert result.status == "warning" and "readable by others" in result.detail

    (data_dir / "metrics").chmod(0o700)
    assert checks()["metrics directory"].status == "ok"

    monkeypatch.setattr(telemetry, "metrics_directory", lambda: data_dir / "a-file" / "metrics")
    (data_dir / "a-file").write_text("not a directory")
    result = checks()["metrics directory"]
    assert result.status == "error" and "not writable" in result.detail


def test_prepare_multiprocess_empties_its_own_directory_only(settings, data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv(telemetry.MULTIPROC_ENV, "")  # undone after the test, whatever prepare sets
    old = data_dir / "metrics" / "web"
    old.mkdir(parents=True)
    (old / "counter_123.db").write_bytes(b"stale")
    (data_dir / "metrics" / "worker").mkdir()
    (data_dir / "metrics" / "worker" / "counter_456.db").write_bytes(b"the worker's")
    from prometheus_client import values

    before = values.ValueClass
    try:
        directory = telemetry.prepare_multiprocess("web")
        assert directory == old and list(old.iterdir()) == []
        assert (data_dir / "metrics" / "worker" / "counter_456.db").exists()
        assert (data_dir / "metrics").stat().st_mode & 0o777 == 0o700
        assert old.stat().st_mode & 0o777 == 0o700
        assert telemetry.multiprocess() and os.environ[telemetry.MULTIPROC_ENV] == str(old)
    finally:
        values.ValueClass = before
    with pytest.raises(ValueError):
        telemetry.prepare_multiprocess("../elsewhere")


def test_the_log_format_and_level_are_reported(settings, db) -> None:
    settings.TRUENORTH_LOG_FORMAT = "json"
    settings.LOG_LEVEL = "WARNING"
    assert checks()["logs"] == CheckResult(
        "logs", "ok", "json to stderr, level WARNING (one JSON object per line)"
    )


def test_error_reports_off_without_a_dsn_and_an_error_when_set_but_not_started(settings, db) -> None:
    settings.SENTRY_DSN = ""
    assert checks()["error reports"].status == "ok"
    assert "off" in checks()["error reports"].detail
    settings.SENTRY_DSN = "http://key@127.0.0.1:9/1"  # set after start: Sentry was never initialised here
    result = checks()["error reports"]
    assert result.status == "error" and "key" not in result.detail
