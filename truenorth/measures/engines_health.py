"""`truenorth check`: which engines this server can run (issue 14; docs/engines.md).

One line per concern, without connecting anywhere: the local engines (Spark `local[N]` needs pyspark and a
Java runtime, chDB its package) when `TRUENORTH_ENGINES_LOCAL` is on, the DB-API drivers the operator
offers (`TRUENORTH_ENGINES_DRIVERS`) and whether their packages are installed, and data sources whose
engine cannot run here (a warning naming them, so a refresh failure is not the first sign).
"""

from __future__ import annotations

import importlib.util
import shutil

from django.conf import settings
from django.db.models import Count
from django.db.utils import DatabaseError

from truenorth.core.health import CheckResult

#: The Python package each kind's engine needs (None: nothing beyond TrueNorth's own dependencies).
_PACKAGES: dict[str, str | None] = {
    "duckdb": None,
    "postgres": None,
    "spark": "pyspark",
    "chdb": "chdb",
    "clickhouse": "clickhouse_connect",
}
_DRIVER_PACKAGES = {"trino": "trino", "bigquery": "google.cloud.bigquery", "snowflake": "snowflake.connector"}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing
        return False


def _missing_for(kind: str) -> str | None:
    """Why a source of ``kind`` cannot run on this server (None when it can, as far as we can tell)."""
    if kind in _DRIVER_PACKAGES:
        driver = _DRIVER_PACKAGES[kind]
        return None if _installed(driver) else f"the {driver} package is not installed"
    package = _PACKAGES.get(kind)
    if package is not None and not _installed(package):
        return f"the {package} package is not installed"
    return None


def engines_check() -> list[CheckResult]:
    from truenorth.measures.models import DataSource

    results: list[CheckResult] = []
    if settings.TRUENORTH_ENGINES_LOCAL:
        problems = []
        if not _installed("pyspark"):
            problems.append("Spark local: pyspark is not installed (pip install 'truenorth[spark]')")
        elif shutil.which("java") is None:
            problems.append("Spark local: no Java runtime on PATH (Java 17)")
        if not _installed("chdb"):
            problems.append("chDB: the chdb package is not installed (pip install 'truenorth[clickhouse]')")
        results.append(
            CheckResult("local engines", "warning", "; ".join(problems))
            if problems
            else CheckResult(
                "local engines",
                "ok",
                f"on: Spark local (at most {settings.TRUENORTH_ENGINES_LOCAL_MAX_CORES} cores) and chDB run "
                "inside the worker",
            )
        )
    else:
        results.append(
            CheckResult("local engines", "ok", "off (TRUENORTH_ENGINES_LOCAL): no Spark local, no chDB")
        )
    drivers = [d for d in settings.TRUENORTH_ENGINES_DRIVERS if d in _DRIVER_PACKAGES]
    if drivers:
        shown = ", ".join(
            f"{d} ({'installed' if _installed(_DRIVER_PACKAGES[d]) else 'not installed'})" for d in drivers
        )
        results.append(CheckResult("engine drivers", "ok", f"offered: {shown}"))
    try:
        counts = dict(DataSource.objects.values_list("kind").annotate(n=Count("id")).order_by())
    except DatabaseError:  # tables not created yet
        return results
    unusable = {kind: why for kind in counts if (why := _missing_for(kind)) is not None}
    if unusable:
        detail = "; ".join(f"{counts[k]} {k} source(s): {why}" for k, why in sorted(unusable.items()))
        results.append(CheckResult("engines in use", "warning", detail))
    return results
