"""Shared field validators: each error names its field."""

from __future__ import annotations

import pytest

from truenorth.core import validate
from truenorth.core.errors import ValidationFailed


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: validate.text("a\x00b", "title"), "title"),
        (lambda: validate.text("  ", "title", required=True), "title"),
        (lambda: validate.number("nan", "value"), "value"),
        (lambda: validate.whole(7.5, "confidence"), "confidence"),
        (lambda: validate.date("31/01/2026", "target_date"), "target_date"),
        (lambda: validate.choice("x", ["a", "b"], "kind"), "kind"),
    ],
)
def test_bad_values_name_their_field(call, field):
    with pytest.raises(ValidationFailed) as exc:
        call()
    assert exc.value.field == field


def test_good_values_come_back_clean():
    assert validate.text("  Grow  ", "title") == "Grow"
    assert validate.optional_number("", "baseline") is None
    assert validate.number("2.5", "value") == 2.5
    assert validate.whole("7.0", "confidence") == 7
