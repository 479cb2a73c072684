"""Refreshing SQL and computed measures: run, ingest what is new, record the outcome.

- SQL measures run their query against their data source (read-only, time-limited: see sources.py) and
  ingest the rows whose timestamps the measure does not have yet (current or superseded: a value
  already observed, or corrected by hand, is never overwritten; correct it instead). The batch's
  idempotency key is derived from the measure and the new rows, so a re-run, or two refreshes racing,
  add nothing twice. Rows timestamped in the future are left for a later refresh.
- Computed measures evaluate their formula (formula.py) at every timestamp at which one of their inputs
  has a current observation, once all inputs have at least one: each input contributes its latest
  current observation at or before that timestamp. Timestamps the measure already has are skipped. A
  point that cannot be computed (e.g. a division by zero there) is skipped and reported; when no point
  at all can be computed, the refresh fails.
- Formula references resolve within the organisation: `m[ID]` is that measure; a name is the measure
  whose `reference_for(name)` equals it, preferring the computed measure's own product, then the
  organisation-wide measures; a name matching several measures elsewhere is ambiguous (use `m[ID]`).
- A failure never removes or changes an observation: the measure keeps what it has, and the error is
  recorded with `services.record_refresh` (shown on the measure page and by `truenorth check`). A data
  source that cannot be reached also records the error on the source.
- Due: a live SQL or computed measure never refreshed, refreshed longer ago than its cadence, or whose
  last refresh failed more than RETRY_FAILED_AFTER ago.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core import telemetry
from truenorth.core.errors import DomainError, NotFound, ValidationFailed
from truenorth.measures import services
from truenorth.measures.formula import Formula, FormulaError, parse, reference_for
from truenorth.measures.models import Measure, MeasureSource, Observation
from truenorth.measures.sources import QueryFailed, SourceUnavailable, mark_checked, run_query
from truenorth.orgs.models import Membership, Role
from truenorth.orgs.services import require_role

logger = logging.getLogger(__name__)

RETRY_FAILED_AFTER = dt.timedelta(hours=1)
REFRESHABLE = (MeasureSource.SQL, MeasureSource.COMPUTED)
Progress = Callable[[int, int, "RefreshResult | None"], None]


@dataclass
class RefreshResult:
    """The outcome of one refresh. `skipped`: rows or points not ingested (already present, in the
    future, or not computable); `notes` says why when it matters."""

    measure: Measure
    ok: bool
    created: int = 0
    skipped: int = 0
    replayed: bool = False
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if not self.ok:
            return f"failed: {self.error}"
        text = f"{self.created} new observation{'s' if self.created != 1 else ''}"
        if self.skipped:
            text += f", {self.skipped} skipped"
        if self.notes:
            text += f" ({'; '.join(self.notes)})"
        return text


# --- public -----------------------------------------------------------------------------------------


def refresh_measure(measure: Measure, *, actor: User | None = None) -> RefreshResult:
    """Refresh one SQL or computed measure. With an actor, it must be a member (or higher) of the
    measure's organisation; without one it is the system (the background job)."""
    membership = _membership(measure, actor)
    check_refreshable(measure)
    try:
        if measure.source == MeasureSource.SQL:
            result = _refresh_sql(measure, membership, actor)
        else:
            result = _refresh_computed(measure, membership, actor)
    except DomainError as exc:
        services.record_refresh(measure, ok=False, error=exc.message)
        telemetry.refresh_failed()
        return RefreshResult(measure, ok=False, error=exc.message)
    except Exception as exc:  # a bug or a driver surprise: record it, never lose observations
        logger.exception("Refreshing measure %s failed", measure.pk)
        message = f"Unexpected error: {exc.__class__.__name__}: {str(exc)[:300]}"
        services.record_refresh(measure, ok=False, error=message)
        telemetry.refresh_failed()
        return RefreshResult(measure, ok=False, error=message)
    services.record_refresh(measure, ok=True)
    return result


def check_refreshable(measure: Measure) -> None:
    """Refuse (422) a measure that is not refreshed: entered by hand or pushed, or archived."""
    if measure.source not in REFRESHABLE:
        raise ValidationFailed(
            f"“{measure.name}” is entered by hand or pushed ({measure.get_source_display()}); "
            "only SQL and computed measures are refreshed.",
            field="source",
        )
    if measure.archived_at is not None:
        raise ValidationFailed(f"“{measure.name}” is archived: restore it to refresh it.", field="measure")


def due_measures(now: dt.datetime | None = None, *, organisation_id: int | None = None) -> list[Measure]:
    """Live SQL and computed measures (of every organisation, or of one) due for a refresh, SQL ones
    first, then the computed ones in dependency order (each after the computed measures it uses)."""
    now = now or timezone.now()
    qs = Measure.objects.filter(source__in=REFRESHABLE, archived_at__isnull=True)
    if organisation_id is not None:
        qs = qs.filter(organisation_id=organisation_id)
    candidates = list(
        qs.select_related("organisation", "data_source", "product").order_by("organisation_id", "id")
    )
    due = [m for m in candidates if _is_due(m, now)]
    sql = [m for m in due if m.source == MeasureSource.SQL]
    computed = _dependency_order([m for m in due if m.source == MeasureSource.COMPUTED])
    return sql + computed


