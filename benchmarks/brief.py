"""Product brief at scale: one product with 500 goals and 100 measures (with a year of observations).

On SQLite in a temporary data directory (a child process, as Django is configured once per process), it
loads the data in bulk, then requests the brief's web page through Django's test client (the full
middleware, view and template stack) several times, and prints the server time per page (median and
p95) and the SQL queries per page; then it makes the PDF as the background job does (build the brief,
WeasyPrint with the charts rendered to SVG) and prints its time (median; and the CPU time, which a busy
machine does not inflate), its steps and its size. Aims (issue 11): web
brief under 300 ms, PDF under 3 s. It never asserts on time.

    .venv/bin/python benchmarks/brief.py [--goals N] [--measures N] [--observations N] [--runs N]
        [--pdf-runs N]
"""

from __future__ import annotations

import argparse
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
KVAS = ("current_value", "unrealized_value", "time_to_market", "ability_to_innovate")
LEVELS = ("strategic", "intermediate", "tactical", "sprint")


def _load(goals: int, measures: int, observations: int, now: dt.datetime) -> tuple[str, int, int]:
    """Create the organisation, product, goal tree, check-ins, measures and observations."""
    from django.db import connection

    from truenorth.accounts.models import User
    from truenorth.hypotheses.models import Decision, Hypothesis
    from truenorth.measures.models import Measure, Observation
    from truenorth.orgs.services import create_organisation
    from truenorth.strategy.models import CheckIn, Endorsement, Goal, Product, TargetMeasure

    rng = random.Random(11)  # noqa: S311 (made-up data, not secrets)
    user = User.objects.create_user(email="bench@example.com", password="bench-password-123", name="Bench")
    org = create_organisation(user, "Bench Org", "bench")
    product = Product.objects.create(
        organisation=org, name="Bench product", owner=user, vision="A vision", product_goal="A goal"
    )
    Measure.objects.bulk_create(
        [
            Measure(
                organisation=org,
                product=product,
                name=f"Measure {i:03}",
                kva=KVAS[i % 4],
                unit="pts",
                direction="higher" if i % 3 else "lower",
                cadence_days=7 if i % 10 else 1,  # every tenth one is stale
                baseline=50.0,
                target=80.0,
            )
            for i in range(measures)
        ]
    )
    measure_ids = list(Measure.objects.filter(product=product).order_by("id").values_list("id", flat=True))

    # The tree: a few strategic goals, each level five times wider, the rest as sprint goals.
    created: list[Goal] = []
    parents: list[Goal | None] = [None]
    level = 0
    while len(created) < goals:
        width = 5 if level < 3 else goals  # fill the last level with what is left
        next_parents: list[Goal | None] = []
        for parent in parents:
            batch = [
                Goal(
                    organisation=org,
                    product=product,
                    parent=parent,
                    level=LEVELS[min(level, 3)],
                    title=f"{LEVELS[min(level, 3)].title()} goal {len(created) + k}",
                    status="active",
                    owner=user,
                    position=k,
                )
                for k in range(min(width, goals - len(created)))
            ]
            made = Goal.objects.bulk_create(batch)
            created += made
            next_parents += made
            if len(created) >= goals:
                break
        parents, level = next_parents, level + 1
    TargetMeasure.objects.bulk_create(
        [
            TargetMeasure(
                goal=g,
                name="Tracked",
                baseline=50.0,
                target=80.0,
                measure_id=measure_ids[i % len(measure_ids)] if i % 2 else None,
            )
            for i, g in enumerate(created)
        ]
    )
    CheckIn.objects.bulk_create(
        [
            CheckIn(
                goal=g,
                author=user,
                status=rng.choice(("on_track", "at_risk", "off_track")),
                confidence=rng.randint(1, 9),
            )
            for g in created
        ]
    )
    Endorsement.objects.bulk_create(
        [Endorsement(goal=g, user=user, kind="concern", note="Unclear") for g in created[::25]]
    )
    for i in range(20):
        h = Hypothesis.objects.create(
            organisation=org,
            product=product,
            title=f"Hypothesis {i}",
            state="testing" if i % 2 else "concluded",
        )
        if i % 2 == 0:
            Decision.objects.create(
                hypothesis=h, outcome="validated", decision="persevere", learning=f"Learning {i}"
            )

    table = Observation._meta.db_table
    columns = "(measure_id, value, observed_at, source, note, superseded, recorded_at)"
    step = dt.timedelta(days=365) / observations
    start = now - dt.timedelta(days=365)
    recorded = connection.ops.adapt_datetimefield_value(now)
    rows: list[tuple[Any, ...]] = []
    for mid in measure_ids:
        value = rng.uniform(40, 60)
        for k in range(observations):
            value += rng.gauss(0.01, 0.5)
            when = start + step * k
            rows.append(
                (
                    mid,
                    round(value, 3),
                    connection.ops.adapt_datetimefield_value(when),
                    "api",
                    "",
                    False,
                    recorded,
                )
            )
    with connection.cursor() as cursor:
        sql = f"INSERT INTO {table} {columns} VALUES (%s, %s, %s, %s, %s, %s, %s)"  # noqa: S608
        cursor.executemany(sql, rows)
        cursor.execute("ANALYZE")
    return f"/o/{org.slug}/products/{product.pk}/brief/", user.pk, product.pk


