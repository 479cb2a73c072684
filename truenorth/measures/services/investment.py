"""Investment in a product (money or effort), its value measure, and the return on it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import ValidationFailed
from truenorth.core.validate import date as _date
from truenorth.core.validate import optional_number as _optional_number
from truenorth.core.validate import required_date as _required_date
from truenorth.core.validate import text as _text
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.measures import maths
from truenorth.measures.models import Investment, Measure, MeasureDirection, Observation, ValueSettings
from truenorth.measures.services._common import _get_product
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import Goal

INVESTMENT_FIELDS = (
    "product",
    "goal",
    "period_start",
    "period_end",
    "amount",
    "people",
    "daily_rate",
    "currency",
    "note",
)


def invested(investment: Investment) -> float:
    """The investment's amount, or people x daily rate x working days of its period."""
    if investment.amount is not None:
        return investment.amount
    days = maths.working_days(investment.period_start, investment.period_end)
    return (investment.people or 0.0) * (investment.daily_rate or 0.0) * days


@transaction.atomic
def add_investment(
    membership: Membership,
    actor: User,
    product_id: int,
    *,
    period_start: Any,
    period_end: Any,
    amount: Any = None,
    people: Any = None,
    daily_rate: Any = None,
    currency: str = "EUR",
    goal_id: int | None = None,
    note: str = "",
) -> Investment:
    """Money (amount) or effort (people x daily rate over the period's working days) put into a product."""
    require_writer(membership)
    product = _get_product(membership, product_id)
    start = _required_date(period_start, "period_start")
    end = _required_date(period_end, "period_end")
    if end < start:
        raise ValidationFailed("The period must not end before it starts.", field="period_end")
    amount_n = _optional_number(amount, "amount")
    people_n = _optional_number(people, "people")
    rate_n = _optional_number(daily_rate, "daily_rate")
    effort = people_n is not None or rate_n is not None
    if amount_n is not None and effort:
        raise ValidationFailed("Give either an amount or people and a daily rate, not both.", field="amount")
    if amount_n is None and not effort:
        raise ValidationFailed("Give an amount, or people and a daily rate.", field="amount")
    if amount_n is not None and amount_n < 0:
        raise ValidationFailed("An amount cannot be negative.", field="amount")
    if effort:
        if people_n is None:
            raise ValidationFailed("How many people (full-time equivalents)?", field="people")
        if rate_n is None:
            raise ValidationFailed("What does one person cost per day?", field="daily_rate")
        if people_n <= 0:
            raise ValidationFailed("People must be more than 0.", field="people")
        if rate_n < 0:
            raise ValidationFailed("A daily rate cannot be negative.", field="daily_rate")
        if maths.working_days(start, end) == 0:
            raise ValidationFailed("The period has no working day (Monday to Friday).", field="period_end")
    currency = _text(currency, "currency", required=True, max_length=3).upper()
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        raise ValidationFailed("A currency is a three-letter ISO 4217 code such as EUR.", field="currency")
    goal = None
    if goal_id is not None:
        goal = Goal.objects.filter(pk=goal_id, organisation_id=membership.organisation_id).first()
        if goal is None:
            raise ValidationFailed("No such goal in this organisation.", field="goal")
        if goal.product_id != product.pk:
            raise ValidationFailed(f"That goal is not one of {product.name}'s goals.", field="goal")
    investment = Investment.objects.create(
        organisation_id=membership.organisation_id,
        product=product,
        goal=goal,
        period_start=start,
        period_end=end,
        amount=amount_n,
        people=people_n,
        daily_rate=rate_n,
        currency=currency,
        note=_text(note, "note", max_length=500),
        created_by=actor,
    )
    record(
        membership.organisation,
        investment,
        actor,
        HistoryEntry.Action.CREATED,
        diff({}, snapshot(investment, INVESTMENT_FIELDS)),
    )
    return investment


def investments_of(membership: Membership, product_id: int) -> QuerySet[Investment]:
    product = _get_product(membership, product_id)
    return Investment.objects.filter(
        organisation_id=membership.organisation_id, product=product
    ).select_related("goal")


def value_measure_of(membership: Membership, product_id: int) -> Measure | None:
    _get_product(membership, product_id)
    settings = ValueSettings.objects.filter(product_id=product_id).select_related("value_measure").first()
    return settings.value_measure if settings else None


@transaction.atomic
def set_value_measure(
    membership: Membership, actor: User, product_id: int, measure_id: int | None
) -> ValueSettings:
    """Choose the measure that stands for "value delivered" by the product (None: no value measure)."""
    require_writer(membership)
    product = _get_product(membership, product_id)
    measure = None
    if measure_id is not None:
        measure = Measure.objects.filter(pk=measure_id, organisation_id=membership.organisation_id).first()
        if measure is None:
            raise ValidationFailed("No such measure in this organisation.", field="value_measure")
        if measure.product_id not in (None, product.pk):
            raise ValidationFailed(
                f"Choose a measure of {product.name} (or of the whole organisation).", field="value_measure"
            )
    settings, _ = ValueSettings.objects.select_for_update().get_or_create(product=product)
    old = settings.value_measure
    if old != measure:
        settings.value_measure = measure
        settings.save(update_fields=["value_measure"])
        record(
            membership.organisation,
            product,
            actor,
            HistoryEntry.Action.UPDATED,
            {"value measure": {"old": str(old) if old else None, "new": str(measure) if measure else None}},
        )
    return settings


