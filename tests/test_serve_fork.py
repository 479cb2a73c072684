"""`truenorth serve` never shares a database connection between gunicorn processes.

The real server (gunicorn, 2 workers) is started as an operator would, on its own database (a fresh
PostgreSQL database on the server of DATABASE_URL when that is PostgreSQL, else a SQLite file), and
hammered at once with `/api/v1/me` by several users' tokens from concurrent threads: every answer must
name the token's own user. Before the fix the workers inherited the master's connection (opened by
`migrate`) and, for about a minute after each start, answered as another user or failed with
"lost synchronization with server".
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

pytestmark = pytest.mark.server

STARTUP_TIMEOUT = 60.0
USERS = 6
THREADS = 8
REQUESTS_PER_THREAD = 50
# Configuration of the outer environment that must not leak into the server under test.
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
)
SETUP_USERS = """
import json, sys
import django
django.setup()
from truenorth.accounts.models import User
from truenorth.accounts.services import create_token
out = {}
for i in range(int(sys.argv[1])):
    user = User.objects.create_user(email=f"user{i}@serve.example", password="not-used-here-123")
    out[user.email] = create_token(user, "hammer", "read")[1]
print(json.dumps(out))
"""


def _truenorth_command() -> list[str]:
    script = Path(sys.executable).parent / "truenorth"
    return [str(script)] if script.exists() else [sys.executable, "-m", "truenorth.cli"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture
def server_database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for the server: PostgreSQL when the suite runs on it, else SQLite."""
    outer = os.environ.get("DATABASE_URL", "")
    if not outer.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / 'serve.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(outer)
    name = f"serve_{uuid.uuid4().hex[:12]}"
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _get_me(base_url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(f"{base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())["email"]
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:200].decode(errors="replace")
    except (OSError, ValueError, KeyError) as exc:
        return 0, repr(exc)


def test_every_answer_right_after_a_start_names_the_tokens_own_user(
    tmp_path: Path, server_database_url: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(
        TRUENORTH_DATA_DIR=str(tmp_path / "data"),
        TRUENORTH_HTTPS="false",
        DATABASE_URL=server_database_url,
        DATABASE_CONN_MAX_AGE="60",
        DJANGO_SETTINGS_MODULE="truenorth.settings",
        PYTHONUNBUFFERED="1",
    )
    command = _truenorth_command()
    migrate = subprocess.run(
        [*command, "migrate"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert migrate.returncode == 0, migrate.stderr
    setup = subprocess.run(
        [sys.executable, "-c", SETUP_USERS, str(USERS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert setup.returncode == 0, setup.stderr
    tokens: dict[str, str] = json.loads(setup.stdout)

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _healthy(f"{base_url}/healthz"):
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)

        emails = sorted(tokens)

        def hammer(thread: int) -> list[tuple[str, int, str]]:
            answers = []
            for i in range(REQUESTS_PER_THREAD):
                email = emails[(thread + i) % len(emails)]
                status, answer = _get_me(base_url, tokens[email])
                answers.append((email, status, answer))
            return answers

        with ThreadPoolExecutor(THREADS) as pool:
            results = [answer for batch in pool.map(hammer, range(THREADS)) for answer in batch]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)

    assert len(results) == THREADS * REQUESTS_PER_THREAD
    wrong = [(email, status, answer) for email, status, answer in results if (status, answer) != (200, email)]
    assert wrong == [], f"{len(wrong)} wrong answers, e.g. {wrong[:5]}\n{log_path.read_text()[-3000:]}"
