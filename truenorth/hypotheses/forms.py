"""Validation forms: they parse and type the input; every rule is checked again by hypotheses.services.

Field names follow the services' error fields, so a service error lands on the field typed into.
"""

from __future__ import annotations

from typing import Any

from django import forms

from truenorth.core.forms import Choices, DateInput, VersionField, optional_int, set_choices
from truenorth.hypotheses.models import Decision, Experiment, ExperimentMetric

__all__ = ["Choices", "optional_int"]

NONE: Choices = [("", "— none —")]


def _score(label: str, help_text: str = "", one_to_ten: bool = False) -> forms.Field:
    if one_to_ten:
        return forms.IntegerField(required=False, min_value=1, max_value=10, label=label, help_text=help_text)
    return forms.FloatField(required=False, min_value=0, label=label, help_text=help_text)


class HypothesisForm(forms.Form):
    title = forms.CharField(max_length=200, label="Title")
    goal = forms.ChoiceField(required=False, label="Goal (line of sight)")
    owner = forms.ChoiceField(required=False, label="Owner")
    capability = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="We believe that (capability)"
    )
    who = forms.CharField(max_length=200, required=False, label="For (who)")
    outcome = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Will result in (outcome)"
    )
    measure = forms.ChoiceField(required=False, label="We will know when (measure)")
    metric_name = forms.CharField(
        max_length=120, required=False, label="Or a metric by name", help_text="When no measure fits."
    )
    baseline = forms.FloatField(required=False, label="Moves from (baseline)")
    target = forms.FloatField(required=False, label="To (target)")
    by_date = forms.DateField(
        required=False, label="By (date)", widget=DateInput()
    )
    impact = _score("Impact (1 to 10)", one_to_ten=True)
    confidence = _score("Confidence (1 to 10)", one_to_ten=True)
    ease = _score("Ease (1 to 10)", one_to_ten=True)
    reach = _score("Reach", "People or events per period.")
    effort = _score("Effort", "Person-weeks.")
    cost_of_delay = _score("Cost of delay", "Value lost per week of delay.")
    duration_weeks = _score("Duration (weeks)")
    business_value = _score("Business value")
    time_criticality = _score("Time criticality")
    risk_reduction = _score("Risk reduction / opportunity enablement")
    job_size = _score("Job size")
    version = VersionField(required=False)  # required when editing (core.forms.require_version)

    def __init__(self, *args: Any, goals: Choices, owners: Choices, measures: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["goal"], NONE + goals)
        set_choices(self.fields["owner"], owners)
        set_choices(self.fields["measure"], NONE + measures)


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=200, label="Name")
    kind = forms.ChoiceField(choices=Experiment.Kind.choices, label="Kind")
    state = forms.ChoiceField(choices=Experiment.State.choices, label="State")
    variations = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Variations",
        help_text="One per line: NAME: ALLOCATION (the first is the control), e.g. “control: 0.5”.",
    )
    primary_metric = forms.CharField(max_length=120, required=False, label="Primary metric")
    primary_measure = forms.ChoiceField(required=False, label="Primary metric's measure")
    secondary_metrics = forms.CharField(
        required=False, label="Secondary metrics", help_text="Names, separated by commas."
    )
    guardrail_metrics = forms.CharField(
        required=False, label="Guardrail metrics", help_text="Names, separated by commas: must not get worse."
    )
    minimum_detectable_effect = forms.FloatField(
        required=False, label="Minimum detectable effect", help_text="Relative, e.g. 0.05 for 5 %."
    )
    alpha = forms.FloatField(initial=0.05, label="Significance level (alpha)")
    power = forms.FloatField(initial=0.8, label="Power")
    planned_sample_size = forms.IntegerField(required=False, min_value=1, label="Planned sample size")
    start_date = forms.DateField(
        required=False, widget=DateInput(), label="Start"
    )
    stop_date = forms.DateField(required=False, widget=DateInput(), label="Stop")
    version = VersionField(required=False)  # required when editing (core.forms.require_version)

    def __init__(self, *args: Any, measures: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["primary_measure"], NONE + measures)

    def clean_variations(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for line in str(self.cleaned_data["variations"]).splitlines():
            if not line.strip():
                continue
            name, sep, share = line.rpartition(":")
            if not sep or not name.strip():
                raise forms.ValidationError(f"“{line.strip()}” is not NAME: ALLOCATION.")
            out.append({"name": name.strip(), "allocation": share.strip()})
        return out

    def metrics(self) -> list[dict[str, Any]]:
        data = self.cleaned_data
        rows: list[dict[str, Any]] = []
        if data["primary_metric"] or data["primary_measure"]:
            rows.append(
                {
                    "role": ExperimentMetric.Role.PRIMARY,
                    "name": data["primary_metric"],
                    "measure_id": optional_int(data["primary_measure"]),
                }
            )
        for role, key in (
            (ExperimentMetric.Role.SECONDARY, "secondary_metrics"),
            (ExperimentMetric.Role.GUARDRAIL, "guardrail_metrics"),
        ):
            rows.extend({"role": role, "name": n.strip()} for n in str(data[key]).split(",") if n.strip())
        return rows


class ConcludeForm(forms.Form):
    outcome = forms.ChoiceField(choices=Decision.Outcome.choices, label="Outcome")
    decision = forms.ChoiceField(choices=Decision.Choice.choices, label="Decision")
    observed = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="We observed")
    learning = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="We learned")
    next_step = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Therefore we will"
    )
    version = VersionField()
