"""Demo data: mail — notification settings for the demo people (digest days spread over the week, the
stakeholder without check-in reminders), a few follows, and in the outbox one sent check-in reminder and
one sent weekly digest (recorded as sent, not sent: the demo sends no e-mail)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.engagement.models import EmailKind
from truenorth.engagement.services import mail, mail_digest, mail_reminders
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy.models import Goal, Product

SETTINGS = {  # role → (check-in reminders, weekly digest, digest weekday)
    "owner": (True, True, 0),
    "admin": (True, True, 1),
    "member": (True, True, 4),
    "stakeholder": (False, True, 0),
}


def load(
    org: Organisation, users: dict[str, User], owner: str, admin: str, member: str, stakeholder: str
) -> None:
    memberships = {
        role: Membership.objects.select_related("user", "organisation").get(organisation=org, user=users[email])
        for role, email in (("owner", owner), ("admin", admin), ("member", member), ("stakeholder", stakeholder))
    }
    for role, (reminders, digest, weekday) in SETTINGS.items():
        current = mail.my_settings(memberships[role])
        mail.update_settings(
            memberships[role], checkin_reminders=reminders, weekly_digest=digest, digest_weekday=weekday,
            version=current.version,
        )

    products = list(Product.objects.filter(organisation=org, archived_at__isnull=True).order_by("pk")[:2])
    top_goals = list(
        Goal.objects.filter(organisation=org, parent__isnull=True, archived_at__isnull=True).order_by("pk")[:2]
    )
    if products:
        mail.follow(memberships["member"], product_id=products[0].pk)
        mail.follow(memberships["stakeholder"], product_id=products[-1].pk)
    for goal in top_goals:
        mail.follow(memberships["stakeholder"], goal_id=goal.pk)

    now = timezone.now()
    _sent_reminder(org, now)
    _sent_digest(memberships["member"], now)


def _sent_reminder(org: Organisation, now: dt.datetime) -> None:
    """One reminder, as the worker sent it when the goal's check-in fell due."""
    goal = (
        Goal.objects.filter(organisation=org, status=Goal.Status.ACTIVE, owner__isnull=False, archived_at__isnull=True)
        .select_related("owner", "organisation")
        .order_by("pk")
        .first()
    )
    if goal is None or goal.owner is None:
        return
    due = now - dt.timedelta(days=2)
    mail.record_sent(
        org, to=goal.owner.email, message=mail_reminders.reminder_message(goal, due), kind=EmailKind.REMINDER,
        dedupe_key="demo:reminder", user=goal.owner, now=due + dt.timedelta(minutes=9),
    )


def _sent_digest(membership: Membership, now: dt.datetime) -> None:
    """Last week's digest of the member (what changed in the month before it)."""
    sent_at = now - dt.timedelta(days=3)
    digest = mail_digest.build_digest(membership, now=sent_at, since=sent_at - dt.timedelta(days=30))
    if digest.empty:
        return
    mail.record_sent(
        membership.organisation, to=membership.user.email, message=mail_digest.digest_message(digest),
        kind=EmailKind.DIGEST, dedupe_key="demo:digest", user=membership.user, now=sent_at,
    )
