"""The real `truenorth serve --workers 2`: one scrape of `/metrics` counts the requests every worker answered
(prometheus_client's multiprocess mode), and TRUENORTH_LOG_FORMAT=json makes gunicorn's own lines JSON."""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import live_server
from tests.live_server import server_database_url

pytestmark = pytest.mark.server

__all__ = ["server_database_url"]  # a fixture: imported so pytest finds it here
TOKEN = "server-test-metrics-token-0123456789"
REQUESTS = 60
STARTUP_TIMEOUT = 300.0  # collectstatic compresses every static file first
COUNT = "truenorth_http_request_duration_seconds_count"


def _get(url: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def _healthz_count(base_url: str) -> float:
    status, body = _get(f"{base_url}/metrics", Authorization=f"Bearer {TOKEN}")
    assert status == 200
    return sum(
        sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == COUNT and sample.labels.get("route") == "healthz"
    )


def test_a_scrape_counts_the_requests_of_every_worker(tmp_path: Path, server_database_url: str) -> None:
    data_dir = tmp_path / "data"
    env = live_server.server_env(
        data_dir, server_database_url, TRUENORTH_METRICS_TOKEN=TOKEN, TRUENORTH_LOG_FORMAT="json"
    )
    migrate = live_server.run(["migrate"], env, timeout=600)
    assert migrate.returncode == 0, migrate.stderr
    port = live_server.free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    proc = live_server.start_server(port, 2, env, tmp_path, log_path)
    try:
        live_server.wait_until_healthy(base_url, [proc], STARTUP_TIMEOUT, log_path.read_text, interval=0.05)
        before = _healthz_count(base_url)
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: _get(f"{base_url}/healthz")[0], range(REQUESTS)))
        assert statuses == [200] * REQUESTS
        # Whichever worker answers the scrape, it counts every worker's requests.
        counts = [_healthz_count(base_url) - before for _ in range(6)]
    finally:
        live_server.stop(proc)

    log = log_path.read_text()
    assert counts == [REQUESTS] * 6, log[-3000:]
    # Workers stop without crashing (a DuckDB instance inherited from the CLI's process once aborted them
    # on exit). A SIGTERM from the master to a worker still finishing is gunicorn's normal shutdown.
    assert not any(crash in log for crash in ("SIGABRT", "SIGSEGV", "terminate called")), log[-3000:]
    web = data_dir / "metrics" / "web"
    pids = {f.stem.rsplit("_", 1)[1] for f in web.glob("histogram_*.db")}
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    booted = {e["message"].rsplit(" ", 1)[1] for e in entries if "Booting worker with pid" in e["message"]}
    assert len(pids) == 2 and pids <= booted, (pids, booted)
    assert web.stat().st_mode & 0o777 == 0o700
    access = [e for e in entries if e["logger"] == "gunicorn.access" and e.get("path") == "/healthz"]
    assert len(access) >= REQUESTS
    assert all(e["status"] == 200 and len(e["request_id"]) == 32 for e in access)
