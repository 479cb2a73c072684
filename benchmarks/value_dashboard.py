"""Value dashboard at scale: one product with 200 measures and 1,000,000 observations over a year.

For each database (SQLite in a temporary data directory; PostgreSQL when one answers on
127.0.0.1:5432, in a scratch database this script creates and drops), it loads the observations in
bulk, builds their daily roll-ups (truenorth.measures.rollups.rebuild, what the migration and
`truenorth measure rollups --rebuild` run; timed on its own), then requests the product's value
dashboard through Django's test client (the full middleware, view and template stack) several times,
reading the roll-ups ("after") and, for comparison, the observations themselves ("before": the same
buckets from the raw rows), and prints per page the median and p95 server time, the CPU time (this
process, plus the PostgreSQL backend's), the SQL queries, and the load average of the machine. Then
the SQLite/PostgreSQL ratio. It never asserts on time. `--plans` prints the plans of the bucket queries
(90 days and a year).

    .venv/bin/python benchmarks/value_dashboard.py [--observations N] [--measures N] [--runs N]
        [--postgres URL | --no-postgres] [--no-raw] [--plans] [--data-dir DIR]

Each database runs in a child process of its own, since Django is configured once per process.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
SCRATCH_DB = "truenorth_bench_value"
KVAS = ("current_value", "unrealized_value", "time_to_market", "ability_to_innovate")


# --- the child: one database ----------------------------------------------------------------------


def _load(measures: int, observations: int, now: dt.datetime) -> tuple[str, int]:
    """Create the organisation, product, measures and observations; return (dashboard URL, user id)."""
    from django.db import connection

    from truenorth.accounts.models import User
    from truenorth.measures.models import Measure, Observation
    from truenorth.orgs.services import create_organisation
    from truenorth.strategy.models import Product

    user = User.objects.create_user(email="bench@example.com", password="bench-password-123", name="Bench")
    org = create_organisation(user, "Bench Org", "bench")
    product = Product.objects.create(organisation=org, name="Bench product", owner=user)
    Measure.objects.bulk_create(
        [
            Measure(
                organisation=org,
                product=product,
                name=f"Measure {i:03}",
                kva=KVAS[i % 4],
                unit="pts",
                direction="higher" if i % 3 else "lower",
                cadence_days=7,
                baseline=50.0,
                target=80.0,
            )
            for i in range(measures)
        ]
    )
    ids = list(Measure.objects.filter(product=product).order_by("id").values_list("id", flat=True))
    table = Observation._meta.db_table
    columns = "(measure_id, value, observed_at, source, note, superseded, recorded_at)"
    per_measure = observations // len(ids)
    step = dt.timedelta(days=365) / per_measure
    start = now - dt.timedelta(days=365)
    rng = random.Random(7)  # noqa: S311 (made-up data, not secrets)
    recorded = connection.ops.adapt_datetimefield_value(now)

    def rows() -> Any:
        for mid in ids:
            level = rng.uniform(40, 60)
            for k in range(per_measure):
                level += rng.gauss(0.01, 0.5)
                when = start + step * k
                yield (
                    mid,
                    round(level, 3),
                    connection.ops.adapt_datetimefield_value(when),
                    "api",
                    "",
                    False,
                    recorded,
                )

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor  # psycopg's own cursor: COPY is the fast path
            with raw.copy(f"COPY {table} {columns} FROM STDIN") as copy:
                for row in rows():
                    copy.write_row(row)
            # What autovacuum does soon after a bulk load: statistics, and the visibility map that lets
            # PostgreSQL answer from the index alone.
            cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            sql = f"INSERT INTO {table} {columns} VALUES (%s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
            batch: list[tuple[Any, ...]] = []
            for row in rows():
                batch.append(row)
                if len(batch) == 50_000:
                    cursor.executemany(sql, batch)
                    batch.clear()
            if batch:
                cursor.executemany(sql, batch)
            cursor.execute("ANALYZE")
    url = f"/o/{org.slug}/products/{product.pk}/value/"
    return url, user.pk


def _backend_pid() -> int | None:
    """The PostgreSQL server process of this connection, when it runs on this machine (for its CPU)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def _cpu_of(pid: int | None) -> float:
    """CPU seconds used so far by a process of this machine (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _time_pages(url: str, user_id: int, runs: int, *, raw: bool) -> dict[str, Any]:
    from functools import partial
    from unittest import mock

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from truenorth.accounts.models import User
    from truenorth.measures.dashboard import product_dashboard

    client = Client()
    client.force_login(User.objects.get(pk=user_id))
    results: dict[str, Any] = {}
    paths = [("roll-ups", False)] + ([("observations", True)] if raw else [])
    for label, query in (("90 days (default)", ""), ("365 days", "?period=365")):
        for path, from_raw in paths:
            board = partial(product_dashboard, from_rollups=not from_raw)
            with mock.patch("truenorth.measures.views.measures.product_dashboard", board):
                response = client.get(url + query)  # warm-up: connection, template and code caches
                assert response.status_code == 200, response.status_code
                backend = _backend_pid()
                times: list[float] = []
                cpu: list[float] = []
                queries = 0
                load = os.getloadavg()[0]
                for _ in range(runs):
                    with CaptureQueriesContext(connection) as captured:
                        c0, b0 = time.process_time(), _cpu_of(backend)
                        t0 = time.perf_counter()
                        response = client.get(url + query)
                        times.append((time.perf_counter() - t0) * 1000)
                        cpu.append((time.process_time() - c0 + _cpu_of(backend) - b0) * 1000)
                    assert response.status_code == 200, response.status_code
                    queries = len(captured.captured_queries)
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            results[f"{label}, {path}"] = {
                "median_ms": statistics.median(times),
                "p95_ms": p95,
                "cpu_ms": statistics.median(cpu),
                "cpu_backend": backend is not None,
                "queries": queries,
                "load": (load + os.getloadavg()[0]) / 2,
                "bytes": len(response.content),
                "cards": response.content.count(b'data-testid="measure-card"'),
            }
    return results


def _explain(measure_ids: list[int], now: dt.datetime) -> str:
    """The database's plans for the grouped bucket queries, from the roll-ups and from the observations
    (to check each uses its covering index)."""
    from django.db import connection

    from truenorth.measures.dashboard import bucket_sql, period_of, rollup_sql

    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    out = []
    for days in (90, 365):
        period = period_of(now - dt.timedelta(days=days), now)
        for name, build in (("roll-ups", rollup_sql), ("observations", bucket_sql)):
            sql, params = build(measure_ids, period)
            with connection.cursor() as cursor:
                cursor.execute(prefix + sql, params)
                out.append(f"{name}, {days} days:")
                out += ["  " + " ".join(str(c) for c in row) for row in cursor.fetchall()]
    return "\n".join(out)


def child(args: argparse.Namespace) -> int:
    """Run in a process whose environment names the database; print one JSON line of results."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "truenorth.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from truenorth.measures.models import Measure

    call_command("migrate", interactive=False, verbosity=0)
    now = dt.datetime.now(dt.UTC)
    from truenorth.accounts.models import User
    from truenorth.measures import rollups
    from truenorth.measures.models import DailyRollup, Observation
    from truenorth.strategy.models import Product

    existing = User.objects.filter(email="bench@example.com").first() if args.keep else None
    if existing is not None:  # --data-dir kept from an earlier run: reuse its rows (SQLite only)
        product = Product.objects.get(name="Bench product")
        url, user_id = f"/o/bench/products/{product.pk}/value/", existing.pk
        load_s = rollup_s = rollup_cpu_s = 0.0
        built_days = DailyRollup.objects.count()
    else:
        t0 = time.perf_counter()
        url, user_id = _load(args.measures, args.observations, now)
        load_s = time.perf_counter() - t0
        backend = _backend_pid()
        t0, c0, b0 = time.perf_counter(), time.process_time(), _cpu_of(backend)
        built = rollups.rebuild()  # the backfill: what migration 0005 and `measure rollups --rebuild` run
        rollup_s = time.perf_counter() - t0
        rollup_cpu_s = time.process_time() - c0 + _cpu_of(backend) - b0
        built_days = built.days
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum does soon after: the visibility map
            cursor.execute("VACUUM ANALYZE measures_dailyrollup")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
            # What a running server's checkpoints do soon after a bulk load: the pages back in the database
            # file and the write-ahead log emptied, as when the rows are kept from an earlier run.
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    rows = Observation.objects.count()
    ids = list(Measure.objects.values_list("id", flat=True))
    pages = _time_pages(url, user_id, args.runs, raw=not args.no_raw)
    print(
        json.dumps(
            {
                "vendor": connection.vendor,
                "measures": len(ids),
                "rows": rows,
                "load_s": load_s,
                "rollup_s": rollup_s,
                "rollup_cpu_s": rollup_cpu_s,
                "rollup_days": built_days,
                "pages": pages,
                "plan": _explain(ids, now),
            }
        )
    )
    return 0


