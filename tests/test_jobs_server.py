"""The web tier stays responsive while one organisation does its worst with long queries.

The real server (`truenorth serve`, 2 gunicorn workers) and the real job consumer (`truenorth worker`)
run on their own database. Organisation "hog" (an admin, as anyone who signs up is) fires many
refreshes of a SQL measure whose DuckDB query would run for the source's full 600 s: at most
TRUENORTH_JOBS_PER_ORGANISATION of them are accepted (202, at once) and run on the worker; the rest
are refused with 429. Meanwhile /healthz, another organisation's API and the hog's own job status all
answer quickly. Before jobs, each refresh ran inside the request: two of them held both web workers
and /healthz stopped answering.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from tests import live_server
from tests.live_server import server_database_url

pytestmark = pytest.mark.server

__all__ = ["server_database_url"]  # a fixture: imported so pytest finds it here
STARTUP_TIMEOUT = 60.0
FAST = 1.0  # seconds: the most any answer may take while the hog's queries run
WATCH_SECONDS = 8.0
ATTEMPTS = 8  # refreshes the hog fires at once
LIMIT = 2
# Runs inside the server's environment: two organisations, an admin each with a token; the hog's
# DuckDB source allows 600 s and its measure's query never ends on its own.
SETUP = """
import json
import django
django.setup()
from truenorth.accounts.models import User
from truenorth.accounts.services import create_token
from truenorth.measures.models import DataSource, Measure, Observation
from truenorth.measures.sources import encrypt_config
from truenorth.orgs.services import create_organisation

out = {}
for slug in ("hog", "calm"):
    user = User.objects.create_user(email=f"admin@{slug}.example", password="not-used-here-123")
    org = create_organisation(user, slug.capitalize(), slug)
    out[slug] = {"token": create_token(user, "load", "read-write")[1]}
    if slug == "hog":
        source = DataSource.objects.create(
            organisation=org,
            name="Scratch",
            kind="duckdb",
            config_encrypted=encrypt_config({"path": "", "files": []}),
            timeout_seconds=600,
        )
        measure = Measure.objects.create(
            organisation=org, name="Endless", kva="current_value", source="sql", data_source=source,
            query="SELECT TIMESTAMP '2025-01-01' AS t, sum(hash(i)) * 0.0 AS v "
            "FROM range(1000000000000) r(i)",
        )
    else:
        measure = Measure.objects.create(organisation=org, name="Calm revenue", kva="current_value")
        Observation.objects.create(measure=measure, value=7, observed_at="2025-01-01T00:00:00Z")
    out[slug]["measure"] = measure.pk
print(json.dumps(out))
"""


def _call(base_url: str, path: str, token: str = "", method: str = "GET") -> tuple[int, float, dict]:
    """(status, seconds, JSON body or {}) — a timeout counts as status 0 after 10 s."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = b"" if method == "POST" else None
    request = urllib.request.Request(f"{base_url}{path}", method=method, headers=headers, data=data)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError:
        return 0, time.monotonic() - started, {}
    elapsed = time.monotonic() - started
    try:
        body = json.loads(raw) if raw.startswith((b"{", b"[")) else {}
    except ValueError:
        body = {}
    return status, elapsed, body if isinstance(body, dict) else {"items": body}


def test_the_web_tier_answers_quickly_while_one_organisation_floods_it_with_long_refreshes(
    tmp_path: Path, server_database_url: str
) -> None:
    env = live_server.server_env(
        tmp_path / "data",
        server_database_url,
        TRUENORTH_JOBS_PER_ORGANISATION=str(LIMIT),
        TRUENORTH_MAX_QUERY_SECONDS="120",
    )
    migrate = live_server.run(["migrate"], env, timeout=300)
    assert migrate.returncode == 0, migrate.stderr
    setup = live_server.run_python(SETUP, env, timeout=120)
    assert setup.returncode == 0, setup.stderr
    world = json.loads(setup.stdout)
    hog, calm = world["hog"], world["calm"]

    port = live_server.free_port()
    base = f"http://127.0.0.1:{port}"
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    server = live_server.start_server(port, 2, env, tmp_path, server_log)
    worker = live_server.start(["worker", "--workers", "2", "--no-periodic"], env, tmp_path, worker_log)

    def logs() -> str:
        return f"\nserver:\n{server_log.read_text()[-3000:]}\nworker:\n{worker_log.read_text()[-3000:]}"

    try:
        live_server.wait_until_healthy(base, [server, worker], STARTUP_TIMEOUT, logs)

        # The hog fires its refreshes all at once (in the background: with refreshes inside the request,
        # as before jobs, they never come back); LIMIT are accepted at once, the rest refused with 429.
        refresh = f"/api/v1/orgs/hog/measures/{hog['measure']}/refresh"
        pool = ThreadPoolExecutor(ATTEMPTS)
        firing = [pool.submit(_call, base, refresh, hog["token"], "POST") for _ in range(ATTEMPTS)]
        wait(firing, timeout=5 * FAST)

        # While its queries run on the worker, every other answer stays fast.
        slow: list[tuple[str, int, float]] = []
        seen_running: set[str] = set()
        checks = [
            ("/healthz", ""),
            ("/api/v1/orgs/calm/measures", calm["token"]),
            (f"/api/v1/orgs/calm/measures/{calm['measure']}", calm["token"]),
            (refresh, hog["token"]),  # the hog keeps trying: refused at once
        ]
        rounds = 0
        until = time.monotonic() + WATCH_SECONDS
        while time.monotonic() < until:
            rounds += 1
            jobs = [f.result()[2]["url"] for f in firing if f.done() and f.result()[0] == 202]
            for path, token in [*checks, *((job, hog["token"]) for job in jobs)]:
                status, elapsed, body = _call(base, path, token, "POST" if path == refresh else "GET")
                expected = 429 if path == refresh else 200
                if status != expected or elapsed >= FAST:
                    slow.append((path, status, round(elapsed, 3)))
                if path in jobs and body.get("status") == "running":
                    seen_running.add(path)
            time.sleep(0.1)
        fired = [f.result() for f in firing]
        pool.shutdown()
        assert not slow, (slow, logs())
        assert rounds >= 5
        statuses = sorted(status for status, _, _ in fired)
        assert statuses == [202] * LIMIT + [429] * (ATTEMPTS - LIMIT), (fired, logs())
        assert max(elapsed for _, elapsed, _ in fired) < 5 * FAST, fired
        assert len(seen_running) == LIMIT, ("the accepted refreshes run on the worker", logs())
        assert server.poll() is None and worker.poll() is None, logs()
    finally:
        live_server.stop(worker)
        live_server.stop(server)
