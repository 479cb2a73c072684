"""API scoping shared by every app's JSON API: who is asking, and in which organisation.

An organisation the caller does not belong to is "not found", exactly like one that does not exist
(`orgs.services.membership_for`). Token authentication has already run (truenorth/api.py), so the
request's user is a real `User`.
"""

from __future__ import annotations

from django.http import HttpRequest

from truenorth.accounts.models import User
from truenorth.orgs.models import Membership
from truenorth.orgs.services import membership_for


def request_user(request: HttpRequest) -> User:
    """The signed-in (token-authenticated) person making this request."""
    assert isinstance(request.user, User)
    return request.user


def scope(request: HttpRequest, slug: str) -> tuple[Membership, User]:
    """The caller's membership of organisation `slug` and the caller; NotFound when not a member."""
    user = request_user(request)
    return membership_for(user, slug), user