# --- the parent: one child per database -----------------------------------------------------------


def _postgres_admin(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgres://", "postgresql://", 1), autocommit=True, connect_timeout=3)


def _run_child(database_url: str, data_dir: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY")
    }
    env.update(
        DATABASE_URL=database_url,
        TRUENORTH_DATA_DIR=data_dir,
        TRUENORTH_HTTPS="false",
        ALLOWED_HOSTS="testserver,localhost",
        DJANGO_SETTINGS_MODULE="truenorth.settings",
    )
    command = (
        [
            sys.executable,
            __file__,
            "--child",
            "--observations",
            str(args.observations),
            "--measures",
            str(args.measures),
            "--runs",
            str(args.runs),
        ]
        + (["--no-raw"] if args.no_raw else [])
        + (["--keep"] if args.keep else [])
    )
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"benchmark on {database_url} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _report(result: dict[str, Any], show_plan: bool) -> None:
    print(
        f"\n{result['vendor']}: {result['measures']} measures, {result['rows']:,} observation rows "
        f"(loaded in {result['load_s']:.1f} s); roll-ups built in {result['rollup_s']:.1f} s "
        f"(CPU {result['rollup_cpu_s']:.1f} s): {result['rollup_days']:,} (measure, day) rows"
    )
    for label, page in result["pages"].items():
        cpu = "CPU (+server)" if page["cpu_backend"] else "CPU"
        print(
            f"  {label:<32} median {page['median_ms']:7.1f} ms   p95 {page['p95_ms']:7.1f} ms   "
            f"{cpu} {page['cpu_ms']:6.1f} ms   {page['queries']} SQL queries   {page['cards']} cards   "
            f"{page['bytes'] / 1024:.0f} KiB   load {page['load']:.1f}"
        )
    if show_plan:
        print("  plans of the grouped bucket queries:")
        for line in result["plan"].splitlines():
            print(f"    {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--measures", type=int, default=200)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--postgres", default=os.environ.get("TRUENORTH_BENCH_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--plans", action="store_true", help="print the plans of the bucket queries")
    parser.add_argument(
        "--no-raw", action="store_true", help="time the roll-ups only, not the dashboard from the raw rows"
    )
    parser.add_argument(
        "--data-dir",
        help="keep the SQLite data directory here (made if missing) and reuse its rows on the next run "
        "(the observations are 'now'-relative: reload after a day or so by deleting the directory)",
    )
    parser.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        return child(args)

    print(
        f"Value dashboard: {args.measures} measures, {args.observations:,} observations over a year, "
        f"{args.runs} timed requests per period (after one warm-up)."
    )
    results = []
    with contextlib.ExitStack() as stack:
        if args.data_dir:
            data_dir = str(Path(args.data_dir).resolve())
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            args.keep = True
        else:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="truenorth-bench-"))
        sqlite = _run_child(f"sqlite:///{data_dir}/bench.sqlite3", data_dir, args)
        args.keep = False  # PostgreSQL's scratch database is always made afresh
        _report(sqlite, args.plans)
        results.append(sqlite)
        if not args.no_postgres:
            try:
                admin = _postgres_admin(args.postgres)
            except Exception as exc:  # not reachable: say so and keep the SQLite figures
                print(f"\npostgresql: skipped ({str(exc).strip().splitlines()[0]})")
            else:
                with admin:
                    admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
                    admin.execute(f"CREATE DATABASE {SCRATCH_DB}")
                try:
                    base = args.postgres.rsplit("/", 1)[0]
                    postgres = _run_child(f"{base}/{SCRATCH_DB}", data_dir, args)
                    _report(postgres, args.plans)
                    results.append(postgres)
                finally:
                    with _postgres_admin(args.postgres) as admin:
                        admin.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
    if len(results) == 2:
        print("\nSQLite / PostgreSQL (median server time per page):")
        for label in results[0]["pages"]:
            a, b = results[0]["pages"][label]["median_ms"], results[1]["pages"][label]["median_ms"]
            print(f"  {label:<32} {a / b:5.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
