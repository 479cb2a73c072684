"""API: Engagement — stakeholders, alignment pulses, product briefs and share links, e-mail settings,
digests and reminders, outgoing webhooks, the activity feed and the alignment health check. One router
per part, mounted under /orgs; every rule lives in engagement/services/."""

from __future__ import annotations

from ninja import Router

from truenorth.engagement.api import activity, briefs, health, mail, pulses, stakeholders, webhooks

router = Router()
for part in (stakeholders, pulses, briefs, mail, webhooks, activity, health):
    router.add_router("", part.router)

__all__ = ["router"]
