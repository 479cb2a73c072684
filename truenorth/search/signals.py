"""Keep the search index up to date: every save of a searchable object rewrites its entry (archiving is a
save too), every delete removes it. Signals rather than calls in each service, so every way in (web,
API, CLI, imports, demo) is covered; the few `queryset.update()` calls in the services change no
searchable field (positions, versions, refresh state)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from truenorth.search import documents
from truenorth.search.models import SearchEntry, SearchKind


def _models() -> dict[str, Any]:
    from truenorth.hypotheses.models import Decision, Experiment, Hypothesis
    from truenorth.measures.models import Measure
    from truenorth.strategy.models import Goal, WorkItem

    return {
        "goal": Goal,
        "measure": Measure,
        "hypothesis": Hypothesis,
        "experiment": Experiment,
        "work_item": WorkItem,
        "decision": Decision,
    }


def _put(kind: str, object_id: int, fields: dict[str, Any]) -> None:
    SearchEntry.objects.update_or_create(
        kind=kind, object_id=object_id, defaults={**fields, "updated_at": timezone.now()}
    )


def _goal_saved(instance: Any, **_: Any) -> None:
    _put(SearchKind.GOAL, instance.pk, documents.goal(instance))


def _measure_saved(instance: Any, **_: Any) -> None:
    _put(SearchKind.MEASURE, instance.pk, documents.measure(instance))


def _hypothesis_saved(instance: Any, **_: Any) -> None:
    _put(SearchKind.HYPOTHESIS, instance.pk, documents.hypothesis(instance))
    # A learning is found by its hypothesis's title too.
    SearchEntry.objects.filter(kind=SearchKind.LEARNING, parent_id=instance.pk).exclude(
        title=documents.clean(instance.title)[:300]
    ).update(title=documents.clean(instance.title)[:300])


def _experiment_saved(instance: Any, **_: Any) -> None:
    _put(SearchKind.EXPERIMENT, instance.pk, documents.experiment(instance, instance.hypothesis.organisation_id))


def _work_item_saved(instance: Any, **_: Any) -> None:
    _put(SearchKind.WORK_ITEM, instance.pk, documents.work_item(instance))


def _decision_saved(instance: Any, **_: Any) -> None:
    h = instance.hypothesis
    _put(SearchKind.LEARNING, instance.pk, documents.learning(instance, h.organisation_id, h.title))


SAVED = {
    "goal": (SearchKind.GOAL, _goal_saved),
    "measure": (SearchKind.MEASURE, _measure_saved),
    "hypothesis": (SearchKind.HYPOTHESIS, _hypothesis_saved),
    "experiment": (SearchKind.EXPERIMENT, _experiment_saved),
    "work_item": (SearchKind.WORK_ITEM, _work_item_saved),
    "decision": (SearchKind.LEARNING, _decision_saved),
}


def _deleted(kind: str) -> Any:
    def receiver(instance: Any, **_: Any) -> None:
        SearchEntry.objects.filter(kind=kind, object_id=instance.pk).delete()

    return receiver


_receivers: list[Any] = []  # strong references (signals hold weak ones by default)


def connect() -> None:
    models = _models()
    for name, (kind, saved) in SAVED.items():
        deleted = _deleted(kind)
        _receivers.append(deleted)
        post_save.connect(saved, sender=models[name], dispatch_uid=f"search-save-{name}")
        post_delete.connect(deleted, sender=models[name], dispatch_uid=f"search-delete-{name}")
