"""Hypotheses and their lifecycle: writing one, changing it, and moving it on the board.

Reads take the caller's Membership (nothing outside its organisation is ever found); writes also take
the acting User, check the role and record history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.core.validate import check_version as _check_version
from truenorth.core.validate import choice as _choice
from truenorth.core.validate import date as _date
from truenorth.core.validate import optional_number
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.hypotheses.models import Hypothesis, HypothesisState
from truenorth.measures.models import Measure
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import Goal, Product

MAX_TEXT = 5000
SCORE_FIELDS = (
    "impact",
    "confidence",
    "ease",
    "reach",
    "effort",
    "cost_of_delay",
    "duration_weeks",
    "business_value",
    "time_criticality",
    "risk_reduction",
    "job_size",
)
ONE_TO_TEN = ("impact", "confidence", "ease")
TEXT_FIELDS = ("title", "capability", "who", "outcome", "metric_name")
HYPOTHESIS_FIELDS = (
    "title",
    "capability",
    "who",
    "outcome",
    "goal",
    "owner",
    "measure",
    "metric_name",
    "baseline",
    "target",
    "by_date",
    "state",
    "position",
    *SCORE_FIELDS,
)
S = HypothesisState
# The board's moves; concluding needs an outcome, a decision and a learning note (see `conclude`).
TRANSITIONS: Mapping[str, tuple[str, ...]] = {
    S.DRAFT: (S.READY,),
    S.READY: (S.DRAFT, S.TESTING),
    S.TESTING: (S.READY,),
    S.CONCLUDED: (),
}
UNMEASURED = "How will we measure its success? Name a measure or metric, its baseline and its target."


# --- validators -----------------------------------------------------------------------------------


def _number(value: Any, field: str, *, minimum: float | None = None) -> float | None:
    number = optional_number(value, field)
    if number is None:
        return None
    if abs(number) > 1e15:
        raise ValidationFailed("Must be a finite number.", field=field)
    if minimum is not None and number < minimum:
        raise ValidationFailed(f"Must be at least {minimum:g}.", field=field)
    return number


def _score_input(value: Any, field: str) -> float | int | None:
    number = _number(value, field, minimum=0)
    if number is None:
        return None
    if field in ONE_TO_TEN:
        if number != int(number) or not 1 <= number <= 10:
            raise ValidationFailed("Must be a whole number from 1 to 10.", field=field)
        return int(number)
    return number


def _owner(membership: Membership, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    found = (
        Membership.objects.filter(organisation_id=membership.organisation_id, user_id=user_id)
        .select_related("user")
        .first()
    )
    if found is None or not found.can_write:
        raise ValidationFailed("Not a member of this organisation who can own work.", field="owner")
    return found.user


def _goal(membership: Membership, product: Product, goal_id: int | None) -> Goal | None:
    if goal_id is None:
        return None
    goal = Goal.objects.filter(pk=goal_id, organisation_id=membership.organisation_id).first()
    if goal is None:
        raise ValidationFailed("No such goal in this organisation.", field="goal")
    if goal.product_id not in (None, product.pk):
        raise ValidationFailed("The goal belongs to another product.", field="goal")
    return goal


def _measure(membership: Membership, measure_id: int | None, field: str = "measure") -> Measure | None:
    if measure_id is None:
        return None
    measure = Measure.objects.filter(pk=measure_id, organisation_id=membership.organisation_id).first()
    if measure is None:
        raise ValidationFailed("No such measure in this organisation.", field=field)
    return measure


# --- hypotheses -----------------------------------------------------------------------------------


def hypotheses_of(membership: Membership) -> QuerySet[Hypothesis]:
    return Hypothesis.objects.filter(organisation_id=membership.organisation_id).select_related(
        "product", "goal", "owner", "measure"
    )


def get_hypothesis(membership: Membership, hypothesis_id: int) -> Hypothesis:
    found = hypotheses_of(membership).filter(pk=hypothesis_id).first()
    if found is None:
        raise NotFound("No such hypothesis.")
    return found


def _product(membership: Membership, product_id: int) -> Product:
    product = Product.objects.filter(pk=product_id, organisation_id=membership.organisation_id).first()
    if product is None:
        raise NotFound("No such product.")
    return product


def _apply_fields(membership: Membership, hypothesis: Hypothesis, fields: Mapping[str, Any]) -> None:
    """Validate and set the editable fields given (state and position have their own functions)."""
    for name, value in fields.items():
        if name in TEXT_FIELDS:
            limit = 200 if name in ("title", "who") else 120 if name == "metric_name" else MAX_TEXT
            setattr(hypothesis, name, _text(value, name, required=name == "title", max_length=limit))
        elif name in SCORE_FIELDS:
            setattr(hypothesis, name, _score_input(value, name))
        elif name in ("baseline", "target"):
            setattr(hypothesis, name, _number(value, name))
        elif name == "by_date":
            hypothesis.by_date = _date(value, name)
        elif name == "goal_id":
            hypothesis.goal = _goal(membership, hypothesis.product, value)
        elif name == "owner_id":
            hypothesis.owner = _owner(membership, value)
        elif name == "measure_id":
            hypothesis.measure = _measure(membership, value)
        else:
            raise ValidationFailed(f"Unknown field '{name}'.", field=name)


def create_hypothesis(
    membership: Membership, actor: User, product_id: int, *, title: str, **fields: Any
) -> Hypothesis:
    """A new hypothesis in draft, at the end of its product's draft column."""
    require_writer(membership)
    product = _product(membership, product_id)
    hypothesis = Hypothesis(organisation_id=membership.organisation_id, product=product)
    _apply_fields(membership, hypothesis, {"title": title, **fields})
    with transaction.atomic():
        last = Hypothesis.objects.filter(product=product, state=S.DRAFT).order_by("-position").first()
        hypothesis.position = last.position + 1 if last else 0
        hypothesis.save()
        record(
            membership.organisation,
            hypothesis,
            actor,
            HistoryEntry.Action.CREATED,
            diff({}, snapshot(hypothesis, HYPOTHESIS_FIELDS)),
        )
    return hypothesis


