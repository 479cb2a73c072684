"""Multiprocess metrics: the job worker's counters (a separate process, `truenorth worker`) reach the web
server's scrape, added to the web workers' own."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests import live_server
from truenorth.core import telemetry
from truenorth.ops import metrics

WORKER = """
import django
django.setup()
from truenorth.core import telemetry
telemetry.prepare_multiprocess("worker")
telemetry.refresh_failed()
telemetry.refresh_failed()
telemetry.webhook_failed()
"""


def test_the_job_workers_counters_reach_the_web_scrape(settings, tmp_path: Path, monkeypatch) -> None:
    data_dir = tmp_path / "data"
    env = live_server.server_env(data_dir, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    env.pop(telemetry.MULTIPROC_ENV, None)
    done = live_server.run_python(WORKER, env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert list((data_dir / "metrics" / "worker").glob("counter_*.db"))

    settings.DATA_DIR = data_dir
    (data_dir / "metrics" / "web").mkdir()
    monkeypatch.setenv(telemetry.MULTIPROC_ENV, str(data_dir / "metrics" / "web"))
    monkeypatch.setattr(metrics, "SCRAPE_SECTIONS", ())  # no database here: the counters only
    text = generate_latest(metrics.registry()).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("truenorth_refresh_failures_total", ())] == 2
    assert samples[("truenorth_webhook_delivery_failures_total", ())] == 1
    assert samples[("truenorth_sign_in_failures_total", (("method", "password"),))] == 0


@pytest.mark.parametrize("kind", ["web", "worker"])
def test_each_kind_writes_into_its_own_private_directory(settings, tmp_path: Path, monkeypatch, kind) -> None:
    settings.DATA_DIR = tmp_path
    monkeypatch.setenv(telemetry.MULTIPROC_ENV, "")
    from prometheus_client import values

    before = values.ValueClass
    try:
        assert telemetry.prepare_multiprocess(kind) == tmp_path / "metrics" / kind
    finally:
        values.ValueClass = before
    assert (tmp_path / "metrics" / kind).stat().st_mode & 0o777 == 0o700