class ROIPoint(NamedTuple):
    period: dt.date  # the first day of the month
    invested: float  # invested in that month (investments spread over their periods)
    value: float | None  # the value measure's value in force at the end of the month


@dataclass
class ROI:
    """Are we getting a return? Investment in a window against the change of the value measure."""

    since: dt.date | None
    until: dt.date | None
    currency: str | None
    invested: float | None
    value_measure: Measure | None
    value_start: float | None
    value_end: float | None
    value_delta: float | None
    # value_delta in the good direction (positive = better), and per unit of currency invested
    improvement: float | None
    delta_per_unit: float | None
    series: list[ROIPoint] = field(default_factory=list)
    reason: str = ""


def _share_in(investment: Investment, start: dt.date, end: dt.date) -> float:
    """The part of an investment that falls in [start, end]: by working days for effort, by calendar
    days for amounts."""
    lo, hi = max(start, investment.period_start), min(end, investment.period_end)
    if hi < lo:
        return 0.0
    if investment.amount is not None:
        total_days = (investment.period_end - investment.period_start).days + 1
        return investment.amount * ((hi - lo).days + 1) / total_days
    days = maths.working_days(lo, hi)
    return (investment.people or 0.0) * (investment.daily_rate or 0.0) * days


def _months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    out = []
    first = start.replace(day=1)
    while first <= end:
        following = (first + dt.timedelta(days=32)).replace(day=1)
        out.append((first, following - dt.timedelta(days=1)))
        first = following
    return out


def _end_of_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)


def _value_at(points: Sequence[tuple[dt.datetime, float]], moment: dt.datetime) -> float | None:
    value = None
    for when, v in points:
        if when > moment:
            break
        value = v
    return value


def return_on_investment(
    membership: Membership, product_id: int, *, since: Any = None, until: Any = None
) -> ROI:
    """Investment in [since, until] (default: from the first investment to today) against the change in
    the value measure over the same window: its value in force at the start (or, failing that, its
    first value in the window) and at the end. Fields without evidence are None; `reason` says why."""
    product = _get_product(membership, product_id)
    investments = list(Investment.objects.filter(product=product).order_by("period_start", "id"))
    measure = value_measure_of(membership, product.pk)
    start = _date(since, "since")
    end = _date(until, "until") or timezone.now().date()
    if start is None and investments:
        start = investments[0].period_start
    reasons: list[str] = []
    if start is not None and end < start:
        raise ValidationFailed("The period must not end before it starts.", field="until")
    roi = ROI(start, end, None, None, measure, None, None, None, None, None)
    in_window = [
        i for i in investments if start is not None and i.period_end >= start and i.period_start <= end
    ]
    if not in_window:
        reasons.append("No investment is recorded for this product in the period.")
    else:
        currencies = sorted({i.currency for i in in_window})
        if len(currencies) > 1:
            reasons.append(
                f"Investments are in several currencies ({', '.join(currencies)}), so they cannot be added up."
            )
        else:
            assert start is not None
            roi.currency = currencies[0]
            roi.invested = sum(_share_in(i, start, end) for i in in_window)
    points: list[tuple[dt.datetime, float]] = []
    if measure is None:
        reasons.append("No value measure is chosen for this product.")
    elif start is not None:
        base = Observation.objects.filter(measure=measure, superseded=False)
        before = (
            base.filter(observed_at__lt=dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC))
            .order_by("-observed_at", "-id")
            .values_list("observed_at", "value")
            .first()
        )
        inside = list(
            base.filter(
                observed_at__gte=dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC),
                observed_at__lte=_end_of_day(end),
            )
            .order_by("observed_at", "id")
            .values_list("observed_at", "value")
        )
        points = ([before] if before else []) + inside
        if len(points) < 2:
            reasons.append(
                f"“{measure.name}” has {'no observation' if not points else 'only one observation'} "
                "in the period, so its change is unknown."
            )
        else:
            roi.value_start, roi.value_end = points[0][1], points[-1][1]
            roi.value_delta = roi.value_end - roi.value_start
            roi.improvement = (
                -roi.value_delta if measure.direction == MeasureDirection.LOWER else roi.value_delta
            )
            if roi.invested:
                roi.delta_per_unit = roi.improvement / roi.invested
            elif roi.invested == 0:
                reasons.append("Nothing was invested in the period, so there is no return per unit.")
    elif start is None:
        reasons.append("Give the start of the period.")
    if start is not None:
        for first, last in _months(start, end):
            spent = sum(_share_in(i, max(first, start), min(last, end)) for i in in_window)
            roi.series.append(ROIPoint(first, spent, _value_at(points, _end_of_day(min(last, end)))))
    roi.reason = " ".join(reasons)
    return roi
