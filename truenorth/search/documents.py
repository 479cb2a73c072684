"""What each kind of object puts into the index. Plain functions of the objects' fields, so the
migration can call them with historical models too (no model methods, no properties)."""

from __future__ import annotations

from typing import Any

from truenorth.search.models import SearchKind

# Markers for highlighted terms in snippets (Unicode private use, never kept in indexed text).
MARK_START = "\ue000"
MARK_END = "\ue001"


def clean(*parts: Any) -> str:
    text = "\n".join(str(p) for p in parts if p)
    return text.replace(MARK_START, "").replace(MARK_END, "")


def goal(obj: Any) -> dict[str, Any]:
    return {
        "organisation_id": obj.organisation_id,
        "title": clean(obj.title)[:300],
        "body": clean(obj.outcome),
        "parent_id": None,
        "archived": obj.archived_at is not None,
    }


def measure(obj: Any) -> dict[str, Any]:
    return {
        "organisation_id": obj.organisation_id,
        "title": clean(obj.name)[:300],
        "body": clean(obj.description, obj.unit),
        "parent_id": None,
        "archived": obj.archived_at is not None,
    }


def hypothesis(obj: Any) -> dict[str, Any]:
    return {
        "organisation_id": obj.organisation_id,
        "title": clean(obj.title)[:300],
        "body": clean(obj.capability, obj.who, obj.outcome, obj.metric_name),
        "parent_id": None,
        "archived": False,
    }


def experiment(obj: Any, organisation_id: int) -> dict[str, Any]:
    return {
        "organisation_id": organisation_id,
        "title": clean(obj.name)[:300],
        "body": "",
        "parent_id": obj.hypothesis_id,
        "archived": False,
    }


def work_item(obj: Any) -> dict[str, Any]:
    return {
        "organisation_id": obj.organisation_id,
        "title": clean(obj.title)[:300],
        "body": clean(obj.external_key),
        "parent_id": obj.product_id,
        "archived": False,
    }


def learning(obj: Any, organisation_id: int, hypothesis_title: str) -> dict[str, Any]:
    return {
        "organisation_id": organisation_id,
        "title": clean(hypothesis_title)[:300],
        "body": clean(obj.learning, obj.observed, obj.next_step),
        "parent_id": obj.hypothesis_id,
        "archived": False,
    }


def build_all(entry_model: Any, models: dict[str, Any], organisation_id: int | None = None) -> int:
    """Replace the index entries (of one organisation, or all) with fresh ones from the objects.

    `models` maps goal, measure, hypothesis, experiment, work_item and decision to model classes (real
    or historical). Returns the number of entries written."""
    scope = {} if organisation_id is None else {"organisation_id": organisation_id}
    deep = {} if organisation_id is None else {"hypothesis__organisation_id": organisation_id}
    rows: list[tuple[str, int, dict[str, Any]]] = []
    rows += [(SearchKind.GOAL, o.pk, goal(o)) for o in models["goal"].objects.filter(**scope)]
    rows += [(SearchKind.MEASURE, o.pk, measure(o)) for o in models["measure"].objects.filter(**scope)]
    rows += [
        (SearchKind.HYPOTHESIS, o.pk, hypothesis(o)) for o in models["hypothesis"].objects.filter(**scope)
    ]
    rows += [(SearchKind.WORK_ITEM, o.pk, work_item(o)) for o in models["work_item"].objects.filter(**scope)]
    for o in models["experiment"].objects.filter(**deep).select_related("hypothesis"):
        rows.append((SearchKind.EXPERIMENT, o.pk, experiment(o, o.hypothesis.organisation_id)))
    for o in models["decision"].objects.filter(**deep).select_related("hypothesis"):
        rows.append(
            (SearchKind.LEARNING, o.pk, learning(o, o.hypothesis.organisation_id, o.hypothesis.title))
        )
    entry_model.objects.filter(**scope).delete()
    entry_model.objects.bulk_create(
        [entry_model(kind=kind, object_id=pk, **fields) for kind, pk, fields in rows], batch_size=500
    )
    return len(rows)
