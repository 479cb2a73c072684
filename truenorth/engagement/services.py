"""TEMPORARY: in-app notifications moved to truenorth/notifications (a ground-floor app every pillar may
use). This module re-exports them for the importers not switched yet; import
`truenorth.notifications.services` instead. It goes once nothing imports it."""

from __future__ import annotations

from truenorth.notifications.services import (
    MENTION_RE,
    mark_read,
    mentioned_members,
    notifications_of,
    notify,
)

__all__ = ["MENTION_RE", "mark_read", "mentioned_members", "notifications_of", "notify"]
