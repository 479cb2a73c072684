"""In-app notifications, sent by every pillar (e-mail and chat channels come with the engagement pillar)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db.models import QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.notifications.models import Notification
from truenorth.orgs.models import Membership, Organisation

MENTION_RE = re.compile(r"@([A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mentioned_members(organisation: Organisation, text: str) -> list[User]:
    """Members of the organisation @mentioned by e-mail in text (others are ignored, never revealed)."""
    emails = {m.lower().rstrip(".") for m in MENTION_RE.findall(text or "")}
    if not emails:
        return []
    return [
        m.user
        for m in Membership.objects.filter(organisation=organisation, user__email__in=emails).select_related(
            "user"
        )
    ]


def notify(
    organisation: Organisation, users: Iterable[User], text: str, url: str = "", *, actor: User | None = None
) -> int:
    """Notify each user once (never the actor about their own action); returns how many were notified."""
    rows = [
        Notification(organisation=organisation, user=u, text=text[:300], url=url[:300])
        for u in {u.pk: u for u in users}.values()
        if actor is None or u.pk != actor.pk
    ]
    Notification.objects.bulk_create(rows)
    return len(rows)


def notifications_of(user: User, organisation: Organisation | None = None) -> QuerySet[Notification]:
    qs = Notification.objects.filter(user=user)
    if organisation is not None:
        qs = qs.filter(organisation=organisation)
    return qs.order_by("-created_at", "-id")


def mark_read(user: User, ids: Iterable[int] | None = None) -> int:
    qs = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=timezone.now())