def _percentile(times: list[float], share: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def child(args: argparse.Namespace) -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "truenorth.settings")
    django.setup()
    import weasyprint  # type: ignore[import-untyped]
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from truenorth.accounts.models import User
    from truenorth.engagement.services.briefs import build_brief
    from truenorth.engagement.services.briefs_render import brief_html, brief_pdf
    from truenorth.orgs.models import Membership

    call_command("migrate", interactive=False, verbosity=0)
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    url, user_id, product_id = _load(args.goals, args.measures, args.observations, now)
    load_s = time.perf_counter() - t0

    client = Client()
    user = User.objects.get(pk=user_id)
    client.force_login(user)
    response = client.get(url)  # warm-up: connection, template and code caches
    assert response.status_code == 200, response.status_code
    times: list[float] = []
    cpu: list[float] = []
    queries = 0
    for _ in range(args.runs):
        with CaptureQueriesContext(connection) as captured:
            t1, c1 = time.perf_counter(), time.process_time()
            response = client.get(url)
            times.append((time.perf_counter() - t1) * 1000)
            cpu.append((time.process_time() - c1) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(captured.captured_queries)

    membership = Membership.objects.get(user=user)
    brief_pdf(build_brief(membership, product_id))  # warm-up: WeasyPrint's fonts, vl-convert's engine
    pdf_times: list[float] = []
    pdf_cpu: list[float] = []
    parts: dict[str, list[float]] = {"build": [], "html": [], "weasyprint": []}
    size = 0
    for _ in range(args.pdf_runs):
        t1, c1 = time.perf_counter(), time.process_time()
        pdf = brief_pdf(build_brief(membership, product_id))
        pdf_times.append(time.perf_counter() - t1)
        pdf_cpu.append(time.process_time() - c1)
        size = len(pdf)
        # The same work in its three steps: the brief, its HTML with the SVG charts, WeasyPrint.
        t1 = time.perf_counter()
        made = build_brief(membership, product_id)
        t2 = time.perf_counter()
        html = brief_html(made, for_pdf=True)
        t3 = time.perf_counter()
        weasyprint.HTML(string=html).write_pdf()
        t4 = time.perf_counter()
        for key, spent in (("build", t2 - t1), ("html", t3 - t2), ("weasyprint", t4 - t3)):
            parts[key].append(spent)
    brief = build_brief(membership, product_id)
    if args.html:
        Path(args.html).write_text(brief_html(brief, for_pdf=True))
    print(
        json.dumps(
            {
                "load_s": load_s,
                "goals": brief.goals_total,
                "goals_listed": len(brief.goals),
                "measures": len(brief.measures),
                "charts": len(brief.charts),
                "risks": brief.risks_total,
                "web_median_ms": statistics.median(times),
                "web_p95_ms": _percentile(times, 0.95),
                "web_cpu_median_ms": statistics.median(cpu),
                "web_queries": queries,
                "web_bytes": len(response.content),
                "pdf_median_s": statistics.median(pdf_times),
                "pdf_max_s": max(pdf_times),
                "pdf_cpu_median_s": statistics.median(pdf_cpu),
                "pdf_bytes": size,
                "pdf_parts_s": {key: statistics.median(values) for key, values in parts.items()},
            }
        )
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--goals", type=int, default=500)
    parser.add_argument("--measures", type=int, default=100)
    parser.add_argument("--observations", type=int, default=365, help="per measure, over a year")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pdf-runs", type=int, default=5)
    parser.add_argument("--html", metavar="FILE", help="also write the HTML handed to WeasyPrint here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        return child(args)

    print(
        f"Product brief: {args.goals} goals, {args.measures} measures x {args.observations} observations, "
        f"{args.runs} timed page requests and {args.pdf_runs} PDFs (after one warm-up each), SQLite."
    )
    with tempfile.TemporaryDirectory(prefix="truenorth-bench-") as data_dir:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "DEBUG", "ALLOWED_HOSTS", "SECRET_KEY")
        }
        env.update(
            DATABASE_URL=f"sqlite:///{data_dir}/bench.sqlite3",
            TRUENORTH_DATA_DIR=data_dir,
            TRUENORTH_HTTPS="false",
            ALLOWED_HOSTS="testserver,localhost",
            DJANGO_SETTINGS_MODULE="truenorth.settings",
        )
        command = [sys.executable, __file__, "--child", *sys.argv[1:]]
        done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            return 1
        r = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"\nLoaded {r['goals']} goals ({r['goals_listed']} listed), {r['measures']} measures "
        f"({r['charts']} charted), {r['risks']} risks in {r['load_s']:.1f} s"
    )
    print(
        f"  web brief  median {r['web_median_ms']:7.1f} ms   p95 {r['web_p95_ms']:7.1f} ms   "
        f"{r['web_queries']} SQL queries   {r['web_bytes'] / 1024:.0f} KiB   (aim: under 300 ms)"
    )
    print(f"             CPU time median {r['web_cpu_median_ms']:.1f} ms")
    print(
        f"  PDF        median {r['pdf_median_s']:7.2f} s    max {r['pdf_max_s']:7.2f} s    "
        f"{r['pdf_bytes'] / 1024:.0f} KiB   (aim: under 3 s)"
    )
    print(f"             CPU time median {r['pdf_cpu_median_s']:.2f} s (what an idle single core would take)")
    steps = r["pdf_parts_s"]
    print(
        f"    of which: brief {steps['build']:.2f} s, HTML with the SVG charts {steps['html']:.2f} s, "
        f"WeasyPrint {steps['weasyprint']:.2f} s (medians)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
