"""Forms of the pulse pages (the rules are in services/pulses.py and services/pulse_answers.py)."""

from __future__ import annotations

from typing import Any

from django import forms

from truenorth.core.forms import DateTimeInput, VersionField

SCALE = [(str(i), str(i)) for i in range(1, 6)]


class PulseForm(forms.Form):
    title = forms.CharField(max_length=200)
    product = forms.ChoiceField(choices=())
    cadence_days = forms.IntegerField(
        min_value=0, max_value=366, initial=30, label="Repeat every (days)", help_text="0: ask once."
    )
    open_days = forms.IntegerField(min_value=1, max_value=90, initial=7, label="Each round stays open (days)")
    next_run_at = forms.DateTimeField(
        required=False,
        widget=DateTimeInput(),
        label="Next round opens (UTC)",
        help_text="Empty: no round is scheduled.",
    )
    active = forms.BooleanField(required=False, initial=True, label="Active (rounds open on schedule)")
    all_members = forms.BooleanField(
        required=False, initial=True, label="Ask every member of the organisation"
    )
    members = forms.MultipleChoiceField(
        required=False,
        choices=(),
        label="Or only these members",
        widget=forms.SelectMultiple(attrs={"size": 6}),
    )
    include_stakeholders = forms.BooleanField(
        required=False, initial=True, label="Ask the product's stakeholders who have an e-mail address"
    )
    min_group_size = forms.IntegerField(
        min_value=1,
        label="Smallest group shown",
        help_text="Groups (and rounds) with fewer answers stay hidden, so nobody can be singled out.",
    )
    version = VersionField(required=False)

    def __init__(
        self,
        *args: Any,
        products: list[tuple[str, str]],
        members: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["product"].choices = products  # type: ignore[attr-defined]
        self.fields["members"].choices = members  # type: ignore[attr-defined]


class AnswerForm(forms.Form):
    own_words = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label="In your own words, what is our current goal?",
    )
    clarity = forms.ChoiceField(
        choices=SCALE, widget=forms.RadioSelect, label="How clear is the goal to you? (1 not at all, 5 very)"
    )
    commitment = forms.ChoiceField(
        choices=SCALE,
        widget=forms.RadioSelect,
        label="How committed are you to it? (1 not at all, 5 fully)",
    )
    contribution = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        label="How does your work contribute?",
    )
    contribution_goal = forms.ChoiceField(required=False, choices=(), label="…or pick the goal you work on")
    group = forms.ChoiceField(required=False, choices=(), label="Your team or department (for the breakdown)")

    def __init__(self, *args: Any, goals: list[tuple[str, str]], groups: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["contribution_goal"].choices = [("", "— none —"), *goals]  # type: ignore[attr-defined]
        self.fields["group"].choices = [("", "— prefer not to say —"), *((g, g) for g in groups)]  # type: ignore[attr-defined]

    def values(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "own_words": data.get("own_words", ""),
            "clarity": data.get("clarity"),
            "commitment": data.get("commitment"),
            "contribution": data.get("contribution", ""),
            "contribution_goal_id": data.get("contribution_goal") or None,
            "group": data.get("group", ""),
        }
