"""Issue 9 item 8: numbers, p-values, history values and dates read the same, sane way everywhere."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.urls import reverse

from truenorth.core import validate
from truenorth.core.errors import ValidationFailed
from truenorth.core.templatetags.present import format_number, humanise
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.measures import services as measures
from truenorth.measures.models import Observation
from truenorth.strategy import services as strategy
from truenorth.strategy.models import TargetObservation

SLUG = "alpha"


def _render(text: str, **context: object) -> str:
    return Template(text).render(Context(context))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (29.4, "29.4"),
        (28.0, "28"),
        (28, "28"),
        (0.0, "0"),
        (-0.0, "0"),
        (1234.56789, "1234.5679"),
        (0.012345, "0.01235"),
        (-3.5, "-3.5"),
        (1e-9, "1e-09"),
        (None, ""),
    ],
)
def test_numbers_have_no_trailing_zeros_and_a_sensible_precision(value: object, shown: str) -> None:
    assert format_number(value) == shown


def test_every_template_has_the_number_and_p_value_filters_without_loading_them() -> None:
    assert _render("{{ a|num }} next to {{ b|num }}", a=29.4, b=28) == "29.4 next to 28"
    assert _render("{{ p|p_value }}", p=7.4e-45) == "p &lt; 0.0001"
    assert _render("{{ p|p_value }}", p=0.0368) == "p = 0.0368"


def test_history_values_read_as_words_not_python() -> None:
    assert humanise(["Checkout Squad"]) == "Checkout Squad"
    assert humanise(["Checkout Squad", "Search"]) == "Checkout Squad, Search"
    assert (
        humanise({"title": "Faster checkout", "target_date": None})
        == "title: Faster checkout; target date: —"
    )
    assert humanise(None) == "—"
    assert humanise(True) == "yes"
    assert humanise(29.4000) == "29.4"


def test_the_history_table_shows_a_list_of_teams_without_brackets(owner) -> None:
    product = strategy.create_product(owner.membership, owner.user, name="Shop")
    goal = strategy.create_goal(owner.membership, owner.user, title="Faster checkout", product_id=product.pk)
    record(
        owner.membership.organisation,
        goal,
        owner.user,
        HistoryEntry.Action.UPDATED,
        {"teams": {"old": [], "new": ["Checkout Squad"]}},
    )
    html = owner.client.get(reverse("strategy:goal", args=[SLUG, goal.pk])).content.decode()
    assert "<strong>teams</strong>: — → Checkout Squad</div>" in html
    assert "[&#x27;Checkout Squad&#x27;]" not in html and "['Checkout Squad']" not in html


def test_the_goal_history_shows_proposals_and_the_reasons_given(owner, stakeholder) -> None:
    product = strategy.create_product(owner.membership, owner.user, name="Shop")
    goal = strategy.create_goal(owner.membership, owner.user, title="Faster checkout", product_id=product.pk)
    rejected = strategy.propose_change(
        stakeholder.membership,
        stakeholder.user,
        goal.pk,
        {"title": "Instant checkout"},
        "Customers ask for it.",
    )
    strategy.decide_proposal(
        owner.membership, owner.user, rejected.pk, accept=False, reason="Not feasible this year."
    )
    accepted = strategy.propose_change(
        stakeholder.membership, stakeholder.user, goal.pk, {"title": "Checkout in one minute"}, "Measurable."
    )
    strategy.decide_proposal(owner.membership, owner.user, accepted.pk, accept=True, reason="Agreed.")

    html = owner.client.get(reverse("strategy:goal", args=[SLUG, goal.pk])).content.decode()
    history = html.split('<table class="history">')[1].split("</table>")[0]
    assert "title: Instant checkout" in history
    assert "Customers ask for it." in history
    assert "<strong>state</strong>: open → rejected" in history
    assert "Not feasible this year." in history
    assert "<strong>state</strong>: open → accepted" in history and "Agreed." in history
    assert "<strong>title</strong>: Faster checkout → Checkout in one minute" in history  # the field change


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "2201-01-01"])
def test_dates_outside_the_sane_window_are_refused_naming_the_field(day: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        validate.date(day, "target_date")
    assert exc.value.field == "target_date"
    assert "Target date must be between 1900-01-01 and 2200-12-31" in exc.value.message


def test_dates_inside_the_window_are_kept() -> None:
    assert validate.date("1900-01-01", "by_date") == dt.date(1900, 1, 1)
    assert validate.date("2200-12-31", "by_date") == dt.date(2200, 12, 31)


def test_an_observation_dated_year_one_is_refused_and_nothing_is_stored(owner) -> None:
    m = measures.create_measure(owner.membership, owner.user, name="Revenue", kva="current_value")
    with pytest.raises(ValidationFailed) as exc:
        measures.add_observation(owner.membership, owner.user, m.pk, 5, observed_at="0001-01-01")
    assert exc.value.field == "observed_at" or "observed_at" in str(exc.value.errors)
    assert "on or after 1900-01-01" in str(exc.value.message) + str(exc.value.errors)
    assert not Observation.objects.filter(measure=m).exists()


def test_the_api_refuses_an_observation_dated_year_one_with_the_field_named(owner) -> None:
    m = measures.create_measure(owner.membership, owner.user, name="Revenue", kva="current_value")
    response = owner.api().post(
        f"/api/v1/orgs/{SLUG}/measures/{m.pk}/observations",
        {"value": 5, "observed_at": "0001-01-01T00:00:00Z"},
        content_type="application/json",
    )
    assert response.status_code == 422, response.content
    assert "observed_at" in response.content.decode()
    assert "1900-01-01" in response.content.decode()
    assert not Observation.objects.filter(measure=m).exists()


def test_a_goal_target_observation_before_1900_is_refused(owner) -> None:
    goal = strategy.create_goal(
        owner.membership,
        owner.user,
        title="Happy hikers",
        targets=[{"name": "NPS", "baseline": 0, "target": 50}],
    )
    target = goal.targets.get()
    with pytest.raises(ValidationFailed) as exc:
        strategy.record_observation(
            owner.membership, owner.user, target.pk, 3, observed_at=dt.datetime(1, 1, 1, tzinfo=dt.UTC)
        )
    assert exc.value.field == "observed_at"
    assert not TargetObservation.objects.filter(target_measure=target).exists()


def test_the_value_dashboard_selector_shows_the_period_the_page_uses(owner) -> None:
    product = strategy.create_product(owner.membership, owner.user, name="Shop")
    url = reverse("measures:dashboard", args=[SLUG, product.pk])
    for query in ("", "?since=2026-01-01"):
        html = owner.client.get(url + query).content.decode()
        assert "(90 days)" in html
        assert '<option value="90" selected>Last 90 days</option>' in html
        assert '<option value="30" selected>' not in html
    html = owner.client.get(url + "?period=30").content.decode()
    assert "(30 days)" in html and '<option value="30" selected>Last 30 days</option>' in html
