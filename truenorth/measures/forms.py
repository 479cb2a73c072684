"""Value forms: they parse and type the input; every rule is checked again by measures.services.

Field names follow the services' error fields (name, kva, value, observed_at, ...), so a service error
lands on the field the person typed into (see orgs.access.apply_error).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone

from truenorth.core.forms import Choices, DateInput, DateTimeInput, set_choices
from truenorth.measures.models import KVA, MeasureDirection

# The previewed file travels back in the confirming form, base64-encoded (4/3 of its size), in the page:
# kept small. Larger files (up to TRUENORTH_IMPORT_MAX_FILE_BYTES): the API or `truenorth measure import`.
MAX_UPLOAD_BYTES = 1_500_000
EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2200, 12, 31)
PERIODS: Choices = [
    ("30", "Last 30 days"),
    ("90", "Last 90 days"),
    ("180", "Last 6 months"),
    ("365", "Last 12 months"),
    ("custom", "Custom dates"),
]
DEFAULT_PERIOD = "90"


class MeasureForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name")
    kva = forms.ChoiceField(choices=KVA.choices, label="Key Value Area")
    unit = forms.CharField(max_length=30, required=False, label="Unit", help_text="e.g. %, days, EUR.")
    direction = forms.ChoiceField(choices=MeasureDirection.choices, label="Direction")
    owner = forms.ChoiceField(required=False, label="Owner")
    cadence_days = forms.IntegerField(
        min_value=1,
        max_value=3660,
        initial=30,
        label="Cadence (days)",
        help_text="Expected days between observations.",
    )
    baseline = forms.FloatField(required=False, label="Baseline")
    target = forms.FloatField(required=False, label="Target")
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=5000,
        label="How it is measured",
    )

    def __init__(self, *args: Any, owners: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["owner"], owners)


class AdoptForm(forms.Form):
    """Adopt a catalogue measure into one product."""

    catalogue_id = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    product_id = forms.ChoiceField(label="Product")

    def __init__(self, *args: Any, products: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["product_id"], products)


class ObservationForm(forms.Form):
    value = forms.FloatField(label="Value")
    observed_at = forms.DateTimeField(
        required=False,
        label="Observed at",
        help_text="Empty: now.",
        widget=DateTimeInput(),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
    )
    note = forms.CharField(max_length=500, required=False, label="Note")

    def clean_value(self) -> float:
        value = self.cleaned_data["value"]
        if value != value or value in (float("inf"), float("-inf")):
            raise forms.ValidationError("Enter a finite number.")
        return float(value)


class CorrectionForm(forms.Form):
    value = forms.FloatField(label="Corrected value")
    note = forms.CharField(max_length=500, required=False, label="Why it is corrected")


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV or Excel file",
        help_text="Columns: measure, observed_at, value and optionally note; one row per observation.",
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_UPLOAD_BYTES / 1e6:g} MB: import it through the API or with "
                "`truenorth measure import FILE` instead.",
                code="too_large",
            )
        name = upload.name.lower()
        if not name.endswith((".csv", ".txt", ".xlsx")):
            raise forms.ValidationError("Upload a .csv or .xlsx file.")
        return upload


class ConfirmImportForm(forms.Form):
    """The previewed file, carried to the confirming request (re-checked in full by the service)."""

    filename = forms.CharField(max_length=255, widget=forms.HiddenInput)
    content = forms.CharField(widget=forms.HiddenInput, max_length=MAX_UPLOAD_BYTES * 2)
    idempotency_key = forms.CharField(max_length=200, widget=forms.HiddenInput)


class PeriodForm(forms.Form):
    """The selector shows the period the page uses: DEFAULT_PERIOD when none is chosen (one source)."""

    period = forms.ChoiceField(choices=PERIODS, required=False, initial=DEFAULT_PERIOD, label="Period")
    since = forms.DateField(required=False, label="From", widget=DateInput())
    until = forms.DateField(required=False, label="To", widget=DateInput())

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        for name, day in (("since", since), ("until", until)):
            if day is not None and not EARLIEST <= day <= LATEST:
                self.add_error(name, f"Choose a date between {EARLIEST.year} and {LATEST.year}.")
                data[name] = None
        since, until = data.get("since"), data.get("until")
        if data.get("period") == "custom":
            if since is None:
                self.add_error("since", "Choose the first day of the period.")
            if since and until and until < since:
                self.add_error("until", "The end of the period is before its start.")
        return data

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        if data is not None and not data.get("period"):
            data = data.copy()
            data["period"] = DEFAULT_PERIOD
        super().__init__(data, *args, **kwargs)

    def window(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """[since, until] of the chosen period; the default when the form is unbound or invalid."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        period = data.get("period") or DEFAULT_PERIOD
        if period == "custom":
            tz = timezone.get_current_timezone()
            since = dt.datetime.combine(data["since"], dt.time.min, tzinfo=tz)
            end = data.get("until")
            until = dt.datetime.combine(end, dt.time.max, tzinfo=tz) if end else now
            return since, until
        return now - dt.timedelta(days=int(period)), now


class InvestmentForm(forms.Form):
    period_start = forms.DateField(label="From", widget=DateInput())
    period_end = forms.DateField(label="To", widget=DateInput())
    amount = forms.FloatField(
        required=False, min_value=0, label="Amount", help_text="Or people and rate below."
    )
    people = forms.FloatField(required=False, min_value=0, label="People")
    daily_rate = forms.FloatField(required=False, min_value=0, label="Daily rate per person")
    currency = forms.CharField(max_length=3, initial="EUR", label="Currency")
    goal = forms.ChoiceField(required=False, label="Goal (optional)")
    note = forms.CharField(max_length=500, required=False, label="Note")

    def __init__(self, *args: Any, goals: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["goal"], [("", "— the whole product —"), *goals])


class ValueMeasureForm(forms.Form):
    measure = forms.ChoiceField(required=False, label="Value measure")

    def __init__(self, *args: Any, measures: Choices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_choices(self.fields["measure"], [("", "— none —"), *measures])
