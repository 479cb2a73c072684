"""Check-in reminders: one e-mail to a goal's owner when its check-in falls due, not a second."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail as django_mail

from truenorth.engagement.models import OutgoingEmail
from truenorth.engagement.services import mail, mail_reminders
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Goal

pytestmark = pytest.mark.django_db

SECOND = dt.timedelta(seconds=1)


@pytest.fixture(autouse=True)
def _locmem(settings) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def _goal(persona, title: str = "Grow retention", cadence: int = 7) -> Goal:
    return strategy.create_goal(
        persona.membership, persona.user, title=title, owner_id=persona.user.pk,
        status=Goal.Status.ACTIVE, checkin_cadence_days=cadence,
    )


def test_reminders_due_exactly_when_a_checkin_falls_due(member) -> None:
    goal = _goal(member)
    due = goal.created_at + dt.timedelta(days=7)

    assert mail_reminders.send_reminders(now=due - SECOND) == []
    assert django_mail.outbox == []

    sent = mail_reminders.send_reminders(now=due)
    assert [r.goal.pk for r in sent] == [goal.pk]
    assert len(django_mail.outbox) == 1
    message = django_mail.outbox[0]
    assert message.to == [member.user.email] and "Grow retention" in message.subject
    assert f"/goals/{goal.pk}/" in message.body

    assert mail_reminders.send_reminders(now=due + dt.timedelta(hours=1)) == []
    assert len(django_mail.outbox) == 1

    checkin = strategy.check_in(member.membership, member.user, goal.pk, status="on_track", confidence=7)
    next_due = checkin.created_at + dt.timedelta(days=7)
    assert mail_reminders.send_reminders(now=next_due - SECOND) == []
    assert len(mail_reminders.send_reminders(now=next_due)) == 1
    assert len(django_mail.outbox) == 2
    assert OutgoingEmail.objects.filter(kind="reminder", user=member.user).count() == 2


def test_reminders_respect_the_owners_settings_and_skip_other_goals(member, admin) -> None:
    goal = _goal(member)
    strategy.create_goal(admin.membership, admin.user, title="Proposed only", owner_id=member.user.pk)
    due = goal.created_at + dt.timedelta(days=7)
    mail.update_settings(member.membership, checkin_reminders=False)
    assert mail_reminders.send_reminders(now=due) == []
    mail.update_settings(member.membership, checkin_reminders=True)
    assert len(mail_reminders.send_reminders(now=due)) == 1


def test_dry_run_sends_nothing(member) -> None:
    goal = _goal(member)
    due = goal.created_at + dt.timedelta(days=7)
    listed = mail_reminders.send_reminders(now=due, dry_run=True)
    assert [r.goal.pk for r in listed] == [goal.pk] and listed[0].email is None
    assert not OutgoingEmail.objects.exists() and django_mail.outbox == []


def test_reminder_carries_one_click_unsubscribe_headers(member) -> None:
    goal = _goal(member)
    mail_reminders.send_reminders(now=goal.created_at + dt.timedelta(days=7))
    headers = django_mail.outbox[0].extra_headers
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = headers["List-Unsubscribe"].strip("<>")
    assert "/unsubscribe/" in url and url in django_mail.outbox[0].body


def test_reminders_are_per_organisation(member, outsider, org_b) -> None:
    goal = _goal(member)
    other = _goal(outsider, "Bravo's goal")
    due = max(goal.created_at, other.created_at) + dt.timedelta(days=7)
    mail_reminders.send_reminders(now=due, organisation=org_b)
    assert [m.to for m in django_mail.outbox] == [[outsider.user.email]]
    assert OutgoingEmail.objects.get().organisation == org_b
