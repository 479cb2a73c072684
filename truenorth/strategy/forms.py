"""Vision forms: they parse and type the input; every rule is checked again by strategy.services.

Field names follow the services' error fields (title, target_date, owner, ...), so a service error
lands on the field the person typed into (see orgs.access.apply_error).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django import forms

from truenorth.core.forms import NOBODY as NOBODY  # re-exported for callers
from truenorth.core.forms import Choices, DateInput, VersionField
from truenorth.core.forms import optional_int as optional_int  # re-exported for callers
from truenorth.core.forms import owner_choices as owner_choices  # re-exported for callers
from truenorth.core.forms import set_choices as set_choices  # re-exported for callers
from truenorth.strategy.models import CheckIn, Goal, GoalLink, TargetMeasure

LEVEL_AUTO: Choices = [("", "Automatic (one level below its parent)")]
NO_MEASURE = ("", "— none: values recorded on the goal —")
NO_PARENT: Choices = [("", "— none: top of the tree —")]


def goal_choices(goals: Iterable[tuple[int, str, str]], empty: Choices = NO_PARENT) -> Choices:
    """(id, title, level) rows as select options."""
    return empty + [
        (str(pk), f"#{pk} {title} ({Goal.Level(level).label.lower()})") for pk, title, level in goals
    ]


class ProductForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name")
    vision = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Vision",
        help_text="The long-term change the product makes for its customers.",
    )
    product_goal = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Product goal",
        help_text="The next concrete step toward the vision.",
    )
    owner = forms.ChoiceField(required=False, label="Product owner")
    teams = forms.MultipleChoiceField(required=False, label="Teams", widget=forms.SelectMultiple)
    version = VersionField(required=False)  # required when editing (core.forms.require_version)

    def __init__(self, *args: Any, owners: Choices, teams: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["owner"], owners)
        set_choices(self.fields["teams"], teams)


class TeamForm(forms.Form):
    name = forms.CharField(max_length=120, label="Team name")


class GoalForm(forms.Form):
    """Create a goal, with its first target measure inline (more can be added on the goal page)."""

    title = forms.CharField(max_length=200, label="Title")
    outcome = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Outcome",
        help_text="Why it matters, in customer terms: who benefits and how.",
    )
    parent = forms.ChoiceField(required=False, label="Parent goal")
    level = forms.ChoiceField(choices=LEVEL_AUTO + list(Goal.Level.choices), required=False, label="Level")
    owner = forms.ChoiceField(required=False, label="Owner")
    target_date = forms.DateField(
        required=False, label="Target date", widget=DateInput()
    )
    status = forms.ChoiceField(choices=Goal.Status.choices, initial=Goal.Status.PROPOSED, label="Status")
    target_name = forms.CharField(max_length=120, required=False, label="Target measure")
    target_unit = forms.CharField(max_length=30, required=False, label="Unit")
    target_baseline = forms.FloatField(required=False, label="Baseline")
    target_target = forms.FloatField(required=False, label="Target value")
    target_direction = forms.ChoiceField(
        choices=TargetMeasure.Direction.choices, required=False, label="Direction"
    )
    target_measure = forms.ChoiceField(
        required=False,
        label="Tracks Value measure",
        help_text="Its observations then give the target's values, progress and staleness.",
    )

    # The services name the inline target's errors "targets.0.<field>".
    ALIASES = {f"targets.0.{f}": f"target_{f}" for f in ("name", "unit", "baseline", "target", "direction")}
    ALIASES["targets.0.measure_id"] = "target_measure"

    def __init__(
        self, *args: Any, owners: Choices, parents: Choices, measures: Choices | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["owner"], owners)
        set_choices(self.fields["parent"], parents)
        set_choices(self.fields["target_measure"], [NO_MEASURE, *(measures or [])])

    def targets(self) -> list[dict[str, Any]]:
        data = self.cleaned_data
        given = [data.get(f"target_{f}") for f in ("name", "unit", "baseline", "target", "measure")]
        if not any(v not in (None, "") for v in given):
            return []
        return [
            {
                "name": data.get("target_name"),
                "unit": data.get("target_unit"),
                "baseline": data.get("target_baseline"),
                "target": data.get("target_target"),
                "direction": data.get("target_direction") or TargetMeasure.Direction.INCREASE,
                "measure_id": data.get("target_measure") or None,
            }
        ]


class GoalEditForm(forms.Form):
    title = forms.CharField(max_length=200, label="Title")
    outcome = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Outcome")
    level = forms.ChoiceField(choices=Goal.Level.choices, label="Level")
    status = forms.ChoiceField(choices=Goal.Status.choices, label="Status")
    owner = forms.ChoiceField(required=False, label="Owner")
    target_date = forms.DateField(
        required=False, label="Target date", widget=DateInput()
    )
    weight = forms.FloatField(label="Weight", help_text="How much it counts in its parent's roll-up.")
    checkin_cadence_days = forms.IntegerField(label="Check-in every (days)")
    version = VersionField()

    def __init__(self, *args: Any, owners: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["owner"], owners)


class MoveForm(forms.Form):
    parent = forms.ChoiceField(required=False, label="New parent")
    position = forms.IntegerField(
        required=False,
        min_value=0,
        label="Position",
        help_text="0 is first among its siblings; empty is last.",
    )
    version = VersionField()

    def __init__(self, *args: Any, parents: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["parent"], parents)


class TargetForm(forms.Form):
    """Add or change a target measure; it may track a Value measure (the goal's product's and the
    organisation-wide ones are offered; name and unit may then stay empty: they come from it)."""

    name = forms.CharField(max_length=120, required=False, label="Measure")
    version = VersionField()  # the goal's: adding or changing a target changes the goal
    unit = forms.CharField(max_length=30, required=False, label="Unit")
    baseline = forms.FloatField(label="Baseline")
    target = forms.FloatField(label="Target value")
    direction = forms.ChoiceField(choices=TargetMeasure.Direction.choices, label="Direction")
    measure = forms.ChoiceField(
        required=False,
        label="Tracks Value measure",
        help_text="Its observations then give this target's values, progress and staleness.",
    )

    def __init__(self, *args: Any, measures: Choices | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["measure"], [NO_MEASURE, *(measures or [])])

    def spec(self) -> dict[str, Any]:
        """The service's target spec (an empty measure choice unlinks)."""
        data = dict(self.cleaned_data)
        data.pop("version", None)
        data["measure_id"] = data.pop("measure") or None
        return data


