"""Stakeholders through the service layer: quadrants, gaps, overdue weighting, uniqueness, isolation,
versions, history and the public summary."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.engagement import quadrants as grid
from truenorth.engagement.models import EngagementLogEntry, Stakeholder
from truenorth.engagement.services import stakeholders as svc
from truenorth.history.models import HistoryEntry
from truenorth.history.services import entries_for
from truenorth.strategy import services as strategy

# --- the pure grid --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("influence", "interest", "expected"),
    [
        (5, 5, grid.MANAGE_CLOSELY),
        (3, 3, grid.MANAGE_CLOSELY),  # the middle of the scale counts as high
        (3, 2, grid.KEEP_SATISFIED),
        (5, 1, grid.KEEP_SATISFIED),
        (2, 3, grid.KEEP_INFORMED),
        (1, 5, grid.KEEP_INFORMED),
        (2, 2, grid.MONITOR),
        (1, 1, grid.MONITOR),
    ],
)
def test_quadrant_rule(influence: int, interest: int, expected: str) -> None:
    assert grid.quadrant(influence, interest) == expected


def test_engagement_gap_counts_steps() -> None:
    assert grid.engagement_gap("resistant", "leading") == 3
    assert grid.engagement_gap("supportive", "supportive") == 0
    assert grid.engagement_gap("leading", "neutral") == -2


def test_overdue_score_is_weighted_by_quadrant() -> None:
    today = dt.date(2026, 6, 30)
    close = grid.contact(grid.MANAGE_CLOSELY, today - dt.timedelta(days=21), today)
    watch = grid.contact(grid.MONITOR, today - dt.timedelta(days=60), today)
    assert close.score == pytest.approx(1.5) and close.overdue
    assert watch.score == pytest.approx(60 / 90) and not watch.overdue
    assert grid.is_listed(watch, 45) and not grid.is_listed(close, 30)


# --- fixtures -------------------------------------------------------------------------------------


def _add(persona, name: str, **values):
    return svc.create_stakeholder(persona.membership, persona.user, name=name, **values)


def _age(s: Stakeholder, days: int) -> None:
    Stakeholder.objects.filter(pk=s.pk).update(created_at=timezone.now() - dt.timedelta(days=days))


# --- stakeholders ---------------------------------------------------------------------------------


def test_create_normalises_email_and_records_history(member) -> None:
    s = _add(member, "Dana Legal", email="  Dana@Example.COM ", department="legal", influence=5, interest=2)
    assert s.email == "dana@example.com"
    assert svc.quadrant_of(s) == grid.KEEP_SATISFIED
    [entry] = entries_for(member.membership.organisation, s)
    assert entry.action == HistoryEntry.Action.CREATED
    assert entry.changes["email"]["new"] == "dana@example.com"


def test_email_unique_per_organisation_case_insensitively(member, outsider) -> None:
    _add(member, "Dana", email="dana@example.com")
    with pytest.raises(Conflict) as err:
        _add(member, "Dana again", email="DANA@example.com")
    assert err.value.field == "email"
    _add(member, "No mail 1")
    _add(member, "No mail 2")  # blank e-mails never clash
    _add(outsider, "Dana elsewhere", email="dana@example.com")  # another organisation may
    with pytest.raises(IntegrityError), transaction.atomic():  # the database holds the rule too
        Stakeholder.objects.create(
            organisation=member.membership.organisation, name="x", email="dana@example.com"
        )


def test_scores_are_checked_in_services_and_database(member) -> None:
    with pytest.raises(ValidationFailed) as err:
        _add(member, "Too much", influence=6)
    assert err.value.field == "influence"
    with pytest.raises(ValidationFailed) as err:
        _add(member, "Bad", current_engagement="enthusiastic")
    assert err.value.field == "current_engagement"
    with pytest.raises(IntegrityError), transaction.atomic():
        Stakeholder.objects.create(organisation=member.membership.organisation, name="x", interest=0)


def test_goals_and_products_of_another_organisation_are_refused(member, outsider) -> None:
    theirs = strategy.create_product(outsider.membership, outsider.user, name="Secret")
    their_goal = strategy.create_goal(
        outsider.membership, outsider.user, title="Secret goal", product_id=theirs.pk
    )
    with pytest.raises(ValidationFailed) as err:
        _add(member, "Sam", products=[theirs.pk])
    assert err.value.field == "products"
    with pytest.raises(ValidationFailed) as err:
        _add(member, "Sam", goals=[their_goal.pk])
    assert err.value.field == "goals"
    with pytest.raises(ValidationFailed) as err:
        _add(member, "Sam", relationship_owner=outsider.user.pk)
    assert err.value.field == "relationship_owner"
    assert not Stakeholder.objects.filter(name="Sam").exists()


def test_relationship_owner_must_be_a_member_not_a_stakeholder(member, stakeholder) -> None:
    with pytest.raises(ValidationFailed):
        _add(member, "Sam", relationship_owner=stakeholder.user.pk)
    s = _add(member, "Sam", relationship_owner=member.user.pk, user=stakeholder.user.pk)
    assert s.relationship_owner == member.user and s.user == stakeholder.user


def test_other_organisation_cannot_see_or_change(member, outsider) -> None:
    s = _add(member, "Dana")
    with pytest.raises(NotFound):
        svc.get_stakeholder(outsider.membership, s.pk)
    with pytest.raises(NotFound):
        svc.update_stakeholder(outsider.membership, outsider.user, s.pk, name="Mine")
    with pytest.raises(ValidationFailed):
        svc.log_interaction(
            outsider.membership,
            outsider.user,
            occurred_on=timezone.localdate(),
            summary="Hi",
            stakeholder_ids=[s.pk],
        )
    assert list(svc.stakeholders_of(outsider.membership)) == []


def test_stakeholder_role_reads_only(member, stakeholder) -> None:
    s = _add(member, "Dana")
    assert svc.get_stakeholder(stakeholder.membership, s.pk) == s
    with pytest.raises(Forbidden):
        _add(stakeholder, "Nope")
    with pytest.raises(Forbidden):
        svc.archive_stakeholder(stakeholder.membership, stakeholder.user, s.pk)


def test_update_versions_history_and_unchanged_save(member) -> None:
    product = strategy.create_product(member.membership, member.user, name="Trail")
    s = _add(member, "Dana", products=[product.pk], interest=2)
    org = member.membership.organisation
    same = svc.update_stakeholder(
        member.membership,
        member.user,
        s.pk,
        version=1,
        name="Dana",
        interest=2,
        products=[product.pk],
        email="",
    )
    assert same.version == 1 and entries_for(org, s).count() == 1
    changed = svc.update_stakeholder(member.membership, member.user, s.pk, version=1, interest=4, products=[])
    assert changed.version == 2 and changed.interest == 4
    latest = entries_for(org, s)[0]
    assert latest.changes == {"interest": {"old": 2, "new": 4}, "products": {"old": ["Trail"], "new": []}}
    with pytest.raises(Conflict) as err:
        svc.update_stakeholder(member.membership, member.user, s.pk, version=1, interest=5)
    assert err.value.field == "version"
    assert Stakeholder.objects.get(pk=s.pk).interest == 4


def test_archive_records_history_and_hides(member) -> None:
    s = _add(member, "Dana")
    with pytest.raises(Conflict):
        svc.archive_stakeholder(member.membership, member.user, s.pk, version=7)
    svc.archive_stakeholder(member.membership, member.user, s.pk, version=1)
    assert list(svc.stakeholders_of(member.membership)) == []
    assert entries_for(member.membership.organisation, s)[0].action == HistoryEntry.Action.ARCHIVED
    again = svc.archive_stakeholder(member.membership, member.user, s.pk)
    assert again.version == 2  # already archived: nothing changes


# --- the log and overdue --------------------------------------------------------------------------


def test_log_needs_a_stakeholder_a_summary_and_a_past_day(member) -> None:
    s = _add(member, "Dana")
    today = timezone.localdate()
    for kwargs, field in (
        ({"stakeholder_ids": []}, "stakeholders"),
        ({"summary": "  "}, "summary"),
        ({"occurred_on": today + dt.timedelta(days=2)}, "occurred_on"),
        ({"kind": "telepathy"}, "kind"),
    ):
        args = {"occurred_on": today, "summary": "Coffee", "stakeholder_ids": [s.pk], **kwargs}
        with pytest.raises(ValidationFailed) as err:
            svc.log_interaction(member.membership, member.user, **args)
        assert err.value.field == field
    entry = svc.log_interaction(
        member.membership, member.user, occurred_on=today, summary="Coffee", stakeholder_ids=[s.pk]
    )
    assert list(entry.stakeholders.all()) == [s]
    assert entries_for(member.membership.organisation, entry).get().action == HistoryEntry.Action.CREATED
    assert EngagementLogEntry.objects.count() == 1


def test_overdue_list_weighted_by_quadrant_and_days_override(member) -> None:
    today = timezone.localdate()
    close = _add(member, "Close", influence=5, interest=5)  # interval 14
    watch = _add(member, "Watch", influence=1, interest=1)  # interval 90
    fresh = _add(member, "Fresh", influence=5, interest=5)
    talked = _add(member, "Talked", influence=5, interest=5)
    for s in (close, watch, fresh, talked):
        _age(s, 60)
    _age(fresh, 3)
    svc.log_interaction(
        member.membership,
        member.user,
        occurred_on=today - dt.timedelta(days=7),
        summary="Demo",
        stakeholder_ids=[talked.pk],
    )
    rows = svc.overdue(member.membership)
    assert [r.stakeholder.name for r in rows] == ["Close"]
    assert rows[0].score == pytest.approx(60 / 14) and rows[0].days_since == 60
    rows = svc.overdue(member.membership, days=5)
    assert [r.stakeholder.name for r in rows] == ["Close", "Watch", "Talked"]  # by score: 60/14, 60/90, 7/14
    with pytest.raises(ValidationFailed) as err:
        svc.overdue(member.membership, days=-1)
    assert err.value.field == "days"


# --- the public summary ---------------------------------------------------------------------------


def test_summary_counts_in_one_query(member, django_assert_num_queries) -> None:
    product = strategy.create_product(member.membership, member.user, name="Trail")
    goal = strategy.create_goal(member.membership, member.user, title="Grow", product_id=product.pk)
    a = _add(member, "A", influence=5, interest=5, current_engagement="neutral", products=[product.pk])
    _add(member, "B", influence=1, interest=1, desired_engagement="neutral", goals=[goal.pk])
    c = _add(
        member, "C", influence=4, interest=1, current_engagement="resistant", desired_engagement="neutral"
    )
    _age(a, 30)
    _age(c, 10)
    with django_assert_num_queries(1):
        summary = svc.stakeholder_summary(member.membership)
    assert summary == svc.StakeholderSummary(
        total=3,
        by_quadrant={"manage_closely": 1, "keep_satisfied": 1, "keep_informed": 0, "monitor": 1},
        with_gap=2,
        overdue=1,
    )
    for_product = svc.stakeholder_summary(member.membership, product.pk)
    assert for_product.total == 2 and for_product.by_quadrant["manage_closely"] == 1
    assert {s.name for s in svc.stakeholders_of(member.membership, product.pk)} == {"A", "B"}


# --- the demo -------------------------------------------------------------------------------------


def test_demo_stakeholders_load_twice(db) -> None:
    from truenorth.demo import DEMO_ORG, load_demo
    from truenorth.orgs.models import Membership

    load_demo()
    load_demo()
    membership = Membership.objects.filter(organisation__slug=DEMO_ORG[1]).order_by("id").first()
    assert membership is not None
    people = list(svc.stakeholders_of(membership))
    assert len(people) == 10
    assert {s.department for s in people} >= {"legal", "security", "sales", "support", "customers", "finance"}
    summary = svc.stakeholder_summary(membership)
    assert summary.with_gap >= 3 and summary.overdue >= 2
    assert all(summary.by_quadrant.values())  # every quadrant has someone
    assert any(s.products.exists() for s in people) and any(s.goals.exists() for s in people)
    assert EngagementLogEntry.objects.filter(organisation=membership.organisation).count() >= 10
