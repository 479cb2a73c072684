"""Delivery evidence at scale: a 100,000-commit git history and 1,000,000 work item transitions imported,
then every flow and DORA metric computed.

In a temporary directory (a SQLite database and a git repository):

1. builds a synthetic repository of ``--commits`` commits with ``git fast-import``
   (`scripts/make_git_history.py`: feature branches and merge commits, tags every 400 commits), and
   times ``git log`` alone reading it, with the same arguments as the git importer;
2. imports it with the git importer (`truenorth.delivery.importers.git`) through the ingest service
   (`services.ingest.ingest`), after timing the importer's parsing alone (no database), then adds a
   production deployment every day that had commits (12 % failed, each followed by a fix two hours
   later; an incident for half of the failures, one left open);
3. generates ``--transitions`` work item transitions (`truenorth.delivery.synthetic`, 20 teams over
   two years, stories and bugs with reopenings, blocked and review states) and imports them the same
   way into an "events" source;
4. computes the flow and DORA metrics with the services the pages and the API use
   (`services.metrics`: `item_table` streams the items and their transitions and replays each item into
   a few numbers, `flow_of` computes the flow figures over those arrays, then the DORA inputs,
   `dora.dora_metrics`, the weekly trend, and the Monte Carlo forecasts on the daily throughput), then
   `report` end to end in a process of its own;
5. before and after: the reference path (`histories`: every item's history as Python objects, then
   `flow.flow_metrics`) on the same data, in its own process, with its time, CPU time and peak memory
   next to the streamed path's, and whether every flow figure is the same (a fingerprint of all of them,
   every completed item's row included).

Each step runs in a child process of its own, so its peak memory (``getrusage``, maximum resident set)
is its own; "above rest" is the peak minus the process's size once Django is set up. It prints times,
rows per second, peak memory, and the ratio of the git import (and of its parsing alone) to ``git log``
alone. It never asserts on time. ``--data-dir DIR`` keeps the database and the repository in DIR; run
again with the same DIR, it only measures the metrics (steps 4 and 5).

    .venv/bin/python benchmarks/delivery.py                                  # 100,000 commits, 1,000,000 transitions
    .venv/bin/python benchmarks/delivery.py --commits 10000 --transitions 100000
    .venv/bin/python benchmarks/delivery.py --data-dir /tmp/bench-delivery    # keep the data; again: metrics only
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

END = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # the end of the history (exclusive)
WINDOW_DAYS = 1095  # the metrics' window: the three years before END (the services' longest)
DAYS = 730  # the work items' two years before END
START = (END - dt.timedelta(days=DAYS)).date()
TEAMS = 20
TRANSITIONS_PER_ITEM = (
    4.5  # a little under what the generator makes on average (4.56), so at least the target
)
ORG_SLUG = "bench"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- children (one step each, Django configured once per process) -----------------------------------


def _setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "truenorth.settings")
    django.setup()


def _membership() -> Any:
    from truenorth.orgs.models import Membership

    return Membership.objects.select_related("organisation").get(organisation__slug=ORG_SLUG)


def step_prepare(args: argparse.Namespace) -> dict[str, Any]:
    from django.core.management import call_command

    from truenorth.accounts.models import User
    from truenorth.delivery import synthetic
    from truenorth.delivery.models import DeliverySource
    from truenorth.orgs.services import create_organisation

    call_command("migrate", interactive=False, verbosity=0)
    user = User.objects.create_user(email="bench@example.com", password="bench-password-123", name="Bench")
    org = create_organisation(user, "Bench Org", ORG_SLUG)
    DeliverySource.objects.create(organisation=org, name="monorepo", kind="git", created_by=user)
    DeliverySource.objects.create(
        organisation=org,
        name="tickets",
        kind="events",
        state_mapping={k: list(v) for k, v in synthetic.STATE_MAPPING.items()},
        created_by=user,
    )
    return {}


def step_git(args: argparse.Namespace) -> dict[str, Any]:
    from truenorth.delivery.importers.git import GitImporter
    from truenorth.delivery.models import Commit, DeliverySource, Release
    from truenorth.delivery.services.ingest import ingest, start_run

    repo = Path(args.repo)
    source = DeliverySource.objects.get(name="monorepo")
    t0 = time.perf_counter()
    parsed = sum(1 for _ in GitImporter().read(repo))
    parse_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = ingest(source, GitImporter().read(repo), run=start_run(source, "git", file_name=str(repo)))
    import_s = time.perf_counter() - t0
    assert run.error_count == 0, run.errors[:3]
    t0 = time.perf_counter()
    again = ingest(source, GitImporter().read(repo), run=start_run(source, "git", file_name=str(repo)))
    reimport_s = time.perf_counter() - t0
    return {
        "records": parsed,
        "parse_s": parse_s,
        "import_s": import_s,
        "reimport_s": reimport_s,
        "reimport_created": sum(again.created.values()),
        "commits": Commit.objects.filter(source=source).count(),
        "releases": Release.objects.filter(source=source).count(),
        "peak_rss_mb": _rss_mb(),
    }


def _deployment_records(source: Any, seed: int) -> list[Any]:
    """A production deployment every day that had commits (its commits), some failing (then a fix)."""
    from truenorth.delivery.importers.base import DeploymentRecord, IncidentRecord
    from truenorth.delivery.models import Commit

    rng = random.Random(seed)  # noqa: S311 - synthetic data
    days: dict[dt.date, list[str]] = {}
    for sha, at in (
        Commit.objects.filter(source=source).order_by("committed_at").values_list("sha", "committed_at")
    ):
        days.setdefault(at.date(), []).append(sha)
    out: list[Any] = []
    for n, (day, shas) in enumerate(sorted(days.items())):
        at = dt.datetime.combine(day, dt.time(18, 30), dt.UTC)
        ok = rng.random() >= 0.12
        out.append(DeploymentRecord(f"d{n}", f"r{n}", "api", "production", at, ok, tuple(shas)))
        if not ok:
            fix = at + dt.timedelta(hours=2)
            out.append(
                DeploymentRecord(f"d{n}-fix", f"r{n}-fix", "api", "production", fix, True, tuple(shas))
            )
            if rng.random() < 0.5:
                out.append(IncidentRecord(f"inc-{n}", "api", at + dt.timedelta(minutes=20), fix))
    last = max(days)
    out.append(IncidentRecord("inc-open", "api", dt.datetime.combine(last, dt.time(20), dt.UTC), None))
    return out


def step_deployments(args: argparse.Namespace) -> dict[str, Any]:
    from truenorth.delivery.models import DeliverySource
    from truenorth.delivery.services.ingest import ingest, start_run

    source = DeliverySource.objects.get(name="monorepo")
    t0 = time.perf_counter()
    records = _deployment_records(source, args.seed)
    run = ingest(source, records, run=start_run(source, "deployments"))
    return {
        "records": len(records),
        "created": run.created,
        "seconds": time.perf_counter() - t0,
        "peak_rss_mb": _rss_mb(),
    }


def step_items(args: argparse.Namespace) -> dict[str, Any]:
    from truenorth.delivery import synthetic
    from truenorth.delivery.demo import records
    from truenorth.delivery.models import DeliverySource
    from truenorth.delivery.services.ingest import ingest, start_run

    source = DeliverySource.objects.get(name="tickets")
    per_day = args.transitions / (TRANSITIONS_PER_ITEM * DAYS * TEAMS)
    t0 = time.perf_counter()
    history = synthetic.generate(
        args.seed, start=START, days=DAYS, teams=TEAMS, items_per_day=per_day, code=False
    )
    generate_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = ingest(source, records(history), run=start_run(source, "events"))
    import_s = time.perf_counter() - t0
    assert run.error_count == 0, run.errors[:3]
    return {
        "items": len(history.items),
        "transitions": history.transition_count,
        "generate_s": generate_s,
        "import_s": import_s,
        "created": run.created,
        "peak_rss_mb": _rss_mb(),
    }


def _flow_digest(fm: Any) -> str:
    """A fingerprint of every flow figure, every completed item and every age included (row by row)."""
    import hashlib

    digest = hashlib.sha256()
    for name in ("cycle_time_days", "lead_time_days", "throughput_per_week", "daily_throughput", "wip"):
        digest.update(repr(getattr(fm, name)).encode())
    for name in ("flow_efficiency", "never_started", "active_days", "waiting_days", "cfd", "ages"):
        digest.update(repr(getattr(fm, name)).encode())
    for rows in (fm.completed, fm.lead_times):
        for row in rows:
            digest.update(repr(row).encode())
    return digest.hexdigest()[:16]


def step_metrics_objects(args: argparse.Namespace) -> dict[str, Any]:
    """Before: every item's history as Python objects (`histories`, the reference), then flow.flow_metrics."""
    from truenorth.delivery.services import metrics

    membership = _membership()
    baseline = _rss_mb()
    start = END - dt.timedelta(days=WINDOW_DAYS)
    end = END - dt.timedelta(microseconds=1)
    sources = metrics.sources_in(membership, metrics.Scope())
    t0, c0 = time.perf_counter(), time.process_time()
    items = metrics.histories(sources, end)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fm = metrics.flow_of(sources, items, start=start, end=end)
    flow_s = time.perf_counter() - t0
    return {
        "times": {"load item histories (objects)": load_s, "flow metrics (objects)": flow_s},
        "cpu_s": time.process_time() - c0,
        "digest": _flow_digest(fm),
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _rss_mb(),
    }


