"""Delivery metrics, loading: which sources count (`Scope`, `sources_in`), how many rows a request would
load (`rows_in`), and the DORA records (`dora_inputs`). Re-exported by `services.metrics`.

The DORA records are read in four queries whatever the data size, only the needed columns, streamed
with `.iterator()`; commits that no deployment of the scope lists are skipped while streaming (they can
have no lead time for changes), so a large git history is not held in memory.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.delivery import dora
from truenorth.delivery.models import (
    Commit,
    DeliverySource,
    Deployment,
    Incident,
    PullRequest,
    StateTransition,
)
from truenorth.orgs.models import Membership
from truenorth.strategy.services import get_product, teams_of

DEFAULT_WINDOW_DAYS = 90
MAX_WINDOW_DAYS = 3 * 366
CHUNK = 10_000  # rows a fetch while streaming


@dataclass(frozen=True)
class Scope:
    """Which sources count: all of the organisation's, or one product's, one source, one team's."""

    product_id: int | None = None
    source_id: int | None = None
    team_id: int | None = None

    def params(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class SourceRow:
    id: int
    name: str
    product_id: int | None
    product: str
    mapping: str  # the state mapping as canonical JSON (sources are grouped by it)
    production: str


def window(
    start: dt.datetime | dt.date | None, end: dt.datetime | dt.date | None
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end] as aware datetimes: end defaults to now, start to DEFAULT_WINDOW_DAYS before end; a
    date means its whole day (start at 00:00, end at 23:59:59.999999 UTC)."""

    def aware(value: dt.datetime | dt.date, *, last: bool) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time.max if last else dt.time.min)
        return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)

    stop = aware(end, last=True) if end is not None else timezone.now()
    begin = aware(start, last=False) if start is not None else stop - dt.timedelta(days=DEFAULT_WINDOW_DAYS)
    if begin > stop:
        raise ValidationFailed("The start of the window is after its end.", field="since")
    if stop - begin > dt.timedelta(days=MAX_WINDOW_DAYS):
        raise ValidationFailed(f"The window may span at most {MAX_WINDOW_DAYS} days.", field="since")
    return begin, stop


def sources_in(membership: Membership, scope: Scope) -> list[SourceRow]:
    """The organisation's live sources in the scope (one query, plus one to check a product or team).
    A product, source or team of another organisation is "not found"."""
    org_id = membership.organisation_id
    qs = DeliverySource.objects.filter(organisation_id=org_id, archived_at__isnull=True)
    if scope.product_id is not None:
        get_product(membership, scope.product_id)
        qs = qs.filter(product_id=scope.product_id)
    if scope.team_id is not None:
        if not teams_of(membership).filter(pk=scope.team_id).exists():
            raise NotFound("No such team.")
        qs = qs.filter(team_id=scope.team_id)
    if scope.source_id is not None:
        qs = qs.filter(pk=scope.source_id)
    rows = [
        SourceRow(
            pk,
            name,
            product_id,
            product or "",
            json.dumps(mapping or {}, sort_keys=True),
            env or "production",
        )
        for pk, name, product_id, product, mapping, env in qs.values_list(
            "pk", "name", "product_id", "product__name", "state_mapping", "production_environment"
        )
    ]
    if scope.source_id is not None and not rows:
        raise NotFound("No such delivery source.")
    return rows


def rows_in(membership: Membership, scope: Scope, *, end: dt.datetime) -> int:
    """How many state transitions and deployments the metrics up to `end` would load."""
    ids = [s.id for s in sources_in(membership, scope)]
    if not ids:
        return 0
    transitions = StateTransition.objects.filter(item__source_id__in=ids, at__lte=end).count()
    return transitions + Deployment.objects.filter(source_id__in=ids, deployed_at__lte=end).count()


def inline_max_rows() -> int:
    return int(settings.TRUENORTH_DELIVERY_INLINE_MAX_ROWS)


PRODUCTION = "production"


@dataclass
class DoraInputs:
    deployments: list[dora.DeploymentRecord]
    commits: list[dora.CommitRecord]
    pulls: list[dora.PullRecord]
    incidents: list[dora.IncidentRecord]


def dora_inputs(sources: list[SourceRow], end: dt.datetime) -> dict[int, DoraInputs]:
    """The DORA records up to `end` by source id (four queries, streamed; commits and pull requests that no
    deployment lists are skipped: they give no lead time). Deployment ids are their primary keys and run ids are
    prefixed with their source, so two sources never merge; a deployment to its source's production
    environment is marked PRODUCTION, any other keeps its name prefixed with "other:"."""
    ids = [s.id for s in sources]
    out: dict[int, DoraInputs] = {i: DoraInputs([], [], [], []) for i in ids}
    if not ids:
        return out
    production = {s.id: s.production.strip().casefold() for s in sources}
    for src, record in (
        (
            src,
            dora.DeploymentRecord(
                id=str(pk),
                deployed_at=at,
                succeeded=ok,
                environment=PRODUCTION if env.strip().casefold() == production[src] else f"other:{env}",
                run_id=f"{src}:{run}" if run else "",
                commit_shas=tuple(shas or ()),
                service=f"{src}:{service}",
            ),
        )
        for pk, src, at, ok, env, run, shas, service in Deployment.objects.filter(
            source_id__in=ids, deployed_at__lte=end
        )
        .order_by()
        .values_list(
            "pk", "source_id", "deployed_at", "succeeded", "environment", "run_id", "commit_shas", "service"
        )
        .iterator(chunk_size=CHUNK)
    ):
        out[src].deployments.append(record)
    # only the commits and pull requests a deployment lists can give a lead time for changes
    deployed = {sha for inputs in out.values() for d in inputs.deployments for sha in d.commit_shas}
    commits = Commit.objects.filter(source_id__in=ids, authored_at__lte=end).order_by()
    for src, sha, authored_at in commits.values_list("source_id", "sha", "authored_at").iterator(
        chunk_size=CHUNK
    ):
        if sha in deployed:
            out[src].commits.append(dora.CommitRecord(sha, authored_at))
    pulls = PullRequest.objects.filter(source_id__in=ids).order_by()
    for src, first, merged, merge_sha, shas in pulls.values_list(
        "source_id", "first_commit_at", "merged_at", "merge_sha", "commit_shas"
    ).iterator(chunk_size=CHUNK):
        if merge_sha in deployed or not deployed.isdisjoint(shas or ()):
            out[src].pulls.append(dora.PullRecord(first, merged, merge_sha, tuple(shas or ())))
    incidents = Incident.objects.filter(source_id__in=ids, opened_at__lte=end).order_by()
    for src, external, opened, resolved, dep in incidents.values_list(
        "source_id", "external_id", "opened_at", "resolved_at", "deployment_id"
    ).iterator(chunk_size=CHUNK):
        out[src].incidents.append(
            dora.IncidentRecord(f"{src}:{external}", opened, resolved, str(dep) if dep else "")
        )
    return out


def combined(inputs: dict[int, DoraInputs], sources: list[SourceRow]) -> DoraInputs:
    """The records of these sources together."""
    parts = [inputs[s.id] for s in sources if s.id in inputs]
    return DoraInputs(
        [d for p in parts for d in p.deployments],
        [c for p in parts for c in p.commits],
        [r for p in parts for r in p.pulls],
        [i for p in parts for i in p.incidents],
    )
