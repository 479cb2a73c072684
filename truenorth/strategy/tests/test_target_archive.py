"""Removing a target measure archives it: its observed values are evidence and are kept (issue 8,
item 7). Before, any member's DELETE destroyed every TargetObservation of the target by cascade."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from truenorth.strategy import services
from truenorth.strategy.models import TargetMeasure, TargetObservation

BASE = "/api/v1/orgs/alpha"


def _post(client: Any, path: str, data: Any) -> Any:
    return client.post(path, json.dumps(data), content_type="application/json")


@pytest.fixture
def goal(owner):
    product = services.create_product(owner.membership, owner.user, name="Webshop")
    return services.create_goal(
        owner.membership,
        owner.user,
        title="Grow",
        product_id=product.pk,
        targets=[
            {"name": "Conversion", "baseline": 0, "target": 10},
            {"name": "Orders", "baseline": 0, "target": 100},
        ],
    )


def _observe(member, target: TargetMeasure, *values: float) -> None:
    for days, value in enumerate(values, start=1):
        when = timezone.now() - dt.timedelta(days=10 - days)
        services.record_observation(member.membership, member.user, target.pk, value, observed_at=when)


def test_deleting_a_target_measure_through_the_api_keeps_its_observations(member, goal):
    conversion, orders = goal.targets.all()
    _observe(member, conversion, 2, 4, 6)
    _observe(member, orders, 50)
    response = member.api().delete(f"{BASE}/targets/{conversion.pk}?version={goal.version}")
    assert response.status_code == 204, response.content
    assert TargetObservation.objects.filter(target_measure_id=conversion.pk).count() == 3
    archived = TargetMeasure.all_objects.get(pk=conversion.pk)
    assert archived.archived_at is not None
    # Hidden from the goal and its progress: only the remaining target counts.
    detail = member.api().get(f"{BASE}/goals/{goal.pk}").json()
    assert [t["name"] for t in detail["targets"]] == ["Orders"]
    assert detail["measured"] == pytest.approx(0.5)


def test_the_history_shows_the_archive_with_the_values_kept(member, goal):
    conversion = goal.targets.first()
    _observe(member, conversion, 2, 4)
    assert member.api().delete(f"{BASE}/targets/{conversion.pk}?version={goal.version}").status_code == 204
    on_goal = member.api().get(f"{BASE}/history?object_type=strategy.goal&object_id={goal.pk}").json()
    assert on_goal[0]["changes"]["targets"] == {
        "old": "Conversion: 0 → 10 (↑)",
        "new": "archived: Conversion: 0 → 10 (↑) (2 observed values kept)",
    }
    on_target = member.api().get(
        f"{BASE}/history?object_type=strategy.targetmeasure&object_id={conversion.pk}"
    ).json()
    assert [e["action"] for e in on_target] == ["archived"]
    assert on_target[0]["actor"] == member.user.email


def test_an_archived_target_takes_no_new_values_and_cannot_be_removed_twice(member, goal):
    conversion = goal.targets.first()
    assert member.api().delete(f"{BASE}/targets/{conversion.pk}?version={goal.version}").status_code == 204
    assert _post(member.api(), f"{BASE}/targets/{conversion.pk}/observations", {"value": 1}).status_code == 404
    assert member.api().delete(f"{BASE}/targets/{conversion.pk}?version={goal.version + 1}").status_code == 404


def test_removing_a_target_on_the_goal_page_keeps_its_observations(member, goal):
    conversion = goal.targets.first()
    _observe(member, conversion, 3)
    response = member.client.post(
        f"/o/alpha/goals/{goal.pk}/targets/{conversion.pk}/remove/", {"version": goal.version}
    )
    assert response.status_code == 302
    assert TargetObservation.objects.filter(target_measure_id=conversion.pk).count() == 1
    assert not goal.targets.filter(pk=conversion.pk).exists()
