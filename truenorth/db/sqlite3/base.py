"""Django's SQLite backend, keeping the database private to the account that runs TrueNorth.

The database holds password hashes and session keys. SQLite creates a new file with the process umask
(usually 0644: world-readable), and its -wal and -shm files copy the database file's mode. So before
every new connection the database file is created (or corrected) as 0600, with its -wal, -shm and
-journal files, and the directory TrueNorth created for it, or its own data directory, is made 0700.
In-memory databases (tests) are left alone.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.backends.sqlite3 import base

logger = logging.getLogger(__name__)

SIDE_FILES = ("-wal", "-shm", "-journal")


def _private(path: Path, mode: int) -> None:
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(mode)
    except FileNotFoundError:
        pass
    except OSError as exc:  # e.g. a file owned by another account: say so, but do not refuse to start
        logger.warning("Could not make %s private (mode %o): %s", path, mode, exc)


def make_private(database: str) -> None:
    """Create the SQLite file `database` 0600 if it is missing; tighten it, its side files and its data
    directory if they are more open."""
    if not database or database.startswith(("file:", ":memory:")):
        return
    path = Path(database).expanduser()
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)  # two processes may race here
    elif path.parent.resolve() == Path(settings.DATA_DIR).expanduser().resolve():
        _private(path.parent, 0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)):
        _private(candidate, 0o600)


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        make_private(str(conn_params.get("database") or ""))
        return super().get_new_connection(conn_params)
