"""Alignment health check: facts gathered from every pillar in a fixed number of queries, saved
assessments and the trend, the page, the API, the CLI and the weekly save."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from typer.testing import CliRunner

from truenorth.cli import app, main
from truenorth.core.errors import Forbidden
from truenorth.engagement.models import HealthAssessment, HealthAssessmentError
from truenorth.engagement.services import health as services
from truenorth.hypotheses.models import Decision, Experiment, Hypothesis, ResultSnapshot
from truenorth.measures.models import Measure, Observation
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Product, WorkItem

if TYPE_CHECKING:
    from conftest import Persona


def _srm(units: dict[str, int], mismatch: bool = False, p: float | None = 0.5) -> dict[str, object]:
    return {"srm": {"units": units, "planned": {}, "p_value": p, "mismatch": mismatch}}


def _grow(owner: Persona, n: int) -> Product:
    """One product holding n of everything the facts count (and one of each kind judged)."""
    m = owner.membership
    assert m is not None
    product = strategy.create_product(m, owner.user, name=f"Product {Product.objects.count()}")
    for i in range(n):
        strategy.create_goal(
            m,
            owner.user,
            title=f"Goal {product.pk}-{i}",
            product_id=product.pk,
            status="active",
            owner_id=owner.user.pk if i % 2 else None,
            targets=[{"name": "Users", "baseline": 0, "target": 10}] if i % 2 else [],
        )
    fresh = Measure.objects.create(
        organisation=m.organisation, product=product, name="Fresh", kva="current_value"
    )
    Observation.objects.create(measure=fresh, value=1, observed_at=timezone.now())
    Measure.objects.bulk_create(
        [
            Measure(organisation=m.organisation, product=product, name=f"Stale {i}", kva="time_to_market")
            for i in range(n)
        ]
    )
    WorkItem.objects.bulk_create(
        [WorkItem(organisation=m.organisation, product=product, title=f"Work {i}") for i in range(n)]
    )
    hypotheses = Hypothesis.objects.bulk_create(
        [
            Hypothesis(organisation=m.organisation, product=product, title=f"H{i}", state="concluded")
            for i in range(n)
        ]
    )
    Decision.objects.create(hypothesis=hypotheses[0], outcome="validated", decision="persevere", learning="x")
    for i, h in enumerate(hypotheses):
        e = Experiment.objects.create(hypothesis=h, name=f"E{i}", planned_sample_size=1000)
        ResultSnapshot.objects.create(experiment=e, method="t", results=_srm({"a": 400, "b": 400}))
        ResultSnapshot.objects.create(experiment=e, method="t", results=_srm({"a": 600, "b": 600 - i}))
    return product


def test_facts_come_from_every_pillar(owner: Persona) -> None:
    assert owner.membership is not None
    _grow(owner, 4)
    facts = services.gather_facts(owner.membership)
    assert (facts.active_goals, facts.goals_with_target, facts.goals_with_owner, facts.goals_with_date) == (
        4,
        2,
        2,
        0,
    )
    assert (facts.kva_cells, facts.kva_cells_fresh, facts.measures, facts.stale_measures) == (4, 1, 5, 4)
    assert (facts.work_items, facts.work_items_linked) == (4, 0)
    assert (facts.concluded_hypotheses, facts.concluded_with_decision) == (4, 1)
    # The latest computed result of each: 1200 units of a planned 1000 pass, 1199, 1198, 1197 too.
    assert (facts.judged_experiments, facts.trustworthy_experiments) == (4, 4)
    assert facts.overdue_checkins == 0


def test_experiments_judged_on_srm_and_sample(owner: Persona) -> None:
    m = owner.membership
    assert m is not None
    product = strategy.create_product(m, owner.user, name="P")
    h = Hypothesis.objects.create(organisation=m.organisation, product=product, title="H")
    cases = [
        (None, _srm({"a": 150, "b": 150}), True),  # no plan: at least 100 per variation
        (None, _srm({"a": 50, "b": 60}), False),
        (1000, _srm({"a": 400, "b": 400}), False),  # short of the plan
        (100, _srm({"a": 400, "b": 300}, mismatch=True, p=0.0001), False),
        (100, _srm({"a": 400, "b": 400}, p=None), False),  # SRM not computable
    ]
    for i, (planned, results, _) in enumerate(cases):
        e = Experiment.objects.create(hypothesis=h, name=f"E{i}", planned_sample_size=planned)
        ResultSnapshot.objects.create(experiment=e, method="t", results=results)
        ResultSnapshot.objects.create(
            experiment=e, method="t", results=_srm({"a": 9999, "b": 9999}), kind="imported"
        )
    Experiment.objects.create(hypothesis=h, name="No results yet")
    facts = services.gather_facts(m)
    assert (facts.judged_experiments, facts.trustworthy_experiments) == (5, 1)


def test_facts_gathering_keeps_a_fixed_query_count(owner: Persona) -> None:
    assert owner.membership is not None
    _grow(owner, 2)
    with CaptureQueriesContext(connection) as few:
        services.gather_facts(owner.membership)
    _grow(owner, 12)
    _grow(owner, 3)
    with CaptureQueriesContext(connection) as many:
        services.gather_facts(owner.membership)
    assert len(few) == len(many), "\n".join(q["sql"] for q in many.captured_queries)
    assert len(many) <= 12


def test_saved_assessments_give_the_trend(owner: Persona) -> None:
    m = owner.membership
    assert m is not None
    strategy.create_goal(m, owner.user, title="Undated", status="active")
    old = services.save_assessment(m, owner.user, now=timezone.now() - dt.timedelta(days=30))
    assert (
        old.scores["vision"] is not None
        and old.next_steps
        and old.next_steps[0]["url"].startswith("/o/alpha/")
    )
    assert old.facts["active_goals"] == 1
    strategy.create_goal(
        m, owner.user, title="Dated", status="active", target_date="2030-01-01", owner_id=owner.user.pk
    )
    check = services.current(m)
    assert check.previous == old
    assert check.trend["vision"] == check.scores["vision"] - old.scores["vision"] != 0
    with pytest.raises(HealthAssessmentError):
        old.save()
    with pytest.raises(HealthAssessmentError):
        HealthAssessment.objects.filter(pk=old.pk).update(scores={})
    with pytest.raises(HealthAssessmentError):
        HealthAssessment.objects.filter(pk=old.pk).delete()
    with pytest.raises(HealthAssessmentError):
        old.delete()


def test_stakeholders_cannot_save(stakeholder: Persona) -> None:
    assert stakeholder.membership is not None
    with pytest.raises(Forbidden):
        services.save_assessment(stakeholder.membership, stakeholder.user)


def test_the_page_runs_and_shows_an_assessment(
    owner: Persona, stakeholder: Persona, outsider: Persona
) -> None:
    assert owner.membership is not None
    strategy.create_goal(owner.membership, owner.user, title="Unowned", status="active")
    page = owner.client.get("/o/alpha/health-check/").content.decode()
    assert "no saved assessment yet" in page and "Name an owner for 1 active goal." in page
    response = owner.client.post("/o/alpha/health-check/run/")
    assert response.status_code == 302 and HealthAssessment.objects.count() == 1
    page = owner.client.get("/o/alpha/health-check/").content.decode()
    assert "unchanged since the assessment of" in page
    assert stakeholder.client.post("/o/alpha/health-check/run/").status_code == 403
    assert 'data-testid="health-run"' not in stakeholder.client.get("/o/alpha/health-check/").content.decode()
    assert outsider.client.get("/o/alpha/health-check/").status_code == 404
    assert owner.client.get("/o/alpha/health-check/run/").status_code == 405


def test_api(owner: Persona, stakeholder: Persona, outsider: Persona) -> None:
    api = owner.api()
    current = api.get("/api/v1/orgs/alpha/health-check").json()
    assert set(current["scores"]) == {"overall", "vision", "value", "validation", "engagement"}
    assert current["previous_at"] is None and len(current["rules"]) == 14
    saved = api.post("/api/v1/orgs/alpha/health-check")
    assert saved.status_code == 201 and saved.json()["created_by"] == owner.user.email
    listed = api.get("/api/v1/orgs/alpha/health-check/assessments").json()
    assert [a["id"] for a in listed] == [saved.json()["id"]]
    assert api.get("/api/v1/orgs/alpha/health-check").json()["previous_at"] is not None
    assert stakeholder.api().post("/api/v1/orgs/alpha/health-check").status_code == 403
    assert owner.api_read().post("/api/v1/orgs/alpha/health-check").status_code == 403
    assert outsider.api().get("/api/v1/orgs/alpha/health-check").status_code == 404
    assert outsider.api().get("/api/v1/orgs/alpha/health-check/assessments").status_code == 404
    assert api.get("/api/v1/orgs/alpha/health-check/assessments", {"limit": 0}).status_code == 422


def test_cli(owner: Persona, stakeholder: Persona) -> None:
    result = CliRunner().invoke(
        app, ["health", "--org", "alpha", "--as", owner.user.email, "--save", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["saved"] is True and data["previous_at"] is not None
    table = CliRunner().invoke(app, ["health", "--org", "alpha", "--as", owner.user.email])
    assert table.exit_code == 0 and "Alignment health check" in table.output
    assert main(["health", "--org", "alpha", "--as", stakeholder.user.email, "--save"]) == 2
    assert main(["health", "--org", "nowhere", "--as", owner.user.email]) == 2


def test_weekly_save(owner: Persona, outsider: Persona) -> None:
    assert services.save_weekly() == 2  # organisation A and B
    assert services.save_weekly() == 0
    later = timezone.now() + dt.timedelta(days=8)
    assert services.save_weekly(now=later) == 2
    assert HealthAssessment.objects.filter(created_by__isnull=True).count() == 4
