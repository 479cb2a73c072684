from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

from truenorth.accounts.models import User
from truenorth.notifications.services import notifications_of


def unread_notifications(request: HttpRequest) -> dict[str, Any]:
    """How many unread notices the person has in the current organisation (one query, only if shown)."""
    user = getattr(request, "user", None)
    membership = getattr(request, "membership", None)
    if not isinstance(user, User) or membership is None:
        return {}

    def _count() -> int:
        return notifications_of(user, membership.organisation).filter(read_at__isnull=True).count()

    count: Callable[[], int] = _count
    return {"unread_notifications": count}
