"""A cursor for the few statements every request sends (the session or token read of a kept page or API
list, the rate counters), that PostgreSQL can keep prepared.

Django binds query parameters on the client by default (psycopg's ClientCursor): the server receives
one literal statement each time and parses and plans it again; psycopg never prepares those. This
cursor binds on the server (psycopg's plain Cursor), so a statement the connection has sent
DATABASE_PREPARE_THRESHOLD times is prepared and then only executed. It is wrapped like any Django
cursor (query logging, execute wrappers, database errors), so tests and `_watch` see its statements.

Only fixed-shape SELECTs of our own go through it: server-side binding refuses parameters where
PostgreSQL takes none (SET, DDL) and types each parameter, which Django's own queries were not
written for (they keep the default). Other databases, and a PostgreSQL connection already binding on
the server (OPTIONS server_side_binding), get the ordinary cursor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper


def cursor(db: BaseDatabaseWrapper) -> CursorWrapper:
    """`db.cursor()`, binding on the server (so preparable) on PostgreSQL."""
    if db.vendor != "postgresql" or db.settings_dict.get("OPTIONS", {}).get("server_side_binding"):
        return db.cursor()
    import psycopg
    from django.db.backends.postgresql.base import TIMESTAMPTZ_OID
    from django.db.backends.postgresql.psycopg_any import register_tzloader
    from psycopg.pq import Format

    db.close_if_health_check_failed()
    db.ensure_connection()
    with db.wrap_database_errors:
        raw: Any = psycopg.Cursor(db.connection)
        # As Django's create_cursor: the session's time zone for timestamps, when the connection differs.
        tzloader = db.connection.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
        if db.timezone != tzloader.timezone:
            register_tzloader(db.timezone, raw)
        # Django's own wrapping (query logging, execute wrappers, the thread check); not in the stubs.
        wrapped: CursorWrapper = db._prepare_cursor(raw)  # type: ignore[attr-defined]
        return wrapped
