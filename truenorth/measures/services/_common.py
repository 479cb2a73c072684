"""Shared by the Value services: small validators, who may write, and lookups inside the organisation."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from truenorth.accounts.models import User
from truenorth.core.errors import Forbidden, NotFound, ValidationFailed
from truenorth.core.validate import observed_time as _observed_time
from truenorth.measures.models import DataSource, MeasureSource
from truenorth.orgs.models import Membership, Role
from truenorth.strategy.models import Product

MAX_TEXT = 5000
MAX_CADENCE_DAYS = 366
FUTURE_TOLERANCE = dt.timedelta(minutes=5)


# --- small validators ---------------------------------------------------------------------------


def parse_timestamp(value: Any) -> dt.datetime:
    """An aware datetime from ISO 8601 text, a date (midnight UTC) or a datetime (naive = UTC)."""
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day)
    else:
        text = "" if value is None else str(value).strip()
        if not text:
            raise ValueError("A time is required.")
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"'{text[:50]}' is not an ISO 8601 time (use e.g. 2026-01-31 or 2026-01-31T09:30:00Z)."
            ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when


def _timestamp(value: Any, field: str, *, now: dt.datetime | None = None) -> dt.datetime:
    try:
        when = parse_timestamp(value)
    except ValueError as exc:
        raise ValidationFailed(str(exc), field=field) from None
    return _observed_time(when, field, now=now)  # not before 1900, not in the future


def _cadence(value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationFailed(f"'{value}' is not a whole number of days.", field="cadence_days") from None
    if not math.isfinite(number) or number != int(number):
        raise ValidationFailed(f"'{value}' is not a whole number of days.", field="cadence_days")
    if not 1 <= number <= MAX_CADENCE_DAYS:
        raise ValidationFailed(
            f"Cadence must be between 1 and {MAX_CADENCE_DAYS} days.", field="cadence_days"
        )
    return int(number)


# Measures whose values a refresh writes: no manual or pushed single values (corrections still allowed).
FED_SOURCES = (MeasureSource.SQL, MeasureSource.COMPUTED)


def require_query_author(membership: Membership) -> None:
    """SQL runs as the data source's role: only admins write it (and define sources); members choose
    among the SQL measures and refresh them."""
    if membership.role not in (Role.ADMIN, Role.OWNER):
        raise Forbidden(
            "Only an admin can choose what runs on a data source (a measure's SQL query, an experiment's "
            "evidence settings)."
        )


def _member_user(membership: Membership, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    owner = (
        Membership.objects.filter(organisation_id=membership.organisation_id, user_id=user_id)
        .select_related("user")
        .first()
    )
    if owner is None:
        raise ValidationFailed("No such member in this organisation.", field="owner")
    if not owner.can_write:
        raise ValidationFailed("A stakeholder cannot own a measure; choose a member.", field="owner")
    return owner.user


def _product(membership: Membership, product_id: int | None, field: str = "product") -> Product | None:
    if product_id is None:
        return None
    product = Product.objects.filter(pk=product_id, organisation_id=membership.organisation_id).first()
    if product is None:
        raise ValidationFailed("No such product in this organisation.", field=field)
    return product


def _get_product(membership: Membership, product_id: int) -> Product:
    product = Product.objects.filter(pk=product_id, organisation_id=membership.organisation_id).first()
    if product is None:
        raise NotFound("No such product.")
    return product


def _data_source(membership: Membership, data_source_id: int | None) -> DataSource | None:
    if data_source_id is None:
        return None
    source = DataSource.objects.filter(pk=data_source_id, organisation_id=membership.organisation_id).first()
    if source is None:
        raise ValidationFailed("No such data source in this organisation.", field="data_source")
    return source


def data_source_of(membership: Membership, data_source_id: int | None) -> DataSource | None:
    """The organisation's data source with that id (None for None); 422 on field data_source otherwise."""
    return _data_source(membership, data_source_id)


def _check_formula(formula: str) -> None:
    from truenorth.measures import formula as formula_module  # written alongside; imported lazily

    formula_module.parse(formula)
