"""The Value pillar's line in `truenorth check`: failed data sources and failed refreshes.

Registered with truenorth.core.health from MeasuresConfig.ready().
"""

from __future__ import annotations

from truenorth.core.health import CheckResult
from truenorth.measures.models import DataSource, Measure


def refreshes() -> list[CheckResult]:
    """Data sources whose last check failed and measures whose last refresh failed, one line each."""
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
    except Exception:  # no database or no tables yet: the database checks say so
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


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 200 else line[:199] + "…"
