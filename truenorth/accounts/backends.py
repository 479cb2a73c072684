"""The authentication backend that loads the signed-in person of a session.

Django's ModelBackend loads the person of every signed-in request through the ORM; building that query
costs more than running it. This subclass loads the same row with a plain statement (same table, same
`is_active` rule) and never checks passwords: sign-in goes on through ModelBackend, listed after it,
so a wrong password is still hashed once. Sessions recorded with either backend stay valid.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from truenorth.accounts.models import User

# What `login()` records in the session (settings.AUTHENTICATION_BACKENDS lists it first).
SESSION_BACKEND = "truenorth.accounts.backends.SessionUserBackend"


class SessionUserBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        return None  # passwords are ModelBackend's

    def get_user(self, user_id: Any) -> User | None:
        table = User._meta.db_table
        found = list(User.objects.raw(f"SELECT * FROM {table} WHERE id = %s", [user_id]))  # noqa: S608
        if not found:
            return None
        return found[0] if self.user_can_authenticate(found[0]) else None