def step_report(args: argparse.Namespace) -> dict[str, Any]:
    """`report` end to end, as the pages, the API and the background job call it, in a process of its own."""
    from truenorth.delivery.services import metrics

    membership = _membership()
    baseline = _rss_mb()
    start = END - dt.timedelta(days=WINDOW_DAYS)
    end = END - dt.timedelta(microseconds=1)
    t0 = time.perf_counter()
    out = metrics.report(membership, metrics.Scope(), start=start, end=end)
    return {
        "seconds": time.perf_counter() - t0,
        "json_mb": len(json.dumps(out)) / 1e6,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _rss_mb(),
    }


def step_metrics(args: argparse.Namespace) -> dict[str, Any]:
    from truenorth.delivery import forecast
    from truenorth.delivery.services import metrics

    membership = _membership()
    baseline = _rss_mb()
    start = END - dt.timedelta(days=WINDOW_DAYS)
    end = END - dt.timedelta(microseconds=1)
    times: dict[str, float] = {}

    def timed(name: str, fn: Any, *a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        times[name] = time.perf_counter() - t0
        return out

    sources = metrics.sources_in(membership, metrics.Scope())
    c0 = time.process_time()
    items = timed("load item histories (streamed, replayed)", metrics.item_table, sources, end)
    fm = timed("flow metrics (arrays)", metrics.flow_of, sources, items, start=start, end=end)
    flow_cpu_s = time.process_time() - c0
    flow_peak = _rss_mb()
    digest = _flow_digest(fm)
    del items  # as `report` does: the items are let go before the DORA records are loaded
    inputs = timed("load DORA inputs", metrics.dora_inputs, sources, end)
    records = metrics.combined(inputs, sources)
    year = metrics.check_year(None)
    dm = timed("DORA metrics", metrics.dora_of, records, start=start, end=end, year=year)
    weeks = timed("DORA weekly trend", metrics.dora_weeks, records, start=start, end=end)
    timed("Monte Carlo: how many in 30 days (10,000 trials)", forecast.how_many, fm.daily_throughput, 30)
    timed("Monte Carlo: when 500 items (10,000 trials)", forecast.when, fm.daily_throughput, 500)
    timed("Monte Carlo: backtest", forecast.backtest, fm.daily_throughput)
    del inputs, records
    return {
        "times": times,
        "digest": digest,
        "cpu_s": flow_cpu_s,
        "flow_peak_rss_mb": flow_peak,
        "flow": {
            "completed": len(fm.completed),
            "cycle_time_days": fm.cycle_time_days,
            "lead_time_days": fm.lead_time_days,
            "wip": fm.wip,
            "flow_efficiency": fm.flow_efficiency,
            "never_started": fm.never_started,
        },
        "dora": {
            "deployments": dm.deployments,
            "per_week": dm.deployment_frequency_per_week,
            "lead_time_hours": dm.lead_time_hours,
            "lead_time_samples": dm.lead_time_samples,
            "change_failure_rate": dm.change_failure_rate,
            "time_to_restore_hours": dm.time_to_restore_hours,
            "rework_rate": dm.rework_rate,
            "open_incidents": dm.open_incidents,
            "bands": dm.bands,
            "weeks": len(weeks),
        },
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _rss_mb(),
    }


STEPS = {
    "prepare": step_prepare,
    "git": step_git,
    "deployments": step_deployments,
    "items": step_items,
    "metrics": step_metrics,
    "metrics_objects": step_metrics_objects,
    "report": step_report,
}


def child(args: argparse.Namespace) -> int:
    _setup()
    result = STEPS[args.child](args)
    print(json.dumps(result, default=str))
    return 0


# --- the parent ------------------------------------------------------------------------------------------


def _run(step: str, args: argparse.Namespace, data_dir: str, repo: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEBUG", "SECRET_KEY")}
    env.update(
        DATABASE_URL=f"sqlite:///{data_dir}/bench.sqlite3",
        TRUENORTH_DATA_DIR=data_dir,
        DJANGO_SETTINGS_MODULE="truenorth.settings",
    )
    command = [
        sys.executable,
        __file__,
        "--child",
        step,
        "--repo",
        str(repo),
        "--transitions",
        str(args.transitions),
        "--seed",
        str(args.seed),
    ]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise RuntimeError(f"step {step} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _git_log_seconds(repo: Path, repeat: int = 3) -> float:
    """`git log` alone, with the importer's arguments, its output read through a pipe (best of `repeat`)."""
    from truenorth.delivery.importers.git import LOG_FORMAT, _env, _git

    best = float("inf")
    for _ in range(repeat + 1):  # the first run only warms the page cache
        t0 = time.perf_counter()
        subprocess.run(  # noqa: S603
            _git(repo, "log", "--all", "--source", f"--format={LOG_FORMAT}"),
            capture_output=True,
            check=True,
            env=_env(),
        )
        best = min(best, time.perf_counter() - t0)
    return best


def _metrics_only(args: argparse.Namespace, data_dir: str, repo: Path) -> None:
    result = _run("metrics", args, data_dir, repo)
    before = _run("metrics_objects", args, data_dir, repo)
    whole = _run("report", args, data_dir, repo)
    print(
        f"\nmetrics over the {WINDOW_DAYS} days before {END.date()} (peak RSS {result['peak_rss_mb']:.0f} MB, "
        f"{result['peak_rss_mb'] - result['baseline_rss_mb']:.0f} MB above the process at rest)"
    )
    for name, seconds in result["times"].items():
        print(f"  {name:<48} {seconds:7.3f} s")
    print(
        f"  {'report end to end (flow + DORA + trend)':<48} {whole['seconds']:7.3f} s   "
        f"peak RSS {whole['peak_rss_mb']:.0f} MB ({whole['peak_rss_mb'] - whole['baseline_rss_mb']:.0f} above rest, "
        f"own process), JSON {whole['json_mb']:.1f} MB"
    )
    print(f"  flow: {json.dumps(result['flow'], default=str)}")
    print(f"  DORA: {json.dumps(result['dora'], default=str)}")
    load, compute = (
        result["times"]["load item histories (streamed, replayed)"],
        result["times"]["flow metrics (arrays)"],
    )
    old_load, old_compute = before["times"].values()
    print(
        "\nflow, before (every transition as Python objects, then flow.flow_metrics) and after (streamed, "
        "replayed item by item into arrays):"
    )
    print(
        f"  before  load {old_load:7.3f} s   compute {old_compute:7.3f} s   "
        f"peak RSS {before['peak_rss_mb']:5.0f} MB ({before['peak_rss_mb'] - before['baseline_rss_mb']:.0f} above rest)"
    )
    print(
        f"  after   load {load:7.3f} s   compute {compute:7.3f} s   "
        f"peak RSS {result['flow_peak_rss_mb']:5.0f} MB "
        f"({result['flow_peak_rss_mb'] - result['baseline_rss_mb']:.0f} above rest)"
    )
    print(
        f"  CPU time before {before['cpu_s']:.2f} s, after {result['cpu_s']:.2f} s; "
        f"elapsed {(old_load + old_compute) / (load + compute):.1f}x faster; "
        f"same figures: {'yes' if before['digest'] == result['digest'] else 'NO'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=100_000)
    parser.add_argument("--transitions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument(
        "--data-dir",
        default="",
        help="keep the database and repository here; when they are already there, only measure the metrics",
    )
    parser.add_argument("--child", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--repo", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    sys.path.insert(0, str(ROOT / "scripts"))
    import make_git_history

    started = time.perf_counter()
    print(f"Delivery at scale: {args.commits:,} commits, {args.transitions:,} work item transitions (SQLite)")
    with tempfile.TemporaryDirectory(prefix="truenorth-bench-delivery-") as temp_dir:
        data_dir = args.data_dir or temp_dir
        repo = Path(data_dir) / "repo"
        if (Path(data_dir) / "bench.sqlite3").exists():
            _metrics_only(args, data_dir, repo)
            print(f"\ntotal {time.perf_counter() - started:.0f} s")
            return 0
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        # The repository's history ends about at END (about 150 commits a working day).
        first = END - dt.timedelta(days=args.commits / make_git_history.COMMITS_PER_DAY * 1.03 + 1)
        make_git_history.build(repo, args.commits, args.seed, start=first.replace(hour=9))
        print(f"\nsynthetic repository (git fast-import)       {time.perf_counter() - t0:7.2f} s")
        git_log = _git_log_seconds(repo)
        print(f"git log alone (importer's arguments, best of 3) {git_log:5.2f} s")
        _run("prepare", args, data_dir, repo)

        git = _run("git", args, data_dir, repo)
        print(f"\ngit importer, parsing only ({git['records']:,} records)  {git['parse_s']:6.2f} s")
        print(
            f"git import into the database                 {git['import_s']:7.2f} s   "
            f"{git['commits'] / git['import_s']:,.0f} commits/s   {git['commits']:,} commits, "
            f"{git['releases']} releases   peak RSS {git['peak_rss_mb']:.0f} MB"
        )
        print(
            f"the same import again (idempotent)           {git['reimport_s']:7.2f} s   "
            f"{git['reimport_created']} rows created"
        )
        print(
            f"ratio to git log alone: import {git['import_s'] / git_log:.1f}x, "
            f"parsing alone {git['parse_s'] / git_log:.1f}x"
        )

        deployments = _run("deployments", args, data_dir, repo)
        print(
            f"\ndeployments and incidents ({deployments['records']:,} records)  {deployments['seconds']:6.2f} s   "
            f"{deployments['created']}"
        )

        items = _run("items", args, data_dir, repo)
        print(
            f"\nwork items generated ({items['items']:,} items, {items['transitions']:,} transitions) "
            f"{items['generate_s']:6.2f} s"
        )
        print(
            f"work items imported                         {items['import_s']:7.2f} s   "
            f"{items['transitions'] / items['import_s']:,.0f} transitions/s   "
            f"peak RSS {items['peak_rss_mb']:.0f} MB"
        )

        _metrics_only(args, data_dir, repo)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
