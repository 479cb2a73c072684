"""Engagement's part of the demo (Acme Outdoor), one module per part, loaded after the three pillars:
stakeholders across departments, two completed pulses, reminders and digests, a webhook delivery log,
a share link, and an alignment health check."""

from __future__ import annotations

from truenorth.accounts.models import User
from truenorth.engagement.demo import activity, briefs, health, mail, pulses, stakeholders, webhooks
from truenorth.orgs.models import Organisation


def load_engagement_demo(
    org: Organisation, users: dict[str, User], owner: str, admin: str, member: str, stakeholder: str
) -> None:
    for part in (stakeholders, pulses, briefs, mail, webhooks, activity, health):
        part.load(org, users, owner, admin, member, stakeholder)
