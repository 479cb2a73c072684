"""The production set-up (issue 13): `truenorth serve` driven by settings, static files, HTTPS behind a
proxy, the job worker as a second process.

The tests marked `server` start the real `truenorth serve` (gunicorn) as an operator would, on their own
database (tests/live_server.py); the others check the pieces (gunicorn's options, the proxy guard, the
static files' storage) in process.
"""

from __future__ import annotations

import gzip
import http.client
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import brotli  # type: ignore[import-untyped]
import pytest
from django.test import override_settings

from tests import live_server
from tests.live_server import server_database_url
from truenorth.cli import main
from truenorth.ops.serving import ServeOptionError, ServeOverrides, StaticFilesStorage, gunicorn_options
from truenorth.wsgi import forwarded_proto_only_from_proxies, from_trusted_proxy

__all__ = ["server_database_url"]  # a fixture: imported so pytest finds it here
STARTUP_TIMEOUT = 240.0  # a fresh start compresses the static files: minutes on a loaded machine
HOST_NAME = "truenorth.test"
PROXY = "127.0.0.2"  # the trusted proxy's address; 127.0.0.1 is a client reaching gunicorn directly


# --- gunicorn's options from the settings and the command line ------------------------------------


@pytest.mark.parametrize(("cores", "workers"), [(1, 2), (2, 2), (4, 4), (32, 8)])
def test_the_default_is_a_threaded_worker_per_core(monkeypatch: pytest.MonkeyPatch, cores: int, workers: int) -> None:
    from truenorth.conf import server

    monkeypatch.setattr(server.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    assert server._default_workers() == workers
    assert server.DEFAULT_THREADS == 8
    with override_settings(TRUENORTH_WEB_WORKERS=server._default_workers(), TRUENORTH_WEB_THREADS=8):
        options = gunicorn_options(ServeOverrides())
    assert (options["workers"], options["threads"], options["worker_class"]) == (workers, 8, "gthread")


@override_settings(
    TRUENORTH_WEB_BIND="127.0.0.1:8000",
    TRUENORTH_WEB_WORKERS=3,
    TRUENORTH_WEB_THREADS=4,
    TRUENORTH_WEB_TIMEOUT=45,
    TRUENORTH_WEB_GRACEFUL_TIMEOUT=20,
    TRUENORTH_WEB_KEEPALIVE=7,
    TRUENORTH_WEB_MAX_REQUESTS=500,
    TRUENORTH_WEB_MAX_REQUESTS_JITTER=50,
    TRUENORTH_FORWARDED_ALLOW_IPS=["10.0.0.0/8"],
    SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
)
def test_gunicorn_gets_the_settings_and_the_options_override_them() -> None:
    options = gunicorn_options(ServeOverrides())
    assert options["bind"] == ["127.0.0.1:8000"]
    assert (options["workers"], options["threads"], options["worker_class"]) == (3, 4, "gthread")
    assert (options["timeout"], options["graceful_timeout"], options["keepalive"]) == (45, 20, 7)
    assert (options["max_requests"], options["max_requests_jitter"]) == (500, 50)
    assert options["forwarded_allow_ips"] == "10.0.0.0/8"
    assert options["secure_scheme_headers"] == {"X-FORWARDED-PROTO": "https"}

    overridden = gunicorn_options(
        ServeOverrides(
            host="::1",
            port=9000,
            workers=1,
            threads=1,
            timeout=5,
            graceful_timeout=3,
            keep_alive=0,
            max_requests=0,
            max_requests_jitter=10,
        )
    )
    assert overridden["bind"] == ["[::1]:9000"]
    assert (overridden["workers"], overridden["threads"], overridden["worker_class"]) == (1, 1, "sync")
    assert (overridden["timeout"], overridden["graceful_timeout"], overridden["keepalive"]) == (5, 3, 0)
    # No restarts by request count: no jitter either.
    assert (overridden["max_requests"], overridden["max_requests_jitter"]) == (0, 0)
    assert gunicorn_options(ServeOverrides(bind="unix:/run/truenorth/web.sock"))["bind"] == [
        "unix:/run/truenorth/web.sock"
    ]
    assert gunicorn_options(ServeOverrides(port=8123))["bind"] == ["127.0.0.1:8123"]


def test_without_trust_in_the_proxy_gunicorn_believes_no_scheme_header() -> None:
    with override_settings(SECURE_PROXY_SSL_HEADER=None):
        assert gunicorn_options(ServeOverrides())["secure_scheme_headers"] == {}


@pytest.mark.parametrize(
    ("overrides", "changed", "message"),
    [
        (ServeOverrides(workers=0), {}, "--workers: must be between 1 and 64, got 0"),
        (ServeOverrides(workers=65), {}, "--workers: must be between 1 and 64, got 65"),
        (ServeOverrides(threads=0), {}, "--threads: must be between 1 and 64, got 0"),
        (ServeOverrides(timeout=0), {}, "--timeout: must be at least 1, got 0"),
        (ServeOverrides(keep_alive=-1), {}, "--keep-alive: must be at least 0, got -1"),
        (
            ServeOverrides(max_requests=100, max_requests_jitter=100),
            {},
            "--max-requests-jitter: must be below --max-requests (100), got 100",
        ),
        (ServeOverrides(bind="0.0.0.0:8000", port=1), {}, "--bind: give either --bind or --host/--port"),
        (ServeOverrides(bind="localhost"), {}, "--bind: 'localhost' is not HOST:PORT"),
        (ServeOverrides(bind="127.0.0.1:70000"), {}, "--bind: port 70000 is not between 1 and 65535"),
        (ServeOverrides(bind="unix:"), {}, "--bind: 'unix:' needs a socket path"),
        (ServeOverrides(), {"TRUENORTH_WEB_BIND": "8000"}, "TRUENORTH_WEB_BIND: '8000' is not HOST:PORT"),
        (ServeOverrides(), {"TRUENORTH_WEB_TIMEOUT": 0}, "TRUENORTH_WEB_TIMEOUT: must be at least 1"),
    ],
)
def test_nonsense_is_refused_naming_the_option_or_setting(
    overrides: ServeOverrides, changed: dict[str, Any], message: str
) -> None:
    with override_settings(**changed), pytest.raises(ServeOptionError) as refused:
        gunicorn_options(overrides)
    assert message in str(refused.value)


def test_a_connection_is_closed_after_the_requests_per_connection() -> None:
    from types import SimpleNamespace

    from truenorth.ops.serving import requests_per_connection
    from truenorth.wsgi import close_connections_after

    hook = close_connections_after(3)
    requests = [SimpleNamespace(req_number=n, must_close=False) for n in (1, 2, 3, 4)]
    for req in requests:
        hook(None, req)
    assert [req.must_close for req in requests] == [False, False, True, True]
    never = SimpleNamespace(req_number=10_000, must_close=False)
    close_connections_after(0)(None, never)
    assert never.must_close is False
    with override_settings(TRUENORTH_WEB_KEEPALIVE_REQUESTS=100):
        assert requests_per_connection(ServeOverrides()) == 100
        assert requests_per_connection(ServeOverrides(keep_alive_requests=0)) == 0
        with pytest.raises(ServeOptionError, match="--keep-alive-requests: must be at least 0"):
            requests_per_connection(ServeOverrides(keep_alive_requests=-1))


def test_serve_refuses_a_bad_option_with_one_line_and_exit_2_before_touching_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["serve", "--workers", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --workers: must be between 1 and 64, got 0"
    assert main(["serve", "--bind", "127.0.0.1:8000", "--host", "0.0.0.0"]) == 2
    assert "give either --bind or --host/--port" in capsys.readouterr().err


def test_a_bad_setting_stops_serve_with_one_line_naming_it(tmp_path: Path) -> None:
    env = live_server.server_env(
        tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite3'}", TRUENORTH_WEB_WORKERS="100"
    )
    done = live_server.run(["serve"], env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "error: TRUENORTH_WEB_WORKERS: must be at most 64, got 100"


# --- X-Forwarded-Proto only from the trusted proxies -----------------------------------------------


def _scheme_seen(remote_addr: str) -> str | None:
    seen: dict[str, Any] = {}

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        return [b""]

    forwarded_proto_only_from_proxies(inner)(
        {"REMOTE_ADDR": remote_addr, "HTTP_X_FORWARDED_PROTO": "https"}, lambda *args: None
    )
    return seen.get("HTTP_X_FORWARDED_PROTO")


def test_the_forwarded_proto_header_reaches_django_only_from_a_trusted_proxy() -> None:
    with override_settings(
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
        TRUENORTH_FORWARDED_ALLOW_IPS=["10.0.0.0/8", "2001:db8::1"],
    ):
        assert _scheme_seen("10.1.2.3") == "https"
        assert _scheme_seen("2001:db8::1") == "https"
        assert _scheme_seen("192.0.2.7") is None
        assert _scheme_seen("2001:db8::2") is None
        assert _scheme_seen("") == "https"  # a Unix socket: local, as gunicorn treats it
    with override_settings(SECURE_PROXY_SSL_HEADER=None):
        # Django ignores the header then: the application is not even wrapped.
        app = object()
        assert forwarded_proto_only_from_proxies(app) is app  # type: ignore[arg-type]
    assert not from_trusted_proxy("127.0.0.2", [])


# --- static files' names ----------------------------------------------------------------------------


def test_static_names_are_hashed_from_the_manifest_and_plain_before_any_collectstatic(tmp_path: Path) -> None:
    storage = StaticFilesStorage(location=str(tmp_path), base_url="/static/")
    assert storage.url("truenorth/app.css") == "/static/truenorth/app.css"  # nothing collected yet
    (tmp_path / "staticfiles.json").write_text(
        json.dumps({"version": "1.1", "paths": {"truenorth/app.css": "truenorth/app.0123456789ab.css"}})
    )
    storage = StaticFilesStorage(location=str(tmp_path), base_url="/static/")
    assert storage.url("truenorth/app.css") == "/static/truenorth/app.0123456789ab.css"
    assert storage.url("truenorth/new.js") == "/static/truenorth/new.js"  # added since: plain, not a 500


# --- the real server ---------------------------------------------------------------------------------

SLOW_SETTINGS = """
from truenorth.settings import *  # noqa: F403
ROOT_URLCONF = "slow_urls"
"""
SLOW_URLS = """
import time
from django.http import HttpResponse
from django.urls import path
from truenorth.urls import urlpatterns as base
from truenorth.urls import handler400, handler403, handler404, handler500  # noqa: F401

def slow(request):
    time.sleep(float(request.GET["seconds"]))
    return HttpResponse("done")

urlpatterns = [path("slow", slow), *base]
"""


def _request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    source: str = "127.0.0.1",
    timeout: float = 60,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request from the loopback address `source` (127.0.0.2 is another peer than 127.0.0.1)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _worker_pids(master: int) -> list[int]:
    """gunicorn's workers: the children of its master (the `truenorth serve` process)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def _wait_for_workers(master: int, count: int, seconds: float = 60) -> None:
    """Until the master has `count` workers (gunicorn starts them one after the other)."""
    deadline = time.monotonic() + seconds
    while len(_worker_pids(master)) != count and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_worker_pids(master)) == count


def _serve(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = live_server.free_port()
    log = tmp_path / "server.log"
    proc = live_server.start(["serve", "--host", "127.0.0.1", "--port", str(port), *args], env, tmp_path, log)
    live_server.wait_until_healthy(f"http://127.0.0.1:{port}", [proc], STARTUP_TIMEOUT, log.read_text)
    return proc, port, log


@pytest.mark.server
def test_settings_set_the_workers_and_a_request_slower_than_the_timeout_is_killed(
    tmp_path: Path, server_database_url: str
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "slow_settings.py").write_text(SLOW_SETTINGS)
    (site / "slow_urls.py").write_text(SLOW_URLS)
    env = live_server.server_env(
        tmp_path / "data",
        server_database_url,
        DJANGO_SETTINGS_MODULE="slow_settings",
        PYTHONPATH=str(site),
        TRUENORTH_WEB_WORKERS="3",
        TRUENORTH_WEB_THREADS="1",
        TRUENORTH_WEB_TIMEOUT="8",
    )
    proc, port, log = _serve(tmp_path, env)
    try:
        assert "3 workers x 1 threads, timeout 8 s" in log.read_text()
        assert "Using worker: sync" in log.read_text()
        _wait_for_workers(proc.pid, 3)

        status, _, body = _request(port, "/slow?seconds=0.5")
        assert (status, body) == (200, b"done")

        # Far slower than the timeout: gunicorn kills the worker, and the client gets gunicorn's 500 (or a
        # closed connection), long before the view would have answered.
        started = time.monotonic()
        try:
            status, _, body = _request(port, "/slow?seconds=60", timeout=50)
        except (TimeoutError, http.client.RemoteDisconnected, ConnectionError):
            status, body = 0, b""
        assert time.monotonic() - started < 40, "the worker was not killed at its timeout"
        assert status in (0, 500) and body != b"done", (status, body)
        deadline = time.monotonic() + 30
        while "WORKER TIMEOUT" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "WORKER TIMEOUT" in log.read_text(), log.read_text()[-3000:]

        # The killed worker is replaced: three workers again, and requests are answered.
        _wait_for_workers(proc.pid, 3)
        assert _request(port, "/healthz")[0] == 200
    finally:
        live_server.stop(proc)


@pytest.mark.server
def test_static_files_are_served_hashed_compressed_and_cached_for_a_year(
    tmp_path: Path, server_database_url: str
) -> None:
    env = live_server.server_env(tmp_path / "data", server_database_url)
    proc, port, log = _serve(tmp_path, env, "--workers", "1", "--keep-alive-requests", "3")
    try:
        # The threaded worker by default, keeping a connection for three requests, then closing it.
        assert "1 workers x 8 threads" in log.read_text() and "Using worker: gthread" in log.read_text()
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        answers = []
        for _ in range(3):
            kept.request("GET", "/healthz")
            response = kept.getresponse()
            response.read()
            answers.append(response.headers["Connection"])
        kept.close()
        assert answers == ["keep-alive", "keep-alive", "close"]
        status, _, page = _request(port, "/accounts/login/")
        assert status == 200
        stylesheet = re.search(rb'href="(/static/truenorth/app\.[0-9a-f]{12}\.css)"', page)
        assert stylesheet, page[:2000]
        url = stylesheet[1].decode()

        status, headers, plain = _request(port, url)
        assert status == 200 and b"{" in plain
        assert headers["Cache-Control"] == "max-age=315360000, public, immutable"
        status, headers, squeezed = _request(port, url, headers={"Accept-Encoding": "br, gzip"})
        assert (status, headers["Content-Encoding"]) == (200, "br")
        assert brotli.decompress(squeezed) == plain
        assert "immutable" in headers["Cache-Control"] and "Accept-Encoding" in headers["Vary"]
        status, headers, zipped = _request(port, url, headers={"Accept-Encoding": "gzip"})
        assert (status, headers["Content-Encoding"]) == (200, "gzip")
        assert gzip.decompress(zipped) == plain
        assert len(squeezed) < len(plain) / 2 and len(zipped) < len(plain) / 2

        # Only the hashed copies are kept (pages name nothing else).
        assert _request(port, "/static/truenorth/app.css")[0] == 404
    finally:
        live_server.stop(proc)


CREATE_USER = """
import django
django.setup()
from truenorth.accounts.models import User
User.objects.create_user(email="proxy@serve.example", password="proxied-password-123")
"""


def _csrf(headers: http.client.HTTPMessage, page: bytes) -> tuple[str, str]:
    cookie = next(c for c in headers.get_all("Set-Cookie") or [] if c.startswith("csrftoken="))
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page[:2000]
    return cookie, token[1].decode()


@pytest.mark.server
def test_behind_a_trusted_proxy_https_is_believed_and_from_anyone_else_ignored(
    tmp_path: Path, server_database_url: str
) -> None:
    env = live_server.server_env(
        tmp_path / "data",
        server_database_url,
        TRUENORTH_HTTPS="true",
        TRUST_X_FORWARDED_PROTO="true",
        SECURE_SSL_REDIRECT="true",
        TRUENORTH_TRUSTED_PROXIES="127.0.0.2",  # the proxy; 127.0.0.1 is a client reaching gunicorn directly
        ALLOWED_HOSTS=f"{HOST_NAME},127.0.0.1",
    )
    assert live_server.run(["migrate"], env, timeout=300).returncode == 0
    created = live_server.run_python(CREATE_USER, env, timeout=120)
    assert created.returncode == 0, created.stderr
    proc, port, log = _serve(tmp_path, env, "--no-migrate", "--workers", "1")
    https = {"Host": HOST_NAME, "X-Forwarded-Proto": "https"}
    try:
        # Through the proxy, over HTTPS: the page, HSTS, and a Secure CSRF cookie.
        status, headers, page = _request(port, "/accounts/login/", headers=https, source=PROXY)
        assert status == 200, log.read_text()[-3000:]
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        cookie, token = _csrf(headers, page)
        assert "; Secure" in cookie

        # Signing in through it: the session cookie is Secure (and HTTP-only), the CSRF origin check
        # passes because Django knows the request came over https.
        status, headers, _ = _request(
            port,
            "/accounts/login/",
            method="POST",
            headers={
                **https,
                "Cookie": cookie.split(";")[0],
                "Origin": f"https://{HOST_NAME}",
                "Referer": f"https://{HOST_NAME}/accounts/login/",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            body=f"csrfmiddlewaretoken={token}&email=proxy%40serve.example&password=proxied-password-123",
            source=PROXY,
        )
        assert status == 302, log.read_text()[-3000:]
        session = next(c for c in headers.get_all("Set-Cookie") or [] if c.startswith("sessionid="))
        assert "; Secure" in session and "; HttpOnly" in session

        # The proxy forwarding plain HTTP: redirected to https.
        status, headers, _ = _request(
            port, "/accounts/login/", headers={"Host": HOST_NAME, "X-Forwarded-Proto": "http"}, source=PROXY
        )
        assert (status, headers["Location"]) == (301, f"https://{HOST_NAME}/accounts/login/")

        # Anyone else claiming https is not believed: redirected to https too, and no HSTS.
        status, headers, _ = _request(port, "/accounts/login/", headers=https, source="127.0.0.1")
        assert (status, headers["Location"]) == (301, f"https://{HOST_NAME}/accounts/login/")
        assert "Strict-Transport-Security" not in headers
    finally:
        live_server.stop(proc)


SQL_MEASURE = """
import json
import django
django.setup()
from truenorth.accounts.models import User
from truenorth.accounts.services import create_token
from truenorth.measures.models import DataSource, Measure
from truenorth.measures.sources import encrypt_config
from truenorth.orgs.services import create_organisation

user = User.objects.create_user(email="admin@jobs.example", password="not-used-here-123")
org = create_organisation(user, "Jobs", "jobs")
source = DataSource.objects.create(
    organisation=org, name="Scratch", kind="duckdb", config_encrypted=encrypt_config({"path": "", "files": []})
)
measure = Measure.objects.create(
    organisation=org, name="Answer", kva="current_value", source="sql", data_source=source,
    query="SELECT TIMESTAMP '2025-01-01' AS t, 42.0 AS v",
)
print(json.dumps({"token": create_token(user, "jobs", "read-write")[1], "measure": measure.pk}))
"""


def _api(base_url: str, path: str, token: str, method: str = "GET") -> tuple[int, Any]:
    port = int(base_url.rsplit(":", 1)[1])
    status, _, body = _request(
        port,
        path,
        method=method,
        headers={"Authorization": f"Bearer {token}"},
        body="" if method == "POST" else None,
    )
    return status, json.loads(body) if body else None


@pytest.mark.server
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server (Debian: redis-server)")
def test_the_worker_runs_a_job_as_a_second_process_with_redis_as_the_queue(
    tmp_path: Path, server_database_url: str
) -> None:
    redis_port = live_server.free_port()
    redis = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        env = live_server.server_env(
            tmp_path / "data", server_database_url, TRUENORTH_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0"
        )
        assert live_server.run(["migrate"], env, timeout=300).returncode == 0
        setup = live_server.run_python(SQL_MEASURE, env, timeout=120)
        assert setup.returncode == 0, setup.stderr
        world = json.loads(setup.stdout)
        with live_server.serving_with_worker(env, tmp_path, timeout=STARTUP_TIMEOUT) as base_url:
            status, job = _api(
                base_url, f"/api/v1/orgs/jobs/measures/{world['measure']}/refresh", world["token"], "POST"
            )
            assert status == 202, job
            deadline = time.monotonic() + 60
            while job["status"] in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(0.3)
                status, job = _api(base_url, job["url"], world["token"])
            assert job["status"] == "succeeded", job
            status, observations = _api(
                base_url, f"/api/v1/orgs/jobs/measures/{world['measure']}/observations", world["token"]
            )
            assert status == 200
            assert [row["value"] for row in observations] == [42.0], observations
    finally:
        live_server.stop(redis)


PRINT_PREPARE = """
import django
django.setup()
from django.conf import settings
print(settings.DATABASES["default"]["OPTIONS"].get("prepare_threshold", "absent"))
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "5"), ("0", "None"), ("20", "20")])
def test_the_prepare_threshold_comes_from_the_environment(
    tmp_path: Path, given: str | None, expected: str
) -> None:
    extra = {} if given is None else {"DATABASE_PREPARE_THRESHOLD": given}
    env = live_server.server_env(tmp_path / "data", "postgres://nobody@127.0.0.1:9/none", **extra)
    done = subprocess.run(
        [sys.executable, "-c", PRINT_PREPARE], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == expected


@pytest.mark.django_db
def test_this_runs_connection_prepares_as_configured() -> None:
    from django.db import connection

    connection.ensure_connection()
    if connection.vendor != "postgresql":
        assert "prepare_threshold" not in connection.settings_dict.get("OPTIONS", {})
        return
    assert connection.connection.prepare_threshold == 5
