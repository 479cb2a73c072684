"""Demo data: stakeholders."""

from __future__ import annotations

from truenorth.accounts.models import User
from truenorth.orgs.models import Organisation


def load(
    org: Organisation, users: dict[str, User], owner: str, admin: str, member: str, stakeholder: str
) -> None:
    """Nothing yet."""