def refresh_due(
    now: dt.datetime | None = None,
    progress: Progress | None = None,
    *,
    organisation_id: int | None = None,
    actor: User | None = None,
) -> list[RefreshResult]:
    """Refresh every due measure (of one organisation when given, as `actor` when given); the
    `progress(done, total, result)` callback runs before the first (with None) and after each.
    Failures are recorded on their measures and returned, never raised."""
    measures = due_measures(now, organisation_id=organisation_id)
    total = len(measures)
    if progress is not None:
        progress(0, total, None)
    results = []
    for done, measure in enumerate(measures, start=1):
        result = refresh_measure(measure, actor=actor)
        results.append(result)
        if progress is not None:
            progress(done, total, result)
    return results


def resolve_inputs(measure: Measure, formula: Formula | None = None) -> dict[str, Measure]:
    """The measures a computed measure's formula refers to, by reference (`revenue`, `m[12]`)."""
    formula = formula or parse(measure.formula)
    resolved: dict[str, Measure] = {}
    live = Measure.objects.filter(organisation_id=measure.organisation_id, archived_at__isnull=True)
    if formula.measure_ids:
        by_id = {m.pk: m for m in live.filter(pk__in=formula.measure_ids)}
        for measure_id in formula.measure_ids:
            if measure_id not in by_id:
                raise FormulaError(f"m[{measure_id}]: no live measure with id {measure_id} here.")
            resolved[f"m[{measure_id}]"] = by_id[measure_id]
    if formula.slugs:
        by_slug: dict[str, list[Measure]] = {}
        for candidate in live.exclude(pk=measure.pk) if measure.pk else live:
            by_slug.setdefault(reference_for(candidate.name), []).append(candidate)
        for slug in sorted(formula.slugs):
            matches = by_slug.get(slug, [])
            same_product = [m for m in matches if m.product_id == measure.product_id]
            organisation_wide = [m for m in matches if m.product_id is None]
            chosen = same_product or organisation_wide or matches
            if not chosen:
                raise FormulaError(f"'{slug}' is not the name of a live measure here.")
            if len(chosen) > 1:
                ids = ", ".join(f"m[{m.pk}]" for m in chosen)
                raise FormulaError(f"'{slug}' matches several measures ({ids}); use one of these ids.")
            resolved[slug] = chosen[0]
    if any(m.pk == measure.pk for m in resolved.values()):
        raise FormulaError("A computed measure cannot use itself.")
    return resolved


# --- SQL --------------------------------------------------------------------------------------------


def _refresh_sql(measure: Measure, membership: Membership, actor: User | None) -> RefreshResult:
    source = measure.data_source
    if source is None:
        raise ValidationFailed("A SQL measure needs a data source.", field="data_source")
    try:
        rows = run_query(source, measure.query)
    except SourceUnavailable as exc:
        mark_checked(source, exc.message)
        raise
    except QueryFailed:
        raise
    if source.last_error:
        mark_checked(source, "")
    return _ingest(measure, membership, actor, rows, MeasureSource.SQL, kind="sql")


# --- computed ---------------------------------------------------------------------------------------


def _refresh_computed(measure: Measure, membership: Membership, actor: User | None) -> RefreshResult:
    formula = parse(measure.formula)
    inputs = resolve_inputs(measure, formula)
    series: dict[str, tuple[list[dt.datetime], list[float]]] = {}
    for reference, source in inputs.items():
        pairs = list(
            Observation.objects.filter(measure=source, superseded=False)
            .order_by("observed_at", "id")
            .values_list("observed_at", "value")
        )
        if not pairs:
            return RefreshResult(
                measure, ok=True, notes=[f"{reference} (“{source.name}”) has no observations yet"]
            )
        series[reference] = ([p[0] for p in pairs], [p[1] for p in pairs])
    if not series:
        raise FormulaError("The formula uses no measure; a computed measure needs at least one.")
    start = max(times[0] for times, _ in series.values())
    timestamps = sorted({t for times, _ in series.values() for t in times if t >= start})
    points: list[tuple[dt.datetime, float]] = []
    failures: list[str] = []
    for when in timestamps:
        values = {ref: _value_at(times, vals, when) for ref, (times, vals) in series.items()}
        try:
            points.append((when, formula.evaluate(values)))
        except FormulaError as exc:
            failures.append(f"at {when.isoformat()}: {exc.message}")
    if failures and not points:
        raise FormulaError(f"No point could be computed ({len(failures)} tried); first {failures[0]}")
    result = _ingest(measure, membership, actor, points, MeasureSource.COMPUTED, kind="computed")
    if failures:
        result.skipped += len(failures)
        result.notes.append(f"{len(failures)} point(s) not computable, first {failures[0]}")
    return result


def _value_at(times: Sequence[dt.datetime], values: Sequence[float], when: dt.datetime) -> float:
    """The latest value observed at or before `when` (callers guarantee there is one)."""
    return values[bisect_right(times, when) - 1]


