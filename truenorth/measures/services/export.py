"""Export every observation (corrections included) as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from typing import Any

from truenorth.core.validate import choice as _choice
from truenorth.measures.models import Observation
from truenorth.measures.services.measures import get_measure, measures_of
from truenorth.orgs.models import Membership

EXPORT_COLUMNS = (
    "measure_id",
    "measure",
    "product",
    "kva",
    "unit",
    "observation_id",
    "observed_at",
    "value",
    "source",
    "note",
    "superseded",
    "supersedes",
    "recorded_at",
)


def _cell(text: str) -> str:
    """Keep spreadsheets from running text as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_observations(membership: Membership, measure_id: int | None, fmt: str) -> str:
    """Every observation (superseded ones included, flagged) of one measure or of every measure."""
    fmt = _choice(fmt, ("csv", "json"), "format")
    if measure_id is not None:
        measures = [get_measure(membership, measure_id)]
    else:
        measures = list(measures_of(membership, include_archived=True).order_by("id"))
    by_id = {m.pk: m for m in measures}
    observations = (
        Observation.objects.filter(measure_id__in=list(by_id))
        .order_by("measure_id", "observed_at", "id")
        .values_list(
            "measure_id",
            "id",
            "observed_at",
            "value",
            "source",
            "note",
            "superseded",
            "supersedes_id",
            "recorded_at",
        )
    )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        for mid, oid, at, value, source, note, superseded, supersedes, recorded in observations.iterator(
            2000
        ):
            m = by_id[mid]
            writer.writerow(
                [
                    mid,
                    _cell(m.name),
                    _cell(m.product.name) if m.product else "",
                    m.kva,
                    _cell(m.unit),
                    oid,
                    at.isoformat(),
                    repr(value),
                    source,
                    _cell(note),
                    "true" if superseded else "false",
                    supersedes or "",
                    recorded.isoformat(),
                ]
            )
        return out.getvalue()
    grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for mid, oid, at, value, source, note, superseded, supersedes, recorded in observations.iterator(2000):
        grouped[mid].append(
            {
                "id": oid,
                "observed_at": at.isoformat(),
                "value": value,
                "source": source,
                "note": note,
                "superseded": superseded,
                "supersedes": supersedes,
                "recorded_at": recorded.isoformat(),
            }
        )
    doc = {
        "measures": [
            {
                "id": m.pk,
                "name": m.name,
                "product": m.product.name if m.product else None,
                "kva": m.kva,
                "unit": m.unit,
                "direction": m.direction,
                "cadence_days": m.cadence_days,
                "description": m.description,
                "source": m.source,
                "baseline": m.baseline,
                "target": m.target,
                "target_date": m.target_date.isoformat() if m.target_date else None,
                "catalogue_key": m.catalogue_key,
                "archived": m.archived_at is not None,
                "observations": grouped.get(m.pk, []),
            }
            for m in measures
        ]
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)
