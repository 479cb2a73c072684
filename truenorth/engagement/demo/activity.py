"""Demo data: activity — a feed token for the owner, so the activity page shows token management in use.
The token itself is never printed (make a new one on the activity page to read the feed)."""

from __future__ import annotations

from truenorth.accounts.models import User
from truenorth.engagement.services import activity
from truenorth.orgs.models import Membership, Organisation


def load(
    org: Organisation, users: dict[str, User], owner: str, admin: str, member: str, stakeholder: str
) -> None:
    """The owner's feed token, unless they have one already."""
    membership = Membership.objects.select_related("organisation").get(organisation=org, user=users[owner])
    if activity.active_feed_token(membership, users[owner]) is None:
        activity.create_feed_token(membership, users[owner])
