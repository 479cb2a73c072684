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


THREADED_WORKER = """
import threading, time
import django
django.setup()
from truenorth.core import telemetry
telemetry.prepare_multiprocess("web")
from truenorth.ops import metrics
made = metrics.Histogram
def slowly_made(*args, **kwargs):  # widens the window in which two threads could each make their own
    time.sleep(0.05)
    return made(*args, **kwargs)
metrics.Histogram = slowly_made
start = threading.Barrier(8)
def answer():
    start.wait()
    for _ in range(25):
        metrics.request_metrics().latency.labels("healthz", "GET", "2xx").observe(0.001)
threads = [threading.Thread(target=answer) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def test_a_threaded_workers_first_requests_share_one_set_of_metrics(tmp_path: Path) -> None:
    """gthread workers answer their first requests on several threads at once: every one is counted (two
    histograms made at once would each keep their own copy of the file entry and overwrite the other's)."""
    data_dir = tmp_path / "data"
    env = live_server.server_env(data_dir, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    env.pop(telemetry.MULTIPROC_ENV, None)
    done = live_server.run_python(THREADED_WORKER, env, timeout=120)
    assert done.returncode == 0, done.stderr

    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(data_dir / "metrics" / "web"))
    counts = [
        s.value
        for family in registry.collect()
        for s in family.samples
        if s.name == "truenorth_http_request_duration_seconds_count"
    ]
    assert counts == [8 * 25]
