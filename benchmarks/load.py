"""Load: concurrent clients against the real `truenorth serve`, on SQLite and PostgreSQL.

For each database (SQLite in a temporary data directory; PostgreSQL, when one answers, in a scratch
database this script creates and drops), it loads the demo organisation (truenorth.demo: Acme Outdoor,
its goal trees, a year of measures, hypotheses, engagement), signs its owner in (a session cookie) and
gives them an API token, starts `truenorth serve` (gunicorn, the same workers for every target; API rate
limits off), and drives `--clients` concurrent connections for `--seconds` on each target with wrk
(C, Debian's `wrk`; a Lua script adds the cookie or token and counts non-2xx answers):

- the bare view: `/healthz` (the whole middleware stack, one `SELECT 1`; no session, no template),
- the organisation's dashboard (signed in), a goal page (signed in),
- two API lists (token): the goals and the measures.

It prints, per target, requests per second, p50/p99 latency, errors (non-2xx answers, socket errors,
timeouts) and the throughput as a share of the bare view's. It never asserts.

    .venv/bin/python benchmarks/load.py                        # quick: 100 clients, 10 s per target
    .venv/bin/python benchmarks/load.py --seconds 120          # the issue's run: 100 clients, 2 minutes
        [--clients N] [--workers N] [--threads N] [--postgres URL | --no-postgres] [--no-sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
SCRATCH_DB = "truenorth_bench_load"
# The server runs with the settings' defaults (one worker per core, 2 to 8, x 8 threads: gunicorn's
# threaded worker, which keeps each client's connection open) unless --workers/--threads say otherwise.
# Measured on 2 cores: sync workers answer one request per connection and close it, so 100 clients
# reconnected all the time and waited for SYN retries (bare view 145 req/s sync, 470 threaded, session
# 7); 5 workers x 4 threads had the throughput of 2 x 8 but a p99 of 0.8-1.8 s instead of 0.24-0.49 s
# (session 10; truenorth/conf/server.py).
STARTUP_SECONDS = 600  # a fresh start migrates nothing here but compresses the static files

# Runs in the server's environment (after `truenorth migrate`): the demo, a signed-in session for its
# owner, an API token; prints the targets as JSON.
SETUP = """
import json
import django
django.setup()
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.middleware.csrf import CSRF_ALLOWED_CHARS, CSRF_SECRET_LENGTH
from django.urls import reverse
from django.utils.crypto import get_random_string
from truenorth.accounts.models import User
from truenorth.accounts.services import create_token
from truenorth.demo import DEMO_ORG, DEMO_USERS, load_demo
from truenorth.measures.models import Measure, Observation
from truenorth.strategy.models import Goal

load_demo()
owner = User.objects.get(email=DEMO_USERS[0].email)
session = SessionStore()
session[SESSION_KEY] = str(owner.pk)
session[BACKEND_SESSION_KEY] = "truenorth.accounts.backends.SessionUserBackend"  # what a sign-in records
session[HASH_SESSION_KEY] = owner.get_session_auth_hash()
session.create()
token = create_token(owner, "load benchmark", "read")[1]
slug = DEMO_ORG[1]
goals = Goal.objects.filter(organisation__slug=slug)
goal = goals.filter(parent__isnull=True).order_by("id").first() or goals.order_by("id").first()
# A browser signed in also holds the CSRF cookie (set by the sign-in page); without it every page would
# make a new CSRF secret and send it in a Set-Cookie, which no signed-in browser sees.
csrf = get_random_string(CSRF_SECRET_LENGTH, CSRF_ALLOWED_CHARS)
cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}; {settings.CSRF_COOKIE_NAME}={csrf}"}
bearer = {"Authorization": f"Bearer {token}"}
print(json.dumps({
    "size": {
        "goals": goals.count(),
        "measures": Measure.objects.filter(organisation__slug=slug).count(),
        "observations": Observation.objects.filter(measure__organisation__slug=slug).count(),
    },
    "targets": [
        {"name": "bare view (/healthz)", "path": reverse("core:healthz"), "headers": {}},
        {"name": "org dashboard", "path": reverse("home:dashboard", kwargs={"org_slug": slug}), "headers": cookie},
        {"name": "goal page", "path": reverse("strategy:goal", kwargs={"org_slug": slug, "goal_id": goal.pk}),
         "headers": cookie},
        {"name": "API: list goals", "path": f"/api/v1/orgs/{slug}/goals", "headers": bearer},
        {"name": "API: list measures", "path": f"/api/v1/orgs/{slug}/measures", "headers": bearer},
    ],
}))
"""

# wrk's script: the target's headers, non-2xx answers counted per thread and summed at the end, and one
# JSON line with the figures.
LUA = """
local headers = %(headers)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  for name, value in pairs(headers) do wrk.headers[name] = value end
  non2xx = 0
