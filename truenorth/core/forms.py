"""Form pieces shared by the apps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms

MISSING_VERSION = (
    "This form was sent without the version of what it edits, so it could overwrite someone else's "
    "change: reload the page and apply your change again."
)


class DateInput(forms.DateInput):
    """`<input type="date">`, rendered as ISO `2027-03-31`: the only value a browser's date input accepts.
    Django's default renders the active locale's format (`31/03/2027` under en-gb), which the browser
    rejects and shows empty, so saving an unchanged form used to erase the date."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class DateTimeInput(forms.DateTimeInput):
    """`<input type="datetime-local">`, rendered as `2027-03-31T09:30` (the browser's only format)."""

    input_type = "datetime-local"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class VersionField(forms.IntegerField):
    """The hidden, required `version` of the object a form edits (optimistic concurrency): the service
    refuses a stale one with 409, and a form sent without it is a form error, never a silent overwrite."""

    widget = forms.HiddenInput
    default_error_messages = dict.fromkeys(("required", "invalid", "min_value", "max_value"), MISSING_VERSION)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**31 - 1)
        super().__init__(**kwargs)


def require_version(form: forms.Form) -> None:
    """For a form shared by "create" (no version yet) and "edit": editing needs the version."""
    form.fields["version"].required = True


def posted_version(data: Any) -> int | None:
    """The `version` a button form (archive, remove, a board move) sent, or None when it is missing or
    not a version: the view then refuses with MISSING_VERSION instead of writing over newer changes."""
    field = VersionField()
    try:
        value = field.clean(data.get("version"))
    except forms.ValidationError:
        return None
    return int(value)


# --- choices shared by every app's forms ---------------------------------------------------------

Choices = list[tuple[str, str]]
NOBODY: Choices = [("", "— nobody yet —")]


def owner_choices(memberships: Iterable[Any]) -> Choices:
    """Members who may own work (stakeholders cannot), from orgs.services.members_of (any app's owner field)."""
    return NOBODY + [
        (str(m.user_id), f"{m.user.display_name} <{m.user.email}>") for m in memberships if m.can_write
    ]


def set_choices(field: forms.Field, choices: Choices) -> None:
    """Set a choice field's options (typed: forms.Field has no `choices`)."""
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


def optional_int(value: str | None) -> int | None:
    """A select's value as an id, or None for the empty choice."""
    return int(value) if value not in (None, "") else None