def _locked(membership: Membership, hypothesis_id: int, version: int | None) -> Hypothesis:
    found = (
        Hypothesis.objects.select_for_update()
        .filter(pk=hypothesis_id, organisation_id=membership.organisation_id)
        .select_related("product")
        .first()
    )
    if found is None:
        raise NotFound("No such hypothesis.")
    _check_version(found, version)
    return found


def _save(membership: Membership, actor: User, hypothesis: Hypothesis, before: dict[str, Any]) -> None:
    after = snapshot(hypothesis, HYPOTHESIS_FIELDS)
    if after == before:
        return
    hypothesis.version += 1
    hypothesis.updated_at = timezone.now()
    hypothesis.save()
    record(membership.organisation, hypothesis, actor, HistoryEntry.Action.UPDATED, diff(before, after))


def update_hypothesis(
    membership: Membership, actor: User, hypothesis_id: int, *, version: int | None = None, **fields: Any
) -> Hypothesis:
    """Change the statement, the success signal or the estimates; a stale version is a Conflict."""
    require_writer(membership)
    with transaction.atomic():
        hypothesis = _locked(membership, hypothesis_id, version)
        if hypothesis.state == S.CONCLUDED:
            raise Conflict(
                "A concluded hypothesis is a record of what we learned: it cannot change.", "state"
            )
        before = snapshot(hypothesis, HYPOTHESIS_FIELDS)
        _apply_fields(membership, hypothesis, fields)
        if hypothesis.state != S.DRAFT and not hypothesis.is_measurable:
            raise ValidationFailed(
                "A hypothesis past draft needs its success signal: " + UNMEASURED, field="metric_name"
            )
        _save(membership, actor, hypothesis, before)
    return get_hypothesis(membership, hypothesis.pk)


def move_hypothesis(
    membership: Membership,
    actor: User,
    hypothesis_id: int,
    state: str,
    *,
    version: int | None = None,
    position: int | None = None,
) -> Hypothesis:
    """Move a card on the board: to another column if the lifecycle allows it, and/or within a column."""
    require_writer(membership)
    state = _choice(state, S.values, "state")
    with transaction.atomic():
        hypothesis = _locked(membership, hypothesis_id, version)
        before = snapshot(hypothesis, HYPOTHESIS_FIELDS)
        if state != hypothesis.state:
            _check_transition(hypothesis, state)
            hypothesis.state = state
        column = list(
            Hypothesis.objects.filter(product_id=hypothesis.product_id, state=state)
            .exclude(pk=hypothesis.pk)
            .order_by("position", "id")
            .values_list("id", flat=True)
        )
        index = len(column) if position is None else max(0, min(position, len(column)))
        column.insert(index, hypothesis.pk)
        for i, pk in enumerate(column):
            if pk != hypothesis.pk:
                Hypothesis.objects.filter(pk=pk).exclude(position=i).update(position=i)
        hypothesis.position = index
        _save(membership, actor, hypothesis, before)
    return get_hypothesis(membership, hypothesis.pk)


def _check_transition(hypothesis: Hypothesis, state: str) -> None:
    current = hypothesis.state
    if state == S.CONCLUDED and current == S.TESTING:
        raise ValidationFailed(
            "Conclude it with an outcome, a decision and a learning note (the Conclude form).", field="state"
        )
    if state not in TRANSITIONS[current]:
        if current == S.CONCLUDED:
            message = "A concluded hypothesis stays concluded; write a new hypothesis to test again."
        else:
            allowed = ", ".join(TRANSITIONS[current]) or "nowhere"
            message = f"A {current} hypothesis cannot move to {state}; it can move to: {allowed}."
        raise ValidationFailed(message, field="state")
    if state == S.READY and not hypothesis.is_measurable:
        raise ValidationFailed("Not ready: " + UNMEASURED, field="state")
    if state == S.TESTING and not hypothesis.experiments.exists():
        raise ValidationFailed(
            "Not ready for testing: design an experiment for it first (how will we test it?).", field="state"
        )
