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
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

pytestmark = pytest.mark.server

STARTUP_TIMEOUT = 60.0
FAST = 1.0  # seconds: the most any answer may take while the hog's queries run
WATCH_SECONDS = 8.0
ATTEMPTS = 8  # refreshes the hog fires at once
LIMIT = 2
SCRUBBED_ENV = (
    "DATABASE_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "SITE_URL",
    "SECURE_SSL_REDIRECT",
    "TRUENORTH_TRUSTED_PROXIES",
    "TRUENORTH_TEST_POSTGRES",
    "TRUENORTH_JOBS_IMMEDIATE",
    "TRUENORTH_REDIS_URL",
    "TRUENORTH_DUCKDB_DIRS",
)
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


def _truenorth_command() -> list[str]:
    script = Path(sys.executable).parent / "truenorth"
    return [str(script)] if script.exists() else [sys.executable, "-m", "truenorth.cli"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for the server: PostgreSQL when the suite runs on it, else SQLite."""
    outer = os.environ.get("DATABASE_URL", "")
    if not outer.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / 'serve.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(outer)
    name = f"jobs_{uuid.uuid4().hex[:12]}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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


def _start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def test_the_web_tier_answers_quickly_while_one_organisation_floods_it_with_long_refreshes(
    tmp_path: Path, server_database_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(
        TRUENORTH_DATA_DIR=str(tmp_path / "data"),
        TRUENORTH_HTTPS="false",
        DATABASE_URL=server_database_url,
        DJANGO_SETTINGS_MODULE="truenorth.settings",
        PYTHONUNBUFFERED="1",
        TRUENORTH_JOBS_PER_ORGANISATION=str(LIMIT),
        TRUENORTH_MAX_QUERY_SECONDS="120",
    )
    command = _truenorth_command()
    migrate = subprocess.run([*command, "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr
    setup = subprocess.run(
        [sys.executable, "-c", SETUP], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert setup.returncode == 0, setup.stderr
    world = json.loads(setup.stdout)
    hog, calm = world["hog"], world["calm"]

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server_log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    serve = [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    server = _start(serve, env, tmp_path, server_log)
    worker = _start([*command, "worker", "--workers", "2", "--no-periodic"], env, tmp_path, worker_log)

    def logs() -> str:
        return f"\nserver:\n{server_log.read_text()[-3000:]}\nworker:\n{worker_log.read_text()[-3000:]}"

    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while _call(base, "/healthz")[0] != 200:
            assert server.poll() is None and worker.poll() is None, logs()
            assert time.monotonic() < deadline, logs()
            time.sleep(0.1)

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
        _stop(worker)
        _stop(server)
