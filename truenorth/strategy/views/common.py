"""Helpers the Vision pages share (package-internal): a service error on its form field, choices,
URLs and a target's edit form."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django.db.models import QuerySet
from django.http import QueryDict
from django.urls import reverse

from truenorth.core.errors import Conflict, DomainError, ValidationFailed
from truenorth.orgs import services as org_services
from truenorth.orgs.models import Membership
from truenorth.strategy import forms as f
from truenorth.strategy import services
from truenorth.strategy.models import Goal, TargetMeasure

HISTORY_ROWS = 50
LINT_ROWS = 100
LIST_ROWS = 100
CHOICE_ROWS = 1000

FormErrors = (ValidationFailed, Conflict)


def _error(form: f.forms.Form, exc: DomainError, aliases: Mapping[str, str] | None = None) -> None:
    """Show a service error on the field it names (hidden fields and unknown names: top of the form)."""
    field = (aliases or {}).get(exc.field or "", exc.field)
    visible = field in form.fields and not form.fields[field].widget.is_hidden
    form.add_error(field if visible else None, exc.message)


def _stale(form: f.forms.Form, exc: DomainError, current_version: int) -> None:
    """A 409 on a stale version: say so, keep what was typed, and let a second save apply it."""
    _error(form, exc)
    data = cast(QueryDict, form.data).copy()
    data["version"] = str(current_version)
    form.data = data
    form.add_error(
        None,
        "Your edits are kept below. Check the history for what changed, then save again to apply them.",
    )


def _is_id(value: str) -> bool:
    """A database id as the URL converter takes it (fits a 64-bit column, so never a database error)."""
    return value.isascii() and value.isdigit() and len(value) <= 18


def _owners(membership: Membership) -> f.Choices:
    return f.owner_choices(org_services.members_of(membership))


def _team_choices(membership: Membership) -> f.Choices:
    return [(str(t.pk), t.name) for t in services.teams_of(membership)]


def _same_tree(membership: Membership, product_id: int | None) -> QuerySet[Goal]:
    """Goals of one product's tree, or the organisation-level goals when product_id is None."""
    qs = services.goals_of(membership)
    return qs.filter(product__isnull=True) if product_id is None else qs.filter(product_id=product_id)


def _tree_goals(membership: Membership, product_id: int | None, *, exclude: int | None = None) -> f.Choices:
    """The live goals of one tree as parent options (one query)."""
    qs = _same_tree(membership, product_id).filter(archived_at__isnull=True)
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    return f.goal_choices(qs.order_by("position", "id").values_list("id", "title", "level")[:CHOICE_ROWS])


def _goal_url(membership: Membership, goal_id: int, anchor: str = "") -> str:
    url = reverse("strategy:goal", kwargs={"org_slug": membership.organisation.slug, "goal_id": goal_id})
    return f"{url}#{anchor}" if anchor else url


def _product_url(membership: Membership, product_id: int) -> str:
    return reverse(
        "strategy:product", kwargs={"org_slug": membership.organisation.slug, "product_id": product_id}
    )


def _measure_choices(
    membership: Membership, product_id: int | None, current: TargetMeasure | None = None
) -> f.Choices:
    """The Value measures offered to a target of a goal in this product: its product's and the
    organisation-wide ones, plus the one it tracks now (so an unchanged save keeps it)."""
    choices = [
        (str(m.pk), f"{m.name} ({m.product.name if m.product else 'organisation-wide'})")
        for m in services.trackable_measures(membership, product_id)[:CHOICE_ROWS]
    ]
    if current is not None and current.measure is not None and str(current.measure_id) not in dict(choices):
        m = current.measure
        choices.append((str(m.pk), f"{m.name} ({m.product.name if m.product else 'organisation-wide'})"))
    return choices


def _target_edit_form(
    membership: Membership,
    target: TargetMeasure,
    version: int,
    data: Any = None,
    measures: f.Choices | None = None,
) -> f.TargetForm:
    initial = {
        "name": target.name,
        "unit": target.unit,
        "baseline": target.baseline,
        "target": target.target,
        "direction": target.direction,
        "measure": str(target.measure_id or ""),
        "version": version,
    }
    return f.TargetForm(
        data,
        initial=initial,
        auto_id=f"target-{target.pk}-%s",  # unique ids on a page with several targets; names stay plain
        measures=_measure_choices(membership, target.goal.product_id, target)
        if measures is None
        else measures,
    )
