"""The WSGI application, and the gunicorn hooks `truenorth serve` installs.

A database connection must never cross a fork: two processes writing to one PostgreSQL socket get each
other's answers (a request answered as another user) or "lost synchronization with server". The master
opens none (`serve` migrates in a child process) and closes any it has before each fork; a worker
forgets, without closing, any connection it inherited anyway, since closing one would send PostgreSQL's
terminate message on the socket its parent and siblings share.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "truenorth.settings")

application = get_wsgi_application()

# Inherited connection objects a worker dropped: kept referenced so they are never closed (and so never
# send anything on the socket they share with the parent).
_ABANDONED: list[Any] = []


def close_connections_before_fork(server: Any = None, worker: Any = None) -> None:
    """gunicorn `pre_fork` (in the master): close every database connection before forking a worker."""
    from django.db import connections

    connections.close_all()


def forget_inherited_connections(server: Any = None, worker: Any = None) -> None:
    """gunicorn `post_fork` (in the new worker): drop any connection inherited from the master, unused;
    the worker opens its own on its first query."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            _ABANDONED.append(conn.connection)
            conn.connection = None
