"""Configuration and database health, for `truenorth check` (and later the admin page).

Core checks what it owns (the data directory, the database and its migrations, the front-end assets,
security settings, e-mail, logs, metrics and error reports); the apps add their own checks with `register` from their AppConfig.ready()
(measures: failed data sources and refreshes; jobs: jobs stuck in the queue). Registered checks run only
when the database is reachable, in the order they were registered (the order of INSTALLED_APPS).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

VENDOR_FILES = ("vendor/htmx/htmx.min.js", "vendor/pico/pico.min.css", "vendor/vega/vega-embed.min.js")


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "ok" | "warning" | "error"
    detail: str


Check = Callable[[], list[CheckResult]]
_CHECKS: list[Check] = []


def register(check: Check) -> Check:
    """Add an app's check to `truenorth check` (once; usable as a decorator). It needs the database, so it
    runs only when the database is reachable, and should return [] when its tables do not exist yet."""
    if check not in _CHECKS:
        _CHECKS.append(check)
    return check


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


def _metrics() -> list[CheckResult]:
    """`/metrics` on or off, and the directory every process writes its metric files to."""
    from truenorth.core.telemetry import metrics_directory

    results = [
        CheckResult("metrics", "ok", "/metrics on (Bearer TRUENORTH_METRICS_TOKEN)")
        if settings.TRUENORTH_METRICS_TOKEN
        else CheckResult("metrics", "ok", "off (set TRUENORTH_METRICS_TOKEN to serve /metrics)")
    ]
    directory = metrics_directory()
    existing = directory if directory.exists() else directory.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        results.append(
            CheckResult("metrics directory", "error", f"{directory}: not writable by this account")
        )
    elif directory.exists() and directory.stat().st_mode & 0o077:
        results.append(
            CheckResult("metrics directory", "warning", f"{directory}: readable by others; chmod 700 it")
        )
    else:
        results.append(CheckResult("metrics directory", "ok", f"{directory} (one file set per process)"))
    return results


def _logs() -> CheckResult:
    return CheckResult(
        "logs",
        "ok",
        f"{settings.TRUENORTH_LOG_FORMAT} to stderr, level {settings.LOG_LEVEL}"
        + (" (one JSON object per line)" if settings.TRUENORTH_LOG_FORMAT == "json" else ""),
    )


def _error_reports() -> CheckResult:
    """Sentry: off, or on with the SDK loaded and a client ready (the DSN's key is never printed)."""
    if not settings.SENTRY_DSN:
        return CheckResult("error reports", "ok", "off (set SENTRY_DSN to report errors to Sentry)")
    try:
        import sentry_sdk
    except ImportError:  # settings refuse this; kept for a broken installation
        return CheckResult(
            "error reports", "error", "SENTRY_DSN set but sentry-sdk missing: truenorth[sentry]"
        )
    if not sentry_sdk.get_client().is_active():
        return CheckResult("error reports", "error", "SENTRY_DSN set but Sentry is not initialised")
    host = urlsplit(settings.SENTRY_DSN).hostname or "?"
    rate = settings.TRUENORTH_SENTRY_TRACES_SAMPLE_RATE
    return CheckResult(
        "error reports",
        "ok",
        f"Sentry at {host}, environment {settings.TRUENORTH_SENTRY_ENVIRONMENT}, "
        + (f"{rate:g} of requests traced" if rate else "errors only"),
    )


def run_checks() -> list[CheckResult]:
    database = _database()
    reachable = database[0].status == "ok"
    return [
        CheckResult("data directory", "ok", str(settings.DATA_DIR)),
        *database,
        *(result for check in _CHECKS if reachable for result in check()),  # they need the database
        _assets(),
        *_security(),
        CheckResult(
            "e-mail",
            "ok",
            "SMTP " + settings.EMAIL_HOST if settings.EMAIL_HOST else "console (printed, not sent)",
        ),
        _logs(),
        *_metrics(),
        _error_reports(),
    ]
