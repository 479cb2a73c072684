"""Delivery services: process changes tested as experiments (issue 12, capability 7).

A team marks a change to its way of working with a date (`create_change`); TrueNorth records it as a
hypothesis of the product (hypotheses services, with their history) with a before/after experiment, and
compares the flow and DORA measures of the window before the change with the window after it
(`compare_change`: delivery/process_compare.py on the records metrics.py loads). The comparison is stored
on the change. It runs inline up to settings.TRUENORTH_DELIVERY_INLINE_MAX_ROWS rows (as the metrics
pages), else as a background job (kind COMPARE_KIND) that stores it when done. `decide` concludes the
hypothesis through the hypotheses' decision service (persevere / pivot / stop with a learning note).

Windows: the change day starts at 00:00 UTC; "before" is the `before_days` days up to that instant,
"after" the `after_days` days from it, cut at now while they are still running (the comparison says so).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.core.validate import check_version, required_date, text, whole
from truenorth.delivery import process_compare as pure
from truenorth.delivery.models import ProcessChange
from truenorth.delivery.models.process import MAX_WINDOW_DAYS, MIN_WINDOW_DAYS
from truenorth.delivery.services import metrics
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.hypotheses.models import Decision, Experiment, Hypothesis
from truenorth.hypotheses.services import decisions as hypothesis_decisions
from truenorth.hypotheses.services import experiments as hypothesis_experiments
from truenorth.hypotheses.services import hypotheses as hypothesis_services
from truenorth.jobs.models import ACTIVE, Job
from truenorth.jobs.services import Progress, acting_membership, register, submit
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import Product, Team
from truenorth.strategy.services import teams_of

COMPARE_KIND = "delivery.process_compare"
CHANGE_FIELDS = ("title", "description", "product", "team", "changed_on", "before_days", "after_days")
WINDOW_FIELDS = ("team_id", "changed_on", "before_days", "after_days")
PRIMARY = "cycle_time_p85"
METRIC_NAME = "Cycle time, 85th percentile (days)"
OUTCOME_TEXT = (
    "shorter cycle times and a higher throughput, without more failed changes or slower recovery "
    "(flow and DORA measures before and after, compared with 95 % intervals)"
)


# --- reading ---------------------------------------------------------------------------------------------


def changes_of(membership: Membership, product_id: int | None = None) -> QuerySet[ProcessChange]:
    qs = ProcessChange.objects.filter(organisation_id=membership.organisation_id).select_related(
        "product", "team", "hypothesis", "created_by", "job", "organisation"
    )
    if product_id is not None:
        qs = qs.filter(product_id=product_id)
    return qs


def get_change(membership: Membership, change_id: int) -> ProcessChange:
    found = changes_of(membership).filter(pk=change_id).first()
    if found is None:
        raise NotFound("No such process change.")
    return found


def change_url(change: ProcessChange) -> str:
    return reverse("delivery:change", args=(change.organisation.slug, change.pk))


# --- validation ------------------------------------------------------------------------------------------


def _product(membership: Membership, value: Any) -> Product:
    if value in (None, ""):
        raise ValidationFailed("Product is required.", field="product_id")
    pk = whole(value, "product_id", "a product id")
    found = Product.objects.filter(pk=pk, organisation_id=membership.organisation_id).first()
    if found is None:
        raise ValidationFailed("No such product in this organisation.", field="product_id")
    return found


def product_named(membership: Membership, name_or_id: str) -> Product:
    """A product by id or by name (case-insensitive), for the CLI."""
    qs = Product.objects.filter(organisation_id=membership.organisation_id)
    found = qs.filter(pk=int(name_or_id)).first() if name_or_id.isdigit() else None
    found = found or qs.filter(name__iexact=name_or_id.strip()).order_by("id").first()
    if found is None:
        raise ValidationFailed(f"No product “{name_or_id}” in this organisation.", field="product")
    return found


def _team(membership: Membership, value: Any) -> Team | None:
    if value in (None, ""):
        return None
    pk = whole(value, "team_id", "a team id")
    found = teams_of(membership).filter(pk=pk).first()
    if found is None:
        raise ValidationFailed("No such team in this organisation.", field="team_id")
    return found


def _days(value: Any, field: str) -> int:
    days = whole(value, field, "a whole number of days")
    if not MIN_WINDOW_DAYS <= days <= MAX_WINDOW_DAYS:
        raise ValidationFailed(f"Must be from {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS} days.", field=field)
    return days


def _apply(membership: Membership, change: ProcessChange, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if name == "title":
            change.title = text(value, "title", required=True, max_length=200)
        elif name == "description":
            change.description = text(value, "description")
        elif name == "changed_on":
            change.changed_on = required_date(value, "changed_on")
        elif name in ("before_days", "after_days"):
            setattr(change, name, _days(value, name))
        elif name == "team_id":
            change.team = _team(membership, value)
        else:
            raise ValidationFailed(f"Unknown field '{name}'.", field=name)


def _snap(change: ProcessChange) -> dict[str, Any]:
    return snapshot(change, CHANGE_FIELDS)


# --- writing ---------------------------------------------------------------------------------------------


def create_change(
    membership: Membership,
    actor: User,
    *,
    product_id: Any,
    title: Any,
    changed_on: Any,
    description: Any = "",
    team_id: Any = None,
    before_days: Any = 42,
    after_days: Any = 42,
) -> ProcessChange:
    """Mark a process change; it is recorded as a draft hypothesis of the product with a before/after
    experiment (both in their history)."""
    require_writer(membership)
    change = ProcessChange(organisation_id=membership.organisation_id, created_by=actor)
    change.product = _product(membership, product_id)
    _apply(
        membership,
        change,
        {
            "title": title,
            "description": description,
            "changed_on": changed_on,
            "team_id": team_id,
            "before_days": before_days,
            "after_days": after_days,
        },
    )
    with transaction.atomic():
        who = change.team.name if change.team else f"the {change.product.name} team"
        hypothesis = hypothesis_services.create_hypothesis(
            membership,
            actor,
            change.product.pk,
            title=f"Process change: {change.title}"[:200],
            capability=change.title + (f"\n\n{change.description}" if change.description else ""),
            who=who[:200],
            outcome=OUTCOME_TEXT,
            metric_name=METRIC_NAME,
            by_date=change.changed_on + dt.timedelta(days=change.after_days),
        )
        hypothesis_experiments.create_experiment(
            membership,
            actor,
            hypothesis.pk,
            name=f"Before/after {change.changed_on.isoformat()}: {change.title}"[:200],
            kind=Experiment.Kind.BEFORE_AFTER,
            start_date=change.changed_on,
            stop_date=change.changed_on + dt.timedelta(days=change.after_days),
        )
        change.hypothesis = hypothesis
        change.save()
        record(membership.organisation, change, actor, HistoryEntry.Action.CREATED, diff({}, _snap(change)))
    return get_change(membership, change.pk)


def _locked(membership: Membership, change_id: int, version: int | None) -> ProcessChange:
    found = (
        ProcessChange.objects.select_for_update()
        .filter(pk=change_id, organisation_id=membership.organisation_id)
        .first()
    )
    if found is None:
        raise NotFound("No such process change.")
    check_version(found, version)
    return found


def update_change(
    membership: Membership, actor: User, change_id: int, *, version: int | None, **fields: Any
) -> ProcessChange:
    """Change the title, description, team, date or windows; nothing changed saves nothing. A new date,
    team or window clears the stored comparison (it no longer describes the change)."""
    require_writer(membership)
    get_change(membership, change_id)  # another organisation's: not found before anything else
    with transaction.atomic():
        change = _locked(membership, change_id, version)
        before = _snap(change)
        windows = {f: getattr(change, f) for f in WINDOW_FIELDS}
        _apply(membership, change, fields)
        after = _snap(change)
        if after != before:
            if any(getattr(change, f) != v for f, v in windows.items()):
                change.comparison, change.computed_at = {}, None
            change.version += 1
            change.save()
            record(membership.organisation, change, actor, HistoryEntry.Action.UPDATED, diff(before, after))
    return get_change(membership, change_id)


def delete_change(membership: Membership, actor: User, change_id: int, *, version: int | None) -> None:
    """Delete the change (its hypothesis, experiment and decision stay: they are the record)."""
    require_writer(membership)
    get_change(membership, change_id)
    with transaction.atomic():
        change = _locked(membership, change_id, version)
        record(membership.organisation, change, actor, HistoryEntry.Action.DELETED, diff(_snap(change), {}))
        change.delete()


# --- comparing -------------------------------------------------------------------------------------------


def windows_of(
    change: ProcessChange, now: dt.datetime | None = None
) -> tuple[tuple[dt.datetime, dt.datetime], tuple[dt.datetime, dt.datetime], bool]:
    """(before start, before end), (after start, after end) and whether the after window is cut at now."""
    now = now or timezone.now()
    t0 = dt.datetime.combine(change.changed_on, dt.time.min, tzinfo=dt.UTC)
    tick = dt.timedelta(microseconds=1)
    before = (t0 - dt.timedelta(days=change.before_days), t0 - tick)
    planned = t0 + dt.timedelta(days=change.after_days) - tick
    after_end = min(planned, now)
    if after_end <= t0:
        raise ValidationFailed(
            "The change has not happened yet: there is nothing after it to compare.", field="changed_on"
        )
    return before, (t0, after_end), after_end < planned


def _scope(change: ProcessChange) -> metrics.Scope:
    return metrics.Scope(product_id=change.product_id, team_id=change.team_id)


def compute(membership: Membership, change: ProcessChange, now: dt.datetime | None = None) -> dict[str, Any]:
    """The comparison as JSON (what the pages, the API and the CLI show)."""
    (b_start, b_end), (a_start, a_end), partial = windows_of(change, now)
    sources = metrics.sources_in(membership, _scope(change))
    items = metrics.histories(sources, a_end)
    records = metrics.combined(metrics.dora_inputs(sources, a_end), sources)

    def window(start: dt.datetime, end: dt.datetime) -> pure.WindowData:
        m = metrics.flow_of(sources, items, start=start, end=end)
        d = pure.dora_samples(
            records.deployments,
            records.commits,
            records.pulls,
            records.incidents,
            start=start,
            end=end,
            production=metrics.PRODUCTION,
        )
        return pure.WindowData(
            days=(end - start).total_seconds() / 86_400,
            cycle_days=[c for _, _, c in m.completed],
            done=len(m.lead_times),
            deployments=d.deployments,
            failed=d.failed,
            lead_hours=d.lead_hours,
            restore_hours=d.restore_hours,
            wip=m.wip,
        )

    effects = pure.compare(window(b_start, b_end), window(a_start, a_end))
    return {
        "before": {"start": b_start.isoformat(), "end": b_end.isoformat()},
        "after": {"start": a_start.isoformat(), "end": a_end.isoformat(), "partial": partial},
        "sources": len(sources),
        "effects": [e.as_dict() for e in effects],
        "outcome": suggested_outcome([e.as_dict() for e in effects]),
    }


def suggested_outcome(effects: list[dict[str, Any]]) -> str:
    """validated when some measure is better and none worse, invalidated when the reverse, else
    inconclusive."""
    verdicts = {e["verdict"] for e in effects}
    if pure.BETTER in verdicts and pure.WORSE not in verdicts:
        return Decision.Outcome.VALIDATED
    if pure.WORSE in verdicts and pure.BETTER not in verdicts:
        return Decision.Outcome.INVALIDATED
    return Decision.Outcome.INCONCLUSIVE


def _store(change: ProcessChange, result: dict[str, Any]) -> None:
    now = timezone.now()
    ProcessChange.objects.filter(pk=change.pk).update(comparison=result, computed_at=now)
    change.comparison, change.computed_at = result, now


def compare_change(membership: Membership, actor: User, change_id: int) -> ProcessChange | Job:
    """Compute and store the comparison now when the scope is small enough (the change is returned), else
    as a background job (returned; the same one while it is still queued or running)."""
    require_writer(membership)
    change = get_change(membership, change_id)
    _, (_, a_end), _ = windows_of(change)
    if metrics.rows_in(membership, _scope(change), end=a_end) <= metrics.inline_max_rows():
        _store(change, compute(membership, change))
        return change
    if change.job is not None and change.job.status in ACTIVE:
        return change.job
    job = submit(membership, actor, COMPARE_KIND, {"change_id": change.pk})
    ProcessChange.objects.filter(pk=change.pk).update(job=job)
    change.job = job
    return job


@register(COMPARE_KIND)
def run_compare(job: Job, progress: Progress) -> dict[str, Any]:
    """The job: compare as the person who asked (still a member) and store the result on the change."""
    membership, _ = acting_membership(job)
    progress(0, 1)
    change = get_change(membership, int(job.params["change_id"]))
    result = compute(membership, change)
    _store(change, result)
    progress(1, 1)
    return {
        "summary": f"Process change “{change.title}” compared before and after.",
        "link": change_url(change),
        "link_text": "See the comparison",
    }


# --- deciding --------------------------------------------------------------------------------------------


def _observed(comparison: dict[str, Any]) -> str:
    lines = []
    for e in comparison.get("effects", []):
        if e["verdict"] in (pure.BETTER, pure.WORSE, pure.UNCLEAR):
            lines.append(
                f"{e['label']}: {_fmt(e['before'])} → {_fmt(e['after'])} {e['unit']} "
                f"({e['effect_kind']} {_fmt(e['effect'])}, 95 % interval {_fmt(e['low'])} to "
                f"{_fmt(e['high'])}: {e['verdict']})"
            )
    return "\n".join(lines) or "Too little data to compare any measure."


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3g}"


def decide(
    membership: Membership,
    actor: User,
    change_id: int,
    *,
    decision: str,
    learning: str,
    outcome: str | None = None,
    next_step: str = "",
) -> Decision:
    """Record the decision (persevere / pivot / stop with a learning note) on the change's hypothesis by
    the hypotheses' own services: its success signal is set from the comparison (baseline: the cycle
    time's 85th percentile before; target: the value after), it goes through ready and testing, and is
    concluded with the outcome (default: suggested by the comparison) and the observed effects."""
    require_writer(membership)
    change = get_change(membership, change_id)
    if change.hypothesis_id is None:
        raise ValidationFailed("The hypothesis of this change was deleted.", field="hypothesis")
    if not change.comparison:
        raise ValidationFailed("Compare before and after first: a decision rests on it.", field="comparison")
    comparison = change.comparison
    primary: dict[str, Any] = next((e for e in comparison.get("effects", []) if e["key"] == PRIMARY), {})
    base = primary.get("before")
    with transaction.atomic():
        hypothesis = hypothesis_services.get_hypothesis(membership, change.hypothesis_id)
        if hypothesis.state == Hypothesis.State.CONCLUDED:
            raise Conflict("This change has been decided already (its hypothesis is concluded).", "decision")
        pk = hypothesis.pk
        if not hypothesis.is_measurable:
            baseline = float(base) if base is not None else 0.0
            after = primary.get("after")
            target = float(after) if after is not None else baseline
            hypothesis_services.update_hypothesis(membership, actor, pk, baseline=baseline, target=target)
        if not hypothesis.experiments.exists():
            hypothesis_experiments.create_experiment(
                membership,
                actor,
                pk,
                name=f"Before/after: {change.title}"[:200],
                kind=Experiment.Kind.BEFORE_AFTER,
            )
        state = hypothesis_services.get_hypothesis(membership, pk).state
        if state == Hypothesis.State.DRAFT:
            hypothesis_services.move_hypothesis(membership, actor, pk, Hypothesis.State.READY)
            state = Hypothesis.State.READY
        if state == Hypothesis.State.READY:
            hypothesis_services.move_hypothesis(membership, actor, pk, Hypothesis.State.TESTING)
        return hypothesis_decisions.conclude(
            membership,
            actor,
            pk,
            outcome=outcome or comparison.get("outcome") or Decision.Outcome.INCONCLUSIVE,
            decision=decision,
            learning=learning,
            observed=_observed(comparison),
            next_step=next_step,
        )


def decision_of(change: ProcessChange) -> Decision | None:
    if change.hypothesis is None:
        return None
    return hypothesis_decisions.decision_of(change.hypothesis)
