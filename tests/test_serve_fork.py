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
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests import live_server
from tests.live_server import server_database_url

pytestmark = pytest.mark.server

__all__ = ["server_database_url"]  # a fixture: imported so pytest finds it here
STARTUP_TIMEOUT = 60.0
USERS = 6
THREADS = 8
REQUESTS_PER_THREAD = 50
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
    env = live_server.server_env(tmp_path / "data", server_database_url, DATABASE_CONN_MAX_AGE="60")
    migrate = live_server.run(["migrate"], env, timeout=300)
    assert migrate.returncode == 0, migrate.stderr
    setup = live_server.run_python(SETUP_USERS, env, str(USERS), timeout=120)
    assert setup.returncode == 0, setup.stderr
    tokens: dict[str, str] = json.loads(setup.stdout)

    port = live_server.free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    proc = live_server.start_server(port, 2, env, tmp_path, log_path)
    try:
        live_server.wait_until_healthy(base_url, [proc], STARTUP_TIMEOUT, log_path.read_text, interval=0.05)

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
        live_server.stop(proc)

    assert len(results) == THREADS * REQUESTS_PER_THREAD
    wrong = [(email, status, answer) for email, status, answer in results if (status, answer) != (200, email)]
    assert wrong == [], f"{len(wrong)} wrong answers, e.g. {wrong[:5]}\n{log_path.read_text()[-3000:]}"
