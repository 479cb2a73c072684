"""Issue 9 item 8 in the Validation pillar and the organisation dashboard: pages say what is true."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from truenorth.history.services import entries_for
from truenorth.hypotheses import services
from truenorth.hypotheses.models import Experiment
from truenorth.measures import services as measures
from truenorth.orgs.models import Role

SLUG = "alpha"


def _conclude(persona, h) -> None:
    services.conclude(
        persona.membership, persona.user, h.pk, outcome="inconclusive", decision="stop", learning="Too noisy."
    )


def test_concluding_a_hypothesis_stops_its_running_experiment_with_a_stop_date_in_history(
    member, testing
) -> None:
    e = testing.experiments.get()
    start = timezone.localdate() - dt.timedelta(days=14)
    Experiment.objects.filter(pk=e.pk).update(state="running", start_date=start)

    _conclude(member, testing)

    e.refresh_from_db()
    assert e.state == "stopped"
    assert e.stop_date == timezone.localdate()
    assert e.version == 2
    entry = entries_for(member.membership.organisation, e).first()
    assert entry is not None
    changes = entry.changes
    assert changes["state"] == {"old": "running", "new": "stopped"}
    assert changes["stop_date"] == {"old": None, "new": timezone.localdate().isoformat()}


def test_concluding_keeps_an_earlier_stop_date_and_leaves_planned_experiments_alone(member, testing) -> None:
    e = testing.experiments.get()
    earlier = timezone.localdate() - dt.timedelta(days=2)
    Experiment.objects.filter(pk=e.pk).update(
        state="running", start_date=earlier - dt.timedelta(days=7), stop_date=earlier
    )
    _conclude(member, testing)
    e.refresh_from_db()
    assert (e.state, e.stop_date) == ("stopped", earlier)


def test_the_sample_ratio_banner_writes_a_tiny_p_value_as_its_sentence_does(member, testing) -> None:
    e = testing.experiments.get()
    services.store_snapshot(
        e,
        method="frequentist",
        inputs={},
        results={"srm": {"mismatch": True, "p_value": 7.4e-45, "units": {"control": 1000, "one_tap": 700}}},
    )
    html = member.client.get(reverse("hypotheses:results", args=[SLUG, e.pk])).content.decode()
    assert 'data-testid="srm-warning">Sample ratio mismatch (p &lt; 0.0001)' in html
    assert "0.0000" not in html


def test_opening_the_conclude_address_shows_a_page_that_leads_back_to_the_form(member, testing) -> None:
    response = member.client.get(reverse("hypotheses:conclude", args=[SLUG, testing.pk]))
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    html = response.content.decode()
    assert "This address is not a page" in html
    assert f'href="/o/{SLUG}/hypotheses/{testing.pk}/"' in html
    assert "<nav" in html  # the site's own layout, not a blank page


def test_a_wrong_method_on_the_api_still_answers_json(owner) -> None:
    response = owner.api().delete("/api/v1/orgs")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")


def test_the_organisation_dashboard_shows_the_value_and_validation_pillars_as_they_are(
    owner, member, product, measure, testing
) -> None:
    measures.add_observation(
        owner.membership, owner.user, measure.pk, 29.4, observed_at="2026-01-05T09:00:00Z"
    )
    Experiment.objects.filter(hypothesis=testing).update(state="running")
    second = services.create_hypothesis(
        member.membership,
        member.user,
        product.pk,
        title="Offline maps",
        metric_name="Saves",
        baseline=1,
        target=2,
    )
    assert second.state == "draft"

    html = owner.client.get(reverse("home:dashboard", args=[SLUG])).content.decode()

    assert "No measures yet" not in html and "No hypotheses yet" not in html
    value = html.split('data-testid="value-card"')[1].split("</article>")[0]
    assert "<strong>1</strong> measure" in value
    assert f'href="/o/{SLUG}/products/{product.pk}/value/">Trail App</a>' in value
    assert "Weekly planners</a> 29.4 on" in value
    validation = html.split('data-testid="validation-card"')[1].split("</article>")[0]
    assert "<strong>2</strong> hypotheses: 1 draft, 1 testing · 1 experiment running" in validation
    assert f'href="/o/{SLUG}/products/{product.pk}/hypotheses/">Trail App</a>' in validation
    assert "No decisions yet." in validation

    _conclude(member, testing)
    html = owner.client.get(reverse("home:dashboard", args=[SLUG])).content.decode()
    validation = html.split('data-testid="validation-card"')[1].split("</article>")[0]
    assert "1 draft, 1 concluded" in validation and "running" not in validation
    assert "Latest decision:" in validation and "inconclusive, stop" in validation


def test_a_stakeholder_sees_the_same_pillar_cards(stakeholder, measure, testing) -> None:
    assert stakeholder.membership.role == Role.STAKEHOLDER
    html = stakeholder.client.get(reverse("home:dashboard", args=[SLUG])).content.decode()
    assert "<strong>1</strong> measure" in html and "<strong>1</strong> hypothesis: 1 testing" in html
