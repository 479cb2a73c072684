"""The authentication backend that loads the signed-in person of a session.

Django's ModelBackend loads the person of every signed-in request through the ORM; building that query
costs more than running it. This subclass loads the same row with a plain statement (same table, same
`is_active` rule) and never checks passwords: sign-in goes on through ModelBackend, listed after it,
so a wrong password is still hashed once. Sessions recorded with either backend stay valid.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest

from truenorth.accounts.models import User
from truenorth.core import prepared

# What `login()` records in the session (settings.AUTHENTICATION_BACKENDS lists it first).
SESSION_BACKEND = "truenorth.accounts.backends.SessionUserBackend"


class SessionUserBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        return None  # passwords are ModelBackend's

    def get_user(self, user_id: Any) -> User | None:
        with prepared.cursor(connections[DEFAULT_DB_ALIAS]) as cursor:
            cursor.execute(f"SELECT {user_columns()} FROM {User._meta.db_table} u WHERE u.id = %s", [user_id])  # noqa: S608
            row = cursor.fetchone()
        if row is None:
            return None
        user = user_from_row(row)
        return user if self.user_can_authenticate(user) else None


_CONVERTERS = "_truenorth_user_converters"


@functools.cache
def user_columns() -> str:
    """The person's columns, as `u.column, …`, for a statement that names the users table `u`."""
    return ", ".join(f"u.{field.column}" for field in User._meta.concrete_fields)


def user_from_row(row: Sequence[Any]) -> User:
    """The person from a row whose first columns are `user_columns()` (what the ORM would have built;
    a raw query set costs as much again as the query)."""
    fields = User._meta.concrete_fields
    connection = connections[DEFAULT_DB_ALIAS]
    # The database's conversions, as the ORM applies them (SQLite's time stamps made aware, booleans),
    # worked out once per connection object (one per thread).
    found = connection.__dict__.get(_CONVERTERS)
    if found is None:
        compiler = connection.ops.compiler("SQLCompiler")(User.objects.none().query, connection, DEFAULT_DB_ALIAS)
        found = (compiler, compiler.get_converters([field.get_col(User._meta.db_table) for field in fields]))
        connection.__dict__[_CONVERTERS] = found
    compiler, converters = found
    values = list(row[: len(fields)])
    if converters:
        values = next(iter(compiler.apply_converters([values], converters)))
    return User.from_db(DEFAULT_DB_ALIAS, [field.attname for field in fields], values)
