"""Check-in reminders: a goal's owner gets one e-mail when the goal's check-in falls due.

A goal's check-in is due at (its last check-in, or its creation) + its cadence (strategy's
`overdue_checkins`). `send_reminders` queues one reminder per goal and due time — the outbox's
dedupe key is `reminder:goal:<id>:<due>` — for due times at or before `now`, to owners who are still
members and have not turned check-in reminders off. A new check-in moves the due time, so the next
due gets its own reminder. The worker runs it every 15 minutes; `truenorth reminders send` at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from truenorth.engagement.models import EmailKind, NotificationSettings, OutgoingEmail
from truenorth.engagement.services import mail
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Goal

# overdue_checkins lists due < now; a reminder is due at due <= now (datetimes count microseconds).
_AT_OR_BEFORE = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Reminder:
    goal: Goal
    due: dt.datetime
    dedupe_key: str
    email: OutgoingEmail | None = None  # None in a dry run


def dedupe_key(goal: Goal, due: dt.datetime) -> str:
    return f"reminder:goal:{goal.pk}:{due.astimezone(dt.UTC).strftime('%Y%m%dT%H%M%S.%f')}"


def _organisations(organisation: Organisation | None) -> list[Organisation]:
    if organisation is not None:
        return [organisation]
    return list(Organisation.objects.order_by("pk"))


def due_reminders(organisation: Organisation, *, now: dt.datetime | None = None) -> list[Reminder]:
    """The reminders that should go out now in one organisation and have not gone yet."""
    now = now or timezone.now()
    memberships = {
        m.user_id: m
        for m in Membership.objects.filter(organisation=organisation, user__is_active=True).select_related("user")
    }
    if not memberships:
        return []
    anyone = next(iter(memberships.values()))
    overdue = strategy.overdue_checkins(anyone, now=now + _AT_OR_BEFORE)
    off = set(
        NotificationSettings.objects.filter(organisation=organisation, checkin_reminders=False).values_list(
            "user_id", flat=True
        )
    )
    candidates = [
        Reminder(goal=o.goal, due=o.due, dedupe_key=dedupe_key(o.goal, o.due))
        for o in overdue
        if o.goal.owner_id in memberships and o.goal.owner_id not in off
    ]
    sent = set(
        OutgoingEmail.objects.filter(
            organisation=organisation, dedupe_key__in=[c.dedupe_key for c in candidates]
        ).values_list("dedupe_key", flat=True)
    )
    return [c for c in candidates if c.dedupe_key not in sent]


def reminder_message(goal: Goal, due: dt.datetime) -> mail.Message:
    """Subject, text and HTML of a reminder (with its unsubscribe link)."""
    assert goal.owner is not None
    organisation = goal.organisation
    context = {
        "goal": goal,
        "due": due,
        "organisation": organisation,
        "goal_url": f"{settings.SITE_URL}{strategy.goal_url(goal)}",
        "settings_url": f"{settings.SITE_URL}/o/{organisation.slug}/settings/notifications/",
        "unsubscribe_url": mail.unsubscribe_url(goal.owner, organisation, EmailKind.REMINDER),
    }
    return mail.Message(
        subject=f"Check-in due: {goal.title}",
        text=render_to_string("engagement/mail/reminder.txt", context),
        html=render_to_string("engagement/mail/reminder.html", context),
    )


def send_reminders(
    *, now: dt.datetime | None = None, organisation: Organisation | None = None, dry_run: bool = False
) -> list[Reminder]:
    """Queue the reminders that are due (all organisations, or one); a dry run only lists them."""
    now = now or timezone.now()
    done: list[Reminder] = []
    for org in _organisations(organisation):
        for reminder in due_reminders(org, now=now):
            if dry_run:
                done.append(reminder)
                continue
            goal = reminder.goal
            assert goal.owner is not None
            message = reminder_message(goal, reminder.due)
            email = mail.queue_email(
                org,
                to=goal.owner.email,
                subject=message.subject,
                text=message.text,
                html=message.html,
                kind=EmailKind.REMINDER,
                dedupe_key=reminder.dedupe_key,
                user=goal.owner,
                now=now,
            )
            done.append(Reminder(goal=goal, due=reminder.due, dedupe_key=reminder.dedupe_key, email=email))
    return done