end
function response(status, hdrs, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + thread:get("non2xx") end
  io.write(string.format(
    '@@{"requests": %%d, "duration_us": %%d, "non2xx": %%d, "connect": %%d, "read": %%d, "write": %%d, '
    .. '"timeout": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, bad, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def _lua_table(headers: dict[str, str]) -> str:
    return "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()) + "}"


def _truenorth() -> list[str]:
    script = Path(sys.executable).parent / "truenorth"
    return [str(script)] if script.exists() else [sys.executable, "-m", "truenorth.cli"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(database_url: str, data_dir: Path) -> dict[str, str]:
    scrub = (
        "DATABASE_URL",
        "DEBUG",
        "ALLOWED_HOSTS",
        "SECRET_KEY",
        "TRUENORTH_REDIS_URL",
        "TRUENORTH_CACHE_URL",
    )
    env = {k: v for k, v in os.environ.items() if k not in scrub and not k.startswith("TRUENORTH_WEB_")}
    env.update(
        DATABASE_URL=database_url,
        TRUENORTH_DATA_DIR=str(data_dir),
        TRUENORTH_HTTPS="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SETTINGS_MODULE="truenorth.settings",
        PYTHONUNBUFFERED="1",
        # The benchmark is one client address and one token at thousands of requests a minute.
        TRUENORTH_API_RATE_PER_TOKEN="0",
        TRUENORTH_API_RATE_PER_ADDRESS="0",
    )
    return env


def _get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (our own loopback server)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _drain(base: str, seconds: float = 300) -> None:
    """Wait until the requests the last run left queued are answered (wrk closes its connections at the
    end, but gunicorn still answers what it accepted): /healthz answers in under a second again."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        if _get(f"{base}/healthz", {}) == 200 and time.monotonic() - started < 1:
            return
        time.sleep(1)


def _wait_healthy(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while _get(f"{base}/healthz", {}) != 200:
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"`truenorth serve` did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def _wrk(base: str, target: dict[str, Any], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    script = workdir / "target.lua"
    script.write_text(LUA % {"headers": _lua_table(target["headers"])})
    command = [
        "wrk",
        f"--threads={args.wrk_threads}",
        f"--connections={args.clients}",
        f"--duration={args.seconds}s",
        f"--timeout={args.timeout}s",
        f"--script={script}",
        base + target["path"],
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    line = next((x for x in done.stdout.splitlines() if x.startswith("@@")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed on {target['path']}:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line[2:])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = sum(result[k] for k in ("non2xx", "connect", "read", "write", "timeout"))
    return result


def run_database(label: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Load, serve and measure one database; the results per target."""
    with tempfile.TemporaryDirectory(prefix="truenorth-load-") as tmp:
        workdir = Path(tmp)
        env = _env(database_url, workdir / "data")
        t0 = time.perf_counter()
        migrate = subprocess.run(  # noqa: S603
            [*_truenorth(), "migrate"], env=env, capture_output=True, text=True, check=False
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.stdout}\n{migrate.stderr}")
        setup = subprocess.run(  # noqa: S603
            [sys.executable, "-c", textwrap.dedent(SETUP)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if setup.returncode != 0:
            raise RuntimeError(f"loading the demo failed:\n{setup.stderr}")
        world = json.loads(setup.stdout.strip().splitlines()[-1])
        load_s = time.perf_counter() - t0

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        serve = [*_truenorth(), "serve", "--host", "127.0.0.1", "--port", str(port), "--no-migrate"]
        if args.workers:
            serve += ["--workers", str(args.workers)]
        if args.threads:
            serve += ["--threads", str(args.threads)]
        if args.max_requests is not None:
            serve += ["--max-requests", str(args.max_requests)]
            if args.max_requests and args.max_requests <= 100:
                serve += ["--max-requests-jitter", "0"]
        log = workdir / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(  # noqa: S603
                serve, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            _wait_healthy(base, server, log)
            banner = next((x for x in log.read_text().splitlines() if x.startswith("TrueNorth serving")), "")
            results = []
            for target in world["targets"]:
                _drain(base)
                statuses = {_get(base + target["path"], target["headers"]) for _ in range(args.warmup)}
                if statuses != {200}:
                    raise RuntimeError(
                        f"{target['path']} answered {statuses}, not 200:\n{log.read_text()[-3000:]}"
                    )
                result = _wrk(base, target, args, workdir)
                result["name"] = target["name"]
                results.append(result)
                _report_row(result, results[0]["rps"])
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=60)
        return {"label": label, "size": world["size"], "load_s": load_s, "server": banner, "results": results}


def _report_row(result: dict[str, Any], bare_rps: float) -> None:
    errors = (
        f"{result['errors']} errors ({result['non2xx']} non-2xx, {result['connect']} connect, "
        f"{result['read']} read, {result['write']} write, {result['timeout']} timeouts)"
    )
    print(
        f"  {result['name']:<22} {result['rps']:8.1f} req/s   p50 {result['p50_us'] / 1000:7.1f} ms   "
        f"p99 {result['p99_us'] / 1000:7.1f} ms   {errors}   {result['rps'] / bare_rps:5.2f}x the bare view",
        flush=True,
    )


def _postgres_admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True, connect_timeout=3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100, help="concurrent connections (default 100)")
    parser.add_argument("--seconds", type=int, default=10, help="per target (default 10; the issue's: 120)")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: the setting's)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="threads per worker (default: the setting's, TRUENORTH_WEB_THREADS)",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=None,
        help="requests before a worker is replaced (default: the setting's; 0 never)",
    )
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=30, help="wrk's per-request timeout, seconds")
    parser.add_argument("--warmup", type=int, default=3, help="requests per target before measuring")
    parser.add_argument("--postgres", default=os.environ.get("TRUENORTH_BENCH_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("error: needs wrk (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    print(
        f"Load: {args.clients} concurrent connections for {args.seconds} s per target (wrk, "
        f"{args.wrk_threads} threads, on the same {os.cpu_count()} cores as the server), "
        f"load average {os.getloadavg()[0]:.1f} at the start."
    )
    runs = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="truenorth-load-db-") as db_dir:
            print("\nsqlite:", flush=True)
            runs.append(run_database("sqlite", f"sqlite:///{db_dir}/load.sqlite3", args))
    if not args.no_postgres:
        try:
            admin = _postgres_admin(args.postgres)
        except Exception as exc:  # not reachable: say so and keep the SQLite figures
            print(f"\npostgresql: skipped ({str(exc).strip().splitlines()[0]})")
        else:
            with admin:
                admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
                admin.execute(f"CREATE DATABASE {SCRATCH_DB}")
            try:
                print("\npostgresql:", flush=True)
                base = args.postgres.rsplit("/", 1)[0]
                runs.append(run_database("postgresql", f"{base}/{SCRATCH_DB}", args))
            finally:
                with _postgres_admin(args.postgres) as admin:
                    admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)")
    for run in runs:
        size = run["size"]
        print(
            f"\n{run['label']}: {size['goals']} goals, {size['measures']} measures, {size['observations']:,} "
            f"observations (loaded in {run['load_s']:.0f} s); {run['server']}"
        )
        for result in run["results"]:
            _report_row(result, run["results"][0]["rps"])
    print(
        f"\nload average {os.getloadavg()[0]:.1f} at the end (aim: 0 errors, p99 < 500 ms, >= 0.5x the bare view)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