def _dependency_order(computed: list[Measure]) -> list[Measure]:
    """Computed measures so that each comes after the (due) computed measures it uses."""
    by_id = {m.pk: m for m in computed}
    uses: dict[int, set[int]] = {}
    for measure in computed:
        try:
            uses[measure.pk] = {m.pk for m in resolve_inputs(measure).values() if m.pk in by_id}
        except DomainError:
            uses[measure.pk] = set()  # it will fail and say why when refreshed
    ordered: list[Measure] = []
    placed: set[int] = set()
    while len(ordered) < len(computed):
        ready = [m for m in computed if m.pk not in placed and uses[m.pk] <= placed]
        if not ready:  # a cycle: the rest in id order (each fails or uses older values)
            ready = [m for m in computed if m.pk not in placed]
        for measure in ready:
            ordered.append(measure)
            placed.add(measure.pk)
    return ordered


# --- shared -----------------------------------------------------------------------------------------


def _is_due(measure: Measure, now: dt.datetime) -> bool:
    last = measure.last_refreshed_at
    if last is None:
        return True
    if measure.last_refresh_error and now - last >= RETRY_FAILED_AFTER:
        return True
    return now - last >= dt.timedelta(days=max(1, measure.cadence_days))


def next_due(measure: Measure, now: dt.datetime | None = None) -> dt.datetime | None:
    """When the scheduled refresh picks the measure up next (at the periodic run after this time; now
    when it is due already); None for measures that are not refreshed (or archived)."""
    if measure.source not in REFRESHABLE or measure.archived_at is not None:
        return None
    now = now or timezone.now()
    last = measure.last_refreshed_at
    if last is None:
        return now
    after = dt.timedelta(days=max(1, measure.cadence_days))
    if measure.last_refresh_error:
        after = min(after, RETRY_FAILED_AFTER)
    return max(now, last + after)


def _membership(measure: Measure, actor: User | None) -> Membership:
    """The actor's membership (a writer of the measure's organisation), or the system's."""
    if actor is None:
        # Not saved: it only carries the organisation and a role for the service layer.
        return Membership(organisation=measure.organisation, role=Role.OWNER)
    membership = (
        Membership.objects.select_related("organisation")
        .filter(organisation_id=measure.organisation_id, user=actor)
        .first()
    )
    if membership is None:
        raise NotFound("No such measure.")
    require_role(membership, Role.MEMBER)
    return membership


def _key(measure: Measure, kind: str, rows: Iterable[tuple[dt.datetime, float]]) -> str:
    digest = hashlib.sha256()
    for when, value in rows:
        digest.update(f"{when.astimezone(dt.UTC).isoformat()}|{value!r}\n".encode())
    return f"{kind}:{measure.pk}:{digest.hexdigest()}"


def _ingest(
    measure: Measure,
    membership: Membership,
    actor: User | None,
    rows: Sequence[tuple[dt.datetime, float]],
    source: str,
    *,
    kind: str,
) -> RefreshResult:
    """Add the rows whose timestamps the measure lacks, as one idempotent batch (all or none)."""
    limit = timezone.now() + services.FUTURE_TOLERANCE
    future = [r for r in rows if r[0] > limit]
    rows = [r for r in rows if r[0] <= limit]
    notes = [f"{len(future)} row(s) in the future left for later"] if future else []
    with transaction.atomic():
        # Serialise refreshes of one measure (SQLite serialises every write transaction anyway).
        Measure.objects.select_for_update().filter(pk=measure.pk).first()
        have = {
            when.astimezone(dt.UTC)
            for when in Observation.objects.filter(measure=measure).values_list("observed_at", flat=True)
        }
        new = [r for r in rows if r[0].astimezone(dt.UTC) not in have]
        skipped = len(rows) - len(new) + len(future)
        if not new:
            return RefreshResult(measure, ok=True, skipped=skipped, notes=notes)
        key = _key(measure, kind, new)
        batch_rows = [services.ObservationIn(measure.pk, value, when) for when, value in new]
        if actor is not None:
            batch = services.add_observations(
                membership, actor, batch_rows, source=source, idempotency_key=key
            )
        else:
            batch = _add_as_system(membership, measure, batch_rows, source, key)
    return RefreshResult(
        measure, ok=True, created=batch.created, skipped=skipped, replayed=batch.replayed, notes=notes
    )


def _add_as_system(
    membership: Membership,
    measure: Measure,
    rows: Sequence[services.ObservationIn],
    source: str,
    key: str,
) -> services.BatchResult:
    """services.add_observations for the background job, which acts as no user."""
    earlier = services.find_batch(membership, key)
    if earlier is not None:
        return services.BatchResult(earlier, 0, True)
    clean, errors = services.clean_rows(measure.organisation_id, rows, measures={measure.pk: measure})
    if errors:
        index = min(errors)
        name, message = next(iter(errors[index].items()))
        raise ValidationFailed(f"Row {index + 1} was refused ({name}: {message}); nothing was saved.")
    return services.store_batch(membership, None, clean, source=source, idempotency_key=key)
