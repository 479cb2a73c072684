"""Configuration and database health, for `truenorth check` (and later the admin page)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

VENDOR_FILES = ("vendor/htmx/htmx.min.js", "vendor/pico/pico.min.css", "vendor/vega/vega-embed.min.js")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "ok" | "warning" | "error"
    detail: str


def _database() -> list[CheckResult]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # report any driver error as a failed check, never a traceback
        return [
            CheckResult(
                "database", "error", f"{connection.vendor}: cannot connect ({exc.__class__.__name__}: {exc})"
            )
        ]
    results = [CheckResult("database", "ok", f"{connection.vendor} reachable")]
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        results.append(
            CheckResult("migrations", "error", f"{len(pending)} unapplied; run `truenorth migrate`")
        )
    else:
        results.append(CheckResult("migrations", "ok", "all applied"))
    return results


def _assets() -> CheckResult:
    static_dirs = [Path(d) for d in settings.STATICFILES_DIRS] + [Path(settings.STATIC_ROOT)]
    missing = [f for f in VENDOR_FILES if not any((d / f).exists() for d in static_dirs)]
    if missing:
        return CheckResult("front-end assets", "error", f"missing {', '.join(missing)}; run `make setup`")
    return CheckResult("front-end assets", "ok", "htmx, Pico and Vega present")


def _security() -> list[CheckResult]:
    results = []
    if settings.DEBUG:
        results.append(CheckResult("debug", "warning", "DEBUG is on; never in production"))
    else:
        results.append(CheckResult("debug", "ok", "off"))
    if not settings.HTTPS:
        results.append(
            CheckResult("https", "warning", "TRUENORTH_HTTPS=false: cookies are not Secure, no HSTS")
        )
    else:
        results.append(CheckResult("https", "ok", "secure cookies and HSTS on"))
    return results


def _refreshes() -> list[CheckResult]:
    """Data sources whose last check failed and measures whose last refresh failed, one line each."""
    from truenorth.measures.models import DataSource, Measure

    try:
        sources = list(
            DataSource.objects.exclude(last_error="")
            .select_related("organisation")
            .order_by("organisation__slug", "name")
        )
        measures = list(
            Measure.objects.filter(archived_at__isnull=True)
            .exclude(last_refresh_error="")
            .select_related("organisation")
            .order_by("organisation__slug", "name", "id")
        )
    except Exception:  # no database or no tables yet: the database checks above say so
        return []
    results = [
        CheckResult(f"data source “{s.name}” ({s.organisation.slug})", "error", _one_line(s.last_error))
        for s in sources
    ]
    results += [
        CheckResult(
            f"measure “{m.name}” (id {m.pk}, {m.organisation.slug})",
            "error",
            "last refresh failed: " + _one_line(m.last_refresh_error),
        )
        for m in measures
    ]
    return results or [CheckResult("data sources and refreshes", "ok", "no failures")]


def _jobs() -> list[CheckResult]:
    """Background jobs queued or running for over an hour: the worker is not running, or was killed
    (`truenorth worker` fails the jobs it finds running when it starts)."""
    from truenorth.jobs.services import STUCK_AFTER, stuck_jobs

    try:
        stuck = stuck_jobs()
    except Exception:  # no database or no tables yet: the database checks above say so
        return []
    hours = int(STUCK_AFTER.total_seconds() // 3600)
    return [
        CheckResult(
            f"job #{j.pk} ({j.kind}, {j.organisation.slug})",
            "warning",
            f"{j.status} since {j.created_at:%Y-%m-%d %H:%M} UTC (over {hours} h): "
            "is `truenorth worker` running?",
        )
        for j in stuck
    ] or [CheckResult("background jobs", "ok", "none stuck")]


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:199] + "…"


def run_checks() -> list[CheckResult]:
    database = _database()
    return [
        CheckResult("data directory", "ok", str(settings.DATA_DIR)),
        *database,
        *(_refreshes() if database[0].status == "ok" else []),  # needs a reachable database
        *(_jobs() if database[0].status == "ok" else []),
        _assets(),
        *_security(),
        CheckResult(
            "e-mail",
            "ok",
            "SMTP " + settings.EMAIL_HOST if settings.EMAIL_HOST else "console (printed, not sent)",
        ),
    ]
