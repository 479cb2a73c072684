"""Goal targets that track a Value measure: progress from the measure's current observations, lint's
stale-evidence rule, and fixed query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.measures import services as ms
from truenorth.strategy import services as ss
from truenorth.strategy.models import TargetMeasure


@pytest.fixture
def setup(owner, member):
    m = member.membership
    product = ss.create_product(m, member.user, name="Atlas")
    measure = ms.create_measure(
        m, member.user, name="Active users", kva="current_value", product_id=product.pk, cadence_days=7
    )
    goal = ss.create_goal(
        m,
        member.user,
        product_id=product.pk,
        title="Grow",
        outcome="More teams plan their work with Atlas every week",
        owner_id=member.user.pk,
        target_date="2027-01-01",
        targets=[{"name": "users", "baseline": 100, "target": 200}],
    )
    target = goal.targets.get()
    return m, member.user, measure, goal, target


def progress_of(m, goal):
    return ss.progress_for_org(m.organisation_id)[goal.pk].value


def test_progress_comes_from_the_linked_measure(setup):
    m, user, measure, goal, target = setup
    ss.record_observation(m, user, target.pk, 190)  # its own value: used while unlinked
    assert progress_of(m, goal) == pytest.approx(0.9)
    ms.link_target(m, user, target.pk, measure.pk)
    assert progress_of(m, goal) is None  # the measure has no observation yet
    now = timezone.now()
    ms.add_observation(m, user, measure.pk, 130, observed_at=now - dt.timedelta(days=2))
    old = ms.add_observation(m, user, measure.pk, 140, observed_at=now - dt.timedelta(days=1))
    assert progress_of(m, goal) == pytest.approx(0.4)
    ms.correct_observation(m, user, old.pk, 150)  # the correction counts, not the superseded value
    assert progress_of(m, goal) == pytest.approx(0.5)
    ms.link_target(m, user, target.pk, None)
    assert progress_of(m, goal) == pytest.approx(0.9)


def test_link_target_checks_the_organisation(setup, outsider):
    m, user, _, _, target = setup
    theirs = ms.create_measure(outsider.membership, outsider.user, name="Secret", kva="current_value")
    with pytest.raises(ValidationFailed) as exc:
        ms.link_target(m, user, target.pk, theirs.pk)
    assert exc.value.field == "measure"
    with pytest.raises(NotFound):
        ms.link_target(outsider.membership, outsider.user, target.pk, theirs.pk)


def rules(m, goal):
    return [f.rule for g, f in ss.lint(m, goal_id=goal.pk) if g.pk == goal.pk]


def test_lint_flags_a_stale_linked_measure(setup):
    m, user, measure, goal, target = setup
    assert "stale-evidence" not in rules(m, goal)  # a target of its own is never stale
    ms.link_target(m, user, target.pk, measure.pk)
    assert "stale-evidence" in rules(m, goal)  # no observation at all
    ms.add_observation(m, user, measure.pk, 120, observed_at=timezone.now() - dt.timedelta(days=8))
    assert "stale-evidence" in rules(m, goal)  # older than the 7-day cadence
    ms.add_observation(m, user, measure.pk, 125, observed_at=timezone.now() - dt.timedelta(days=1))
    assert "stale-evidence" not in rules(m, goal)


def test_query_counts_do_not_grow_with_goals(setup):
    m, user, measure, _, target = setup
    ms.link_target(m, user, target.pk, measure.pk)

    def count(fn):
        with CaptureQueriesContext(connection) as ctx:
            fn()
        return len(ctx.captured_queries)

    before = (count(lambda: ss.progress_for_org(m.organisation_id)), count(lambda: ss.lint(m)))
    for i in range(5):
        other = ms.create_measure(m, user, name=f"M{i}", kva="time_to_market", cadence_days=1)
        ms.add_observation(m, user, other.pk, i, observed_at=timezone.now() - dt.timedelta(days=3))
        g = ss.create_goal(m, user, title=f"G{i}", targets=[{"name": "x", "baseline": 0, "target": 10}])
        ms.link_target(m, user, g.targets.get().pk, other.pk)
        TargetMeasure.objects.create(goal=g, name="own", baseline=0, target=1)
    after = (count(lambda: ss.progress_for_org(m.organisation_id)), count(lambda: ss.lint(m)))
    assert after == before
    assert sum(f.rule == "stale-evidence" for _, f in ss.lint(m)) == 6


@pytest.mark.django_db
def test_a_check_in_value_for_a_linked_target_goes_to_the_measure(owner):
    m, u = owner.membership, owner.user
    product = ss.create_product(m, u, name="Linked")
    goal = ss.create_goal(
        m,
        u,
        product_id=product.pk,
        title="Linked goal",
        owner_id=u.pk,
        status="active",
        targets=[{"name": "Planners", "baseline": 0, "target": 100}],
    )
    target = goal.targets.get()
    measure = ms.create_measure(m, u, name="Planners", kva="current_value", product_id=product.pk)
    ms.link_target(m, u, target.pk, measure.pk)
    with pytest.raises(ValidationFailed) as exc:
        ss.record_observation(m, u, target.pk, 5)
    assert exc.value.field == "target"
    ss.check_in(m, u, goal.pk, status="on_track", confidence=6, target_id=target.pk, value=40)
    assert list(ms.observations_of(m, measure.pk).values_list("value", flat=True)) == [40]
    assert ss.progress_for_org(m.organisation_id)[goal.pk].value == pytest.approx(0.4)