class CheckInForm(forms.Form):
    status = forms.ChoiceField(choices=CheckIn.Status.choices, label="How is it going?")
    confidence = forms.IntegerField(min_value=0, max_value=10, label="Confidence (0 to 10)")
    narrative = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000, label="What happened"
    )
    target = forms.ChoiceField(required=False, label="New value for")
    value = forms.FloatField(required=False, label="Value")
    # A fresh key per rendered form: submitting it twice records the check-in (and its value) once.
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=100)

    def __init__(self, *args: Any, targets: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["target"], [("", "— no new value —"), *targets])
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", uuid.uuid4().hex)


class CommentForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=5000,
        label="Comment",
        help_text="Mention someone with @their-email to notify them.",
    )


class ProposalForm(forms.Form):
    """New wording, date or target values; only what differs from the goal today is proposed."""

    title = forms.CharField(max_length=200, label="Title")
    outcome = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Outcome")
    target_date = forms.DateField(
        required=False, label="Target date", widget=DateInput()
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000, label="Why"
    )

    def __init__(self, *args: Any, targets: Iterable[TargetMeasure] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target_measures = list(targets)
        for t in self.target_measures:
            self.fields[f"target_{t.pk}"] = forms.FloatField(
                required=False,
                label=f"New target for {t.name}",
                help_text=f"Now {t.target:g}{' ' + t.unit if t.unit else ''} (baseline {t.baseline:g}).",
            )

    def changes(self, goal: Goal) -> dict[str, Any]:
        data = self.cleaned_data
        changes: dict[str, Any] = {}
        if data["title"].strip() != goal.title:
            changes["title"] = data["title"]
        if (data.get("outcome") or "").strip() != goal.outcome:
            changes["outcome"] = data.get("outcome") or ""
        if data.get("target_date") != goal.target_date:
            date = data.get("target_date")
            changes["target_date"] = date.isoformat() if date else None
        targets = {
            str(t.pk): {"target": data[f"target_{t.pk}"]}
            for t in self.target_measures
            if data.get(f"target_{t.pk}") is not None and data[f"target_{t.pk}"] != t.target
        }
        if targets:
            changes["targets"] = targets
        return changes


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accept", "Accept"), ("reject", "Reject")])
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=2000,
        label="Reason",
        help_text="Required to reject.",
    )
    over_newer_edits = forms.BooleanField(
        required=False, label="Apply it over the edits made since it was proposed"
    )


class NoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 1}),
        required=False,
        max_length=2000,
        label="Why you support it (optional)",
    )


class ConcernForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000, label="Your concern")


class ResolveForm(forms.Form):
    resolution = forms.CharField(max_length=2000, label="Resolution")


class LinkForm(forms.Form):
    target = forms.ChoiceField(label="Goal")
    kind = forms.ChoiceField(choices=GoalLink.Kind.choices, label="Link")

    def __init__(self, *args: Any, goals: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["target"], goals)


class WorkItemForm(forms.Form):
    title = forms.CharField(max_length=300, label="Work item")
    external_key = forms.CharField(max_length=100, required=False, label="Key (e.g. ABC-12)")
    url = forms.CharField(max_length=500, required=False, label="Link")


class LinkWorkForm(forms.Form):
    item = forms.ChoiceField(label="Unlinked work item")

    def __init__(self, *args: Any, items: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["item"], items)


class OverdueFilterForm(forms.Form):
    product = forms.ChoiceField(required=False, label="Product")
    owner = forms.ChoiceField(required=False, label="Owner")

    def __init__(self, *args: Any, products: Choices, owners: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["product"], [("", "All products"), *products])
        set_choices(self.fields["owner"], [("", "Everyone"), *owners[1:]])
