"""The Vision part of the demo: two products serving one organisation goal, three-level trees, and the
life around them (check-ins, comments, proposals, endorsements, concerns, work items); loaded twice
without duplicates."""

from __future__ import annotations

import pytest

from truenorth.demo import DEMO_USERS, ORG_GOAL, load_demo
from truenorth.history.models import HistoryEntry
from truenorth.notifications.models import Notification
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy import services
from truenorth.strategy.models import (
    ChangeProposal,
    CheckIn,
    Comment,
    Endorsement,
    Goal,
    GoalLink,
    Product,
    TargetObservation,
    WorkItem,
)

MODELS = (Product, Goal, GoalLink, TargetObservation, CheckIn, Comment, ChangeProposal, Endorsement, WorkItem)


@pytest.fixture
def acme(db):
    load_demo()
    return Organisation.objects.get(slug="acme")


@pytest.fixture
def owner_membership(acme):
    return Membership.objects.get(organisation=acme, user__email=DEMO_USERS[0].email)


def _counts():
    return tuple(model.objects.count() for model in (*MODELS, HistoryEntry, Notification))


def test_loading_twice_adds_nothing(acme):
    before = _counts()
    load_demo()
    assert _counts() == before


def test_two_products_serve_one_organisation_goal(acme, owner_membership):
    products = Product.objects.filter(organisation=acme)
    assert sorted(products.values_list("name", flat=True)) == ["Gear Shop", "Trail App"]
    for product in products:
        assert product.vision and product.product_goal and product.owner
        assert product.teams.exists()
    org_goal = Goal.objects.get(organisation=acme, product__isnull=True)
    assert org_goal.title == ORG_GOAL
    assert org_goal.targets.exists()
    alignment = services.alignment(owner_membership)
    [(goal, serving)] = alignment.org_goals
    assert goal == org_goal
    assert {g.product.name for g in serving if g.product} == {"Trail App", "Gear Shop"}
    assert all(g.level == "strategic" for g in serving)
    assert alignment.unaligned == []
    # The organisation goal's progress rolls up from evidence.
    assert services.progress_for_org(acme.pk)[org_goal.pk].value is not None


def test_trees_have_three_levels_and_complete_goals(acme):
    for product in Product.objects.filter(organisation=acme):
        goals = Goal.objects.filter(product=product)
        levels = {g.level for g in goals}
        assert levels == {"strategic", "intermediate", "tactical"}
        [root] = goals.filter(parent__isnull=True)
        intermediates = goals.filter(parent=root)
        assert intermediates.count() == 2
        for middle in intermediates:
            assert 2 <= middle.children.count() <= 3
        for goal in goals:
            assert goal.owner and goal.outcome
            assert goal.targets.exists()
            assert TargetObservation.objects.filter(target_measure__goal=goal).count() >= 2


def test_life_around_the_goals(acme, owner_membership):
    goals = Goal.objects.filter(organisation=acme)
    assert CheckIn.objects.filter(goal__in=goals).count() >= 10
    assert services.overdue_checkins(owner_membership)  # some check-ins are overdue
    comments = Comment.objects.filter(goal__in=goals)
    assert comments.count() >= 2
    assert any("@member@demo.truenorth.local" in c.body for c in comments)
    assert Notification.objects.filter(
        user__email="member@demo.truenorth.local", text__contains="mentioned"
    ).exists()
    proposals = ChangeProposal.objects.filter(goal__in=goals)
    assert proposals.filter(state="open", author__email="stakeholder@demo.truenorth.local").exists()
    assert proposals.filter(state="accepted").exists()
    assert Endorsement.objects.filter(goal__in=goals, kind="endorse").count() >= 3
    assert Endorsement.objects.filter(goal__in=goals, kind="concern", resolved_at__isnull=True).exists()
    work = WorkItem.objects.filter(organisation=acme)
    assert work.filter(goal__isnull=False).count() >= 5
    assert work.filter(goal__isnull=True).exists()
    assert HistoryEntry.objects.filter(organisation=acme, object_type__icontains="goal").exists()


def test_lint_shows_only_a_few_findings(acme, owner_membership):
    findings = services.lint(owner_membership)
    assert 1 <= len(findings) <= 5
