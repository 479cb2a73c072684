"""Starting the real `truenorth` (gunicorn server, job worker) for the tests that talk HTTP to it.

A plain module, not a test file: tests/conftest.py, the browser tests and the real-server tests
(`tests/test_serve_fork.py`, `tests/test_jobs_server.py`) import it. Each process runs in its own process
group (so gunicorn's workers stop with their master) with the outer environment scrubbed of
configuration that must not leak into the server under test.

Safe under pytest-xdist: every server gets a free loopback port from the kernel, a data directory under
its worker's own temporary directory, and (on PostgreSQL) a database of its own with a random name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

HOST = "127.0.0.1"
# Configuration the outer environment may carry (a PostgreSQL DATABASE_URL in CI, DEBUG, a proxy setup,
# Redis, the test suite's own switches...) that must not leak into the server under test.
SCRUBBED_ENV = (
    "DATABASE_URL",
    "DATABASE_CONN_MAX_AGE",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SITE_URL",
    "SECURE_HSTS_SECONDS",
    "SECURE_SSL_REDIRECT",
    "TRUST_X_FORWARDED_PROTO",
    "EMAIL_HOST",
    "LOGIN_MAX_FAILURES_PER_EMAIL",
    "LOGIN_MAX_FAILURES_PER_IP",
    "LOGIN_FAILURE_WINDOW_SECONDS",
    "TRUENORTH_TRUSTED_PROXIES",
    "TRUENORTH_TEST_POSTGRES",
    "TRUENORTH_JOBS_IMMEDIATE",
    "TRUENORTH_REDIS_URL",
    "TRUENORTH_DUCKDB_DIRS",
)


def truenorth_command() -> list[str]:
    """The installed `truenorth` script next to this Python, else `python -m truenorth.cli`."""
    script = Path(sys.executable).parent / "truenorth"
    return [str(script)] if script.exists() else [sys.executable, "-m", "truenorth.cli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def server_env(data_dir: Path, database_url: str, **settings: str) -> dict[str, str]:
    """The outer environment minus SCRUBBED_ENV, plus a data directory, a database and `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(
        TRUENORTH_DATA_DIR=str(data_dir),
        TRUENORTH_HTTPS="false",
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="truenorth.settings",
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


def run(
    args: Sequence[str], env: dict[str, str], *, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`truenorth <args>` to completion, output captured."""
    return subprocess.run(
        [*truenorth_command(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_python(
    code: str, env: dict[str, str], *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """`python -c <code> <args>` in the server's environment (to set up its database), output captured."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(args: Sequence[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`truenorth <args>` in the background, in its own process group, output to `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [*truenorth_command(), *args],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the workers stop with it
        )


def start_server(
    port: int, workers: int, env: dict[str, str], cwd: Path, log: Path
) -> subprocess.Popen[bytes]:
    """`truenorth serve` (gunicorn) on the loopback `port`."""
    return start(["serve", "--host", HOST, "--port", str(port), "--workers", str(workers)], env, cwd, log)


def wait_until_healthy(
    base_url: str,
    processes: Sequence[subprocess.Popen[bytes]],
    timeout: float,
    logs: Callable[[], str],
    interval: float = 0.1,
) -> None:
    """Poll `<base_url>/healthz` until it answers 200; fail (with `logs()`) if a process exits first
    or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not healthy(f"{base_url}/healthz"):
        exited = [proc for proc in processes if proc.poll() is not None]
        if exited:
            args = exited[0].args
            command = " ".join(map(str, args)) if isinstance(args, list) else str(args)
            returncode = exited[0].returncode
            pytest.fail(f"`{command}` exited with {returncode} before /healthz answered 200:\n{logs()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out before {base_url}/healthz answered 200:\n{logs()}")
        time.sleep(interval)


@contextmanager
def serving_with_worker(
    env: dict[str, str], cwd: Path, *, web_workers: int = 1, timeout: float = 60.0
) -> Iterator[str]:
    """`truenorth serve` and `truenorth worker` (2 threads, no periodic jobs) on a free loopback port,
    healthy before it yields the base URL; both stopped afterwards. Logs go to `cwd`."""
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    server_log, worker_log = cwd / "server.log", cwd / "worker.log"
    server = start_server(port, web_workers, env, cwd, server_log)
    worker = start(["worker", "--workers", "2", "--no-periodic"], env, cwd, worker_log)

    def logs() -> str:
        return f"\nserver:\n{server_log.read_text()[-3000:]}\nworker:\n{worker_log.read_text()[-3000:]}"

    try:
        wait_until_healthy(base_url, [server, worker], timeout, logs)
        yield base_url
    finally:
        stop(worker)
        stop(server)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (gunicorn master and its workers), SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@contextmanager
def fresh_database_url(directory: Path, prefix: str = "live") -> Iterator[str]:
    """A fresh, empty database for the server: a new PostgreSQL database on the server of DATABASE_URL
    when the suite runs on PostgreSQL (dropped afterwards), else a SQLite file in `directory`."""
    outer = os.environ.get("DATABASE_URL", "")
    if not outer.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{directory / f'{prefix}.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(outer)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def server_database_url(tmp_path: Path) -> Iterator[str]:
    """`fresh_database_url` for one test (import it into the test module so pytest finds it)."""
    with fresh_database_url(tmp_path, "serve") as url:
        yield url
