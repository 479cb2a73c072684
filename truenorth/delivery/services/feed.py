"""Delivery results feed the Value pillar's EBM measures (issue 12, capability 4).

For a live source with a product, `ensure_measures` makes (once; found again by catalogue_key
"delivery:<source id>:<metric>") one measure per delivered metric on that product, cadence 7 days.
`feed` computes the metrics over complete weeks (Monday 00:00 to Sunday 23:59:59.999999 UTC) with the
same building blocks as the metrics pages (metrics.histories / flow_of, dora_inputs / dora_of), and
stores one observation per metric at the week's end:

- the weeks after the last fed week (the last 12 weeks the first time), up to the last complete week;
- and, given `since` (late data), every complete week from the one holding `since`: `after_import`
  passes the earliest time a new or changed record of the import touches (never further back than the
  weeks already fed), so an import that adds records to a fed week re-feeds it.

A week's values are compared with the measures' current observations at that time: an equal value is
left alone (re-feeding the same data stores nothing), a new metric value is appended, and a different
value is a correction: a new observation that supersedes the old one (both kept; observations are
append-only), its note ending "recomputed after import #N". Each week's rows are one observation batch
with the idempotency key "delivery:<source id>:<monday>" (its first batch) or
"delivery:<source id>:<monday>:<digest>" (later ones), written while holding the source's measures
(select_for_update), so two feeds at once never store a week twice. Each observation's note names the
source, the week and the imports whose time window touches that week ("delivery source 'X',
2026-11-16..2026-11-22, imports #12, #14"). There is no "delivery" MeasureSource: the observations use
the closest, API ("API push").
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import DomainError
from truenorth.delivery import flow
from truenorth.delivery.models import Branch, Commit, DeliverySource, ImportRun, ImportStatus
from truenorth.delivery.services import metrics
from truenorth.delivery.services.ingest import Changes
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.measures.models import (
    KVA,
    Measure,
    MeasureDirection,
    MeasureSource,
    Observation,
    ObservationBatch,
)
from truenorth.measures.rollups import write_observations
from truenorth.measures.services.measures import create_measure
from truenorth.orgs.models import Membership

FIRST_WEEKS = 12
MAX_WEEKS = 104  # the furthest back a recomputation goes (two years)
ACTIVE_BRANCH_DAYS = 30
RUNS_NAMED = 5  # imports named in a note (the latest ones)
RETRY_DAYS = 3  # the daily task re-feeds the weeks of imports this recent that were not fed after
FEED_SOURCE = MeasureSource.API
DEFECT_TYPES = frozenset({"bug", "defect"})


@dataclass(frozen=True)
class Metric:
    key: str
    name: str
    kva: str
    unit: str
    direction: str
    description: str


METRICS: tuple[Metric, ...] = (
    Metric(
        "deployment_frequency",
        "Deployment frequency",
        KVA.TIME_TO_MARKET,
        "per week",
        MeasureDirection.HIGHER,
        "Production deployments per week (DORA).",
    ),
    Metric(
        "lead_time",
        "Lead time for changes",
        KVA.TIME_TO_MARKET,
        "hours",
        MeasureDirection.LOWER,
        "Median hours from first commit to production deployment (DORA).",
    ),
    Metric(
        "cycle_time_p85",
        "Cycle time (85th percentile)",
        KVA.TIME_TO_MARKET,
        "days",
        MeasureDirection.LOWER,
        "85th percentile of the days from started to done of the items done.",
    ),
    Metric(
        "time_to_restore",
        "Time to restore service",
        KVA.TIME_TO_MARKET,
        "hours",
        MeasureDirection.LOWER,
        "Median hours from an incident opened to resolved (DORA).",
    ),
    Metric(
        "change_failure_rate",
        "Change failure rate",
        KVA.ABILITY_TO_INNOVATE,
        "%",
        MeasureDirection.LOWER,
        "Share of production deployments that failed or caused an incident.",
    ),
    Metric(
        "incidents",
        "Incidents opened",
        KVA.ABILITY_TO_INNOVATE,
        "per week",
        MeasureDirection.LOWER,
        "Incidents opened in the week.",
    ),
    Metric(
        "defects_done",
        "Defects completed",
        KVA.ABILITY_TO_INNOVATE,
        "per week",
        MeasureDirection.LOWER,
        "Items of type bug or defect done in the week (a defect trend).",
    ),
    Metric(
        "defects_created",
        "Defects opened",
        KVA.ABILITY_TO_INNOVATE,
        "per week",
        MeasureDirection.LOWER,
        "Items of type bug or defect created in the week (a defect trend).",
    ),
    Metric(
        "active_branches",
        "Active branches",
        KVA.ABILITY_TO_INNOVATE,
        "branches",
        MeasureDirection.LOWER,
        f"Branches with a commit in the {ACTIVE_BRANCH_DAYS} days up to the week's end "
        "(a local branch and its remote-tracking copies count once).",
    ),
)


@dataclass
class FeedResult:
    source: DeliverySource
    weeks: list[dt.date] = field(default_factory=list)  # the Mondays computed
    stored: int = 0  # observations stored now (new values and corrections)
    corrected: int = 0  # of which corrections (superseding an earlier value)
    # (metric, monday, value, note) of the values stored (or, dry run, that would be)
    planned: list[tuple[str, dt.date, float, str]] = field(default_factory=list)
    measures_created: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source.name,
            "weeks": [w.isoformat() for w in self.weeks],
            "stored": self.stored,
            "corrected": self.corrected,
            "measures_created": self.measures_created,
            "observations": [
                {"metric": m, "week": w.isoformat(), "value": v, "note": n} for m, w, v, n in self.planned
            ],
        }


def catalogue_key(source: DeliverySource, metric: Metric) -> str:
    return f"delivery:{source.pk}:{metric.key}"


def monday_of(moment: dt.datetime) -> dt.date:
    day = moment.astimezone(dt.UTC).date()
    return day - dt.timedelta(days=day.weekday())


def last_complete_monday(now: dt.datetime) -> dt.date:
    """The Monday of the last week (Monday to Sunday, UTC) that has ended by `now`."""
    return monday_of(now) - dt.timedelta(weeks=1)


def week_bounds(monday: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(monday, dt.time.min, tzinfo=dt.UTC)
    return start, dt.datetime.combine(monday + dt.timedelta(days=6), dt.time.max, tzinfo=dt.UTC)


def acting(source: DeliverySource, actor: User | None) -> tuple[Membership, User]:
    """Who the feed writes as: the actor, else the source's creator, else the organisation's senior member."""
    members = Membership.objects.filter(organisation_id=source.organisation_id).select_related("user")
    for user in (actor, source.created_by):
        if user is not None:
            found = members.filter(user=user).first()
            if found is not None:
                return found, user
    for membership in members.order_by("id"):
        if membership.has_role("admin"):
            return membership, membership.user
    raise DomainError("Nobody in this organisation may write its measures.")


def measures_for(source: DeliverySource) -> dict[str, Measure]:
    keys = {catalogue_key(source, m): m.key for m in METRICS}
    return {
        keys[m.catalogue_key]: m
        for m in Measure.objects.filter(organisation_id=source.organisation_id, catalogue_key__in=keys)
    }


def ensure_measures(
    source: DeliverySource, membership: Membership, actor: User
) -> tuple[dict[str, Measure], int]:
    found = measures_for(source)
    created = 0
    for metric in METRICS:
        if metric.key in found:
            continue
        found[metric.key] = create_measure(
            membership,
            actor,
            name=f"{metric.name} ({source.name})"[:120],
            kva=metric.kva,
            product_id=source.product_id,
            unit=metric.unit,
            direction=metric.direction,
            cadence_days=7,
            description=f"{metric.description} Fed weekly from delivery source '{source.name}'.",
            source=FEED_SOURCE,
            catalogue_key=catalogue_key(source, metric),
        )
        created += 1
    return found, created


def _fed(source: DeliverySource) -> tuple[dt.date | None, dt.date | None]:
    """The Mondays of the first and the last week fed (None, None before the first feed)."""
    keys = [catalogue_key(source, m) for m in METRICS]
    fed = Observation.objects.filter(
        measure__organisation_id=source.organisation_id, measure__catalogue_key__in=keys
    ).order_by("observed_at")
    first = fed.values_list("observed_at", flat=True).first()
    latest = fed.order_by("-observed_at").values_list("observed_at", flat=True).first()
    return (
        None if first is None else monday_of(first),
        None if latest is None else monday_of(latest),
    )


def first_monday(source: DeliverySource, last: dt.date) -> dt.date:
    """The week after the last one fed, or FIRST_WEEKS weeks back the first time."""
    latest = _fed(source)[1]
    if latest is None:
        return last - dt.timedelta(weeks=FIRST_WEEKS - 1)
    return latest + dt.timedelta(weeks=1)


# --- active branches -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BranchLife:
    """A branch as the feed sees it: its key (a remote-tracking branch's name without its remote), when
    its head was committed, when it was found deleted, and the commits attributed to it (sorted)."""

    key: str
    last_commit_at: dt.datetime
    deleted_at: dt.datetime | None = None
    commits: tuple[dt.datetime, ...] = ()


def active_branches(branches: Iterable[BranchLife], end: dt.datetime, days: int = ACTIVE_BRANCH_DAYS) -> int:
    """Branches not deleted by `end` with a commit in the `days` days up to `end` (their head commit, or
    a commit reached from them): each key counts once."""
    start = end - dt.timedelta(days=days)
    keys = set()
    for branch in branches:
        if branch.deleted_at is not None and branch.deleted_at <= end:
            continue
        recent = start < branch.last_commit_at <= end
        if not recent and branch.commits:
            at = bisect.bisect_right(branch.commits, start)
            recent = at < len(branch.commits) and branch.commits[at] <= end
        if recent:
            keys.add(branch.key)
    return len(keys)


def branch_lives(source: DeliverySource, start: dt.datetime, end: dt.datetime) -> list[BranchLife] | None:
    """The source's branches (None when it never reported any) with their commits in [start, end]."""
    rows = list(
        Branch.objects.filter(source=source).values_list("name", "remote", "last_commit_at", "deleted_at")
    )
    if not rows:
        return None
    commits: dict[str, list[dt.datetime]] = {}
    for name, at in (
        Commit.objects.filter(source=source, committed_at__gte=start, committed_at__lte=end)
        .exclude(branch="")
        .order_by()
        .values_list("branch", "committed_at")
        .iterator(chunk_size=10_000)
    ):
        commits.setdefault(name, []).append(at)
    return [
        BranchLife(
            name.split("/", 1)[1] if remote and "/" in name else name,
            last,
            deleted,
            tuple(sorted(commits.get(name, ()))),
        )
        for name, remote, last, deleted in rows
    ]


# --- one week ------------------------------------------------------------------------------------


def compute_week(
    row: metrics.SourceRow,
    items: dict[int, list[flow.ItemHistory]],
    inputs: dict[int, metrics.DoraInputs],
    monday: dt.date,
    branches: list[BranchLife] | None = None,
) -> dict[str, float]:
    """The metrics of one week with the same building blocks as the metrics pages (None values left out)."""
    start, end = week_bounds(monday)
    flows = metrics.flow_of([row], items, start=start, end=end)
    records = metrics.combined(inputs, [row])
    d = metrics.dora_of(records, start=start, end=end, year=metrics.check_year(None))
    defects = [i for i in items.get(row.id, ()) if i.item_type.strip().casefold() in DEFECT_TYPES]
    done = {i.id for i in defects}
    values: dict[str, float | None] = {
        "deployment_frequency": d.deployment_frequency_per_week,
        "lead_time": d.lead_time_hours,
        "cycle_time_p85": flows.cycle_time_days.get(85),
        "time_to_restore": d.time_to_restore_hours,
        "change_failure_rate": None if d.change_failure_rate is None else 100 * d.change_failure_rate,
        "incidents": float(sum(1 for i in records.incidents if start <= i.opened_at <= end)),
        "defects_done": float(sum(1 for c in flows.completed if c[0] in done)),
        "defects_created": float(sum(1 for i in defects if start <= i.created_at <= end)),
        "active_branches": None if branches is None else float(active_branches(branches, end)),
    }
    return {k: round(v, 6) for k, v in values.items() if v is not None}


def _imports_by_week(source: DeliverySource, weeks: list[dt.date]) -> dict[dt.date, list[int]]:
    """The successful imports that stored something and whose time window touches each week (oldest
    first); an import that found nothing new is no source of the week's values."""
    if not weeks:
        return {}
    first, last = week_bounds(min(weeks))[0], week_bounds(max(weeks))[1]
    runs = [
        (pk, a, b)
        for pk, a, b, created in ImportRun.objects.filter(
            source=source,
            status=ImportStatus.SUCCEEDED,
            window_start__lte=last,
            window_end__gte=first,
        )
        .order_by("id")
        .values_list("pk", "window_start", "window_end", "created")
        if created
    ]
    out: dict[dt.date, list[int]] = {}
    for monday in weeks:
        start, end = week_bounds(monday)
        out[monday] = [pk for pk, a, b in runs if a is not None and b is not None and a <= end and b >= start]
    return out


def provenance(source: DeliverySource, monday: dt.date, runs: list[int]) -> str:
    """ "delivery source 'X', 2026-03-02..2026-03-08, imports #3, #5" (the latest RUNS_NAMED imports)."""
    sunday = monday + dt.timedelta(days=6)
    text = f"delivery source '{source.name}', {monday.isoformat()}..{sunday.isoformat()}"
    if runs:
        shown = runs[-RUNS_NAMED:]
        text += (", import " if len(runs) == 1 else ", imports ") + ", ".join(f"#{pk}" for pk in shown)
        if len(runs) > len(shown):
            text += f" (and {len(runs) - len(shown)} earlier)"
    return text


@dataclass(frozen=True)
class _Row:
    metric: str
    measure: Measure | None
    value: float
    note: str
    replaces: Observation | None  # the current value this one corrects


def _current(
    measures: dict[str, Measure], ends: list[dt.datetime]
) -> dict[tuple[int, dt.datetime], Observation]:
    if not measures or not ends:
        return {}
    return {
        (o.measure_id, o.observed_at.astimezone(dt.UTC)): o
        for o in Observation.objects.filter(
            measure_id__in=[m.pk for m in measures.values()], superseded=False, observed_at__in=ends
        )
    }


def _week_rows(
    values: dict[str, float],
    measures: dict[str, Measure],
    current: dict[tuple[int, dt.datetime], Observation],
    end: dt.datetime,
    note: str,
    cause: str,
) -> list[_Row]:
    rows = []
    for key, value in sorted(values.items()):
        measure = measures.get(key)
        if measure is not None and measure.archived_at is not None:
            continue  # archived by someone: not written into
        old = None if measure is None else current.get((measure.pk, end))
        if old is None:
            rows.append(_Row(key, measure, value, note, None))
        elif abs(old.value - value) > 1e-9:
            rows.append(_Row(key, measure, value, f"{note}; recomputed {cause}"[:500], old))
    return rows


def _store_week(
    source: DeliverySource,
    membership: Membership,
    user: User,
    monday: dt.date,
    rows: list[_Row],
    now: dt.datetime,
) -> int:
    """One week's new values and corrections as one batch; the caller holds the measures' lock."""
    end = week_bounds(monday)[1]
    live = [r for r in rows if r.measure is not None]
    if not live:
        return 0
    canonical = [
        [r.measure.pk if r.measure else 0, repr(r.value), r.replaces.pk if r.replaces else 0, r.note]
        for r in live
    ]
    digest = hashlib.sha256(json.dumps([FEED_SOURCE, end.isoformat(), canonical]).encode()).hexdigest()
    key = f"delivery:{source.pk}:{monday.isoformat()}"
    if ObservationBatch.objects.filter(organisation_id=source.organisation_id, idempotency_key=key).exists():
        key = f"{key}:{digest[:16]}"
    batch = ObservationBatch.objects.create(
        organisation_id=source.organisation_id,
        idempotency_key=key,
        source=FEED_SOURCE,
        rows=len(live),
        payload_hash=digest,
        created_by=user,
        created_at=now,  # the feed's clock: `unfed_imports` compares it with the imports' end
    )
    # Marks the replaced values superseded (the one change their append-only trigger allows), stores the
    # new ones and keeps the measures' daily roll-ups right, in this transaction.
    write_observations(
        [
            Observation(
                measure=r.measure,
                value=r.value,
                observed_at=end,
                source=FEED_SOURCE,
                note=r.note[:500],
                batch=batch,
                supersedes=r.replaces,
                recorded_by=user,
            )
            for r in live
        ],
        supersede=[r.replaces for r in live if r.replaces is not None],
    )
    for r in live:
        assert r.measure is not None
        old = None if r.replaces is None else f"{r.replaces.value:g} at {end.isoformat()}"
        new = f"{r.value:g} at {end.isoformat()} (API push, batch {batch.pk})"
        if r.replaces is not None:
            new += " (correction)"
        record(
            membership.organisation,
            r.measure,
            user,
            HistoryEntry.Action.UPDATED,
            {"observation": {"old": old, "new": new}},
        )
    return len(live)


# --- feeding -------------------------------------------------------------------------------------


def _weeks(source: DeliverySource, last: dt.date, since: dt.datetime | None, fed: bool) -> list[dt.date]:
    monday = first_monday(source, last) if fed else last - dt.timedelta(weeks=FIRST_WEEKS - 1)
    wanted: set[dt.date] = set()
    while monday <= last:
        wanted.add(monday)
        monday += dt.timedelta(weeks=1)
    if since is not None:
        monday = max(monday_of(since), last - dt.timedelta(weeks=MAX_WEEKS - 1))
        while monday <= last:
            wanted.add(monday)
            monday += dt.timedelta(weeks=1)
    return sorted(wanted)


def feed(
    source: DeliverySource,
    *,
    now: dt.datetime,
    actor: User | None = None,
    dry_run: bool = False,
    since: dt.datetime | None = None,
    cause: str = "",
) -> FeedResult:
    """Store the source's weekly metrics since the last fed week and, given `since`, recompute every
    complete week from the one holding it (corrections note `cause`, e.g. "after import #12")."""
    result = FeedResult(source)
    if source.product_id is None or source.archived_at is not None:
        return result
    membership, user = acting(source, actor)
    found = measures_for(source)
    last = last_complete_monday(now)
    weeks = _weeks(source, last, since, bool(found))
    if not weeks:
        return result
    if not dry_run:
        found, result.measures_created = ensure_measures(source, membership, user)
    cause = cause or f"on {now.astimezone(dt.UTC).date().isoformat()}"
    row = next(r for r in metrics.sources_in(membership, metrics.Scope(source_id=source.pk)))
    _, end = week_bounds(last)
    items = metrics.histories([row], end)
    inputs = metrics.dora_inputs([row], end)
    branches = branch_lives(source, week_bounds(weeks[0])[0] - dt.timedelta(days=ACTIVE_BRANCH_DAYS), end)
    runs = _imports_by_week(source, weeks)
    ends = [week_bounds(w)[1] for w in weeks]
    current = _current(found, ends)
    for monday in weeks:
        result.weeks.append(monday)
        week_end = week_bounds(monday)[1]
        values = compute_week(row, items, inputs, monday, branches)
        note = provenance(source, monday, runs.get(monday, []))
        rows = _week_rows(values, found, current, week_end, note, cause)
        if dry_run:
            result.planned.extend((r.metric, monday, r.value, r.note) for r in rows)
            continue
        if not rows:
            continue
        with transaction.atomic():
            # Hold the source's measures: another feed of this source waits, then sees these values.
            ids = sorted(m.pk for m in found.values())
            locked = {m.pk: m for m in Measure.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
            fresh = {k: locked.get(m.pk, m) for k, m in found.items()}
            rows = _week_rows(values, fresh, _current(fresh, [week_end]), week_end, note, cause)
            result.stored += _store_week(source, membership, user, monday, rows, now)
        result.corrected += sum(1 for r in rows if r.replaces is not None)
        result.planned.extend((r.metric, monday, r.value, r.note) for r in rows)
    return result


def after_import(
    run: ImportRun,
    *,
    actor: User | None = None,
    changes: Changes | None = None,
    now: dt.datetime | None = None,
) -> FeedResult | None:
    """Feed the source right after an import that stored new or changed rows: the weeks not fed yet,
    and every fed week from the earliest one the import's new or changed records touch (`changes`;
    the run's time window when not given) — late data corrects the weeks already fed. None when there
    is nothing to feed (a failed or empty import, a source without a product)."""
    source = run.source
    if run.status != ImportStatus.SUCCEEDED or not run.created:
        return None
    if source.product_id is None or source.archived_at is not None:
        return None
    since = changes.since if changes is not None else run.window_start
    first = _fed(source)[0]
    if since is not None and first is not None:
        since = max(since, week_bounds(first)[0])  # late data corrects fed weeks; it does not backfill
    elif first is None:
        since = None  # the first feed: the last FIRST_WEEKS weeks
    return feed(source, now=now or timezone.now(), actor=actor, since=since, cause=f"after import #{run.pk}")


def remember(run: ImportRun, result: FeedResult | None) -> None:
    """Keep the feed's result on the run object (not stored) for whoever reports the import."""
    setattr(run, "_feed_result", result)  # noqa: B010 - not a model field, on purpose


def fed_by(run: ImportRun) -> FeedResult | None:
    """What feeding after this import stored (None when nothing was fed or it is not known)."""
    result = getattr(run, "_feed_result", None)
    return result if isinstance(result, FeedResult) else None


def unfed_imports(source: DeliverySource, now: dt.datetime) -> tuple[dt.datetime | None, int | None]:
    """Imports of the last RETRY_DAYS days with new rows that finished after the source's last feed (their
    own feed failed, or the source had no product then): the earliest window start and the latest id."""
    keys = [catalogue_key(source, m) for m in METRICS]
    last_fed = (
        ObservationBatch.objects.filter(
            organisation_id=source.organisation_id,
            observations__measure__catalogue_key__in=keys,
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    runs = ImportRun.objects.filter(
        source=source,
        status=ImportStatus.SUCCEEDED,
        finished_at__gte=now - dt.timedelta(days=RETRY_DAYS),
        window_start__isnull=False,
    )
    if last_fed is not None:
        runs = runs.filter(finished_at__gt=last_fed)
    found = [
        (pk, start)
        for pk, start, created in runs.values_list("pk", "window_start", "created")
        if created and start is not None
    ]
    if not found:
        return None, None
    return min(start for _, start in found), max(pk for pk, _ in found)


def feed_all(*, now: dt.datetime) -> list[FeedResult]:
    """Feed every organisation's live sources with a product (the daily task): the weeks not fed yet, and
    the fed weeks touched by recent imports that were not fed after them (see `unfed_imports`)."""
    out = []
    for source in DeliverySource.objects.filter(
        archived_at__isnull=True, product__isnull=False
    ).select_related("created_by"):
        try:
            since, run_id = unfed_imports(source, now)
            first = _fed(source)[0]
            if since is not None and first is not None:
                since = max(since, week_bounds(first)[0])
            else:
                since = None
            cause = f"after import #{run_id}" if run_id is not None else ""
            out.append(feed(source, now=now, since=since, cause=cause))
        except DomainError:
            continue
    return out
