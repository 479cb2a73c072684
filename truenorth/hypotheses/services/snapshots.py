"""Result snapshots: the immutable results of an experiment, computed by TrueNorth (the headline) or
imported from an outside tool (labelled as such, never the headline)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record
from truenorth.hypotheses.models import Experiment, ResultSnapshot
from truenorth.hypotheses.services.experiments import get_experiment
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer


def store_snapshot(
    experiment: Experiment,
    *,
    method: str,
    inputs: Mapping[str, Any],
    results: Mapping[str, Any],
    query: str = "",
    computed_at: dt.datetime | None = None,
    author: User | None = None,
) -> ResultSnapshot:
    """Append the results of one computation by TrueNorth (results.compute_results only: a computed
    snapshot is the headline result, so nothing a user sends may reach this)."""
    return ResultSnapshot.objects.create(
        experiment=experiment,
        kind=ResultSnapshot.Kind.COMPUTED,
        method=_text(method, "method", required=True, max_length=120),
        inputs=dict(inputs),
        results=dict(results),
        query=query,
        computed_at=computed_at or timezone.now(),
        author=author,
        author_name=author.email if author else "system",
    )


def import_snapshot(
    membership: Membership,
    actor: User,
    experiment_id: int,
    *,
    source: str,
    method: str,
    results: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    query: str = "",
    note: str = "",
) -> ResultSnapshot:
    """Attach results computed by an outside tool (`source`, e.g. "Optimizely"). They are stored as an
    import labelled with the tool and who attached them, recorded in history, and never become the
    headline result nor the one "conclude" links: only TrueNorth's own computation does."""
    require_writer(membership)
    experiment = get_experiment(membership, experiment_id)
    with transaction.atomic():
        made = ResultSnapshot.objects.create(
            experiment=experiment,
            kind=ResultSnapshot.Kind.IMPORTED,
            method=_text(method, "method", required=True, max_length=120),
            source_name=_text(source, "source", required=True, max_length=120),
            note=_text(note, "note"),
            inputs=dict(inputs or {}),
            results=dict(results),
            query=_text(query, "query", max_length=100_000),
            author=actor,
            author_name=actor.email,
        )
        record(
            membership.organisation,
            made,
            actor,
            HistoryEntry.Action.CREATED,
            diff(
                {}, {"kind": made.kind, "source": made.source_name, "method": made.method, "note": made.note}
            ),
        )
    return made


def snapshots_of(membership: Membership, experiment_id: int) -> QuerySet[ResultSnapshot]:
    """Every snapshot of an experiment (computed and imported), newest first."""
    return ResultSnapshot.objects.filter(
        experiment_id=experiment_id, experiment__hypothesis__organisation_id=membership.organisation_id
    )


def headline_snapshot(membership: Membership, experiment_id: int) -> ResultSnapshot | None:
    """The experiment's headline result: its latest snapshot computed by TrueNorth (never an import)."""
    return (
        snapshots_of(membership, experiment_id)
        .filter(kind=ResultSnapshot.Kind.COMPUTED)
        .select_related("experiment")
        .order_by("-computed_at", "-id")
        .first()
    )


def get_snapshot(membership: Membership, snapshot_id: int) -> ResultSnapshot:
    found = (
        ResultSnapshot.objects.filter(
            pk=snapshot_id, experiment__hypothesis__organisation_id=membership.organisation_id
        )
        .select_related("experiment")
        .first()
    )
    if found is None:
        raise NotFound("No such result snapshot.")
    return found
