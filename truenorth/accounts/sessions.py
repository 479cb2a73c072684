"""Django's database sessions, read with one prepared statement instead of an ORM query per request.

Every signed-in page reads its session first; building that query through the ORM costs more than
running it. (A kept page, orgs/pagecache.py, reads the session row in its own statement and hands it to
`preload`.) Same table, same rows,
same rule (the key, not expired) as `django.contrib.sessions.backends.db`, so switching to or from it
signs nobody out. Writes go through Django's own code.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.db import connections, router
from django.utils import timezone

from truenorth.core import prepared


class SessionStore(DatabaseSessionStore):
    def is_loaded(self) -> bool:
        """Whether the session's data has been read (from the database, or given to `preload`)."""
        return hasattr(self, "_session_cache")

    def preload(self, session_data: str) -> None:
        """Take the session's row, read by a caller's own statement (same key, not expired), instead of
        reading it again; the data is checked (signature) and decoded exactly as a load would."""
        self._session_cache = self.decode(session_data)

    def _get_session_from_db(self) -> Session | None:
        if not self.session_key:
            self._session_key = None
            return None
        alias = router.db_for_read(self.model, instance=None)
        db = connections[alias]
        table = db.ops.quote_name(self.model._meta.db_table)
        with prepared.cursor(db) as cursor:
            cursor.execute(
                f"SELECT session_data FROM {table} WHERE session_key = %s AND expire_date > %s",  # noqa: S608
                [self.session_key, db.ops.adapt_datetimefield_value(timezone.now())],
            )
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return None
        return Session(session_key=self.session_key, session_data=row[0])
