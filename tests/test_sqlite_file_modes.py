"""The SQLite database (password hashes, session keys) and its -wal/-shm files are private: 0600, in a
0700 data directory, even with the usual umask of 022 that used to leave them world-readable (0644)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

# Migrate through the CLI, then read once while the connection is still open, so the -wal and -shm files
# exist (SQLite removes them when the last connection closes); print every mode.
MIGRATE_AND_STAT = """
import json, os, stat, sys
from truenorth.cli import main
assert main(["migrate"]) == 0
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("INSERT INTO django_session VALUES ('k', 'd', '2999-01-01')")
db = connection.settings_dict["NAME"]
modes = {s: stat.S_IMODE(os.stat(db + s).st_mode) for s in ("", "-wal", "-shm")}
modes["data_dir"] = stat.S_IMODE(os.stat(settings.DATA_DIR).st_mode)
print(json.dumps(modes))
"""


def _migrate_and_stat(data_dir: Path, database_url: str | None = None) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
    env.update(TRUENORTH_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="truenorth.settings")
    if database_url:
        env["DATABASE_URL"] = database_url
    old_umask = os.umask(0o022)  # the usual default, which made the files 0644
    try:
        result = subprocess.run(
            [sys.executable, "-c", MIGRATE_AND_STAT],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        os.umask(old_umask)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_a_fresh_sqlite_database_and_its_wal_and_shm_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    modes = _migrate_and_stat(tmp_path / "data")
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600, "data_dir": 0o700}


def test_an_existing_world_readable_database_is_made_private_on_the_next_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    db = data_dir / "truenorth.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        path = Path(f"{db}{suffix}")
        path.touch()
        path.chmod(0o644)
    modes = _migrate_and_stat(data_dir)
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600, "data_dir": 0o700}


def test_a_database_elsewhere_gets_a_private_new_directory_and_file(tmp_path: Path) -> None:
    db = tmp_path / "elsewhere" / "deep" / "db.sqlite3"
    modes = _migrate_and_stat(tmp_path / "data", f"sqlite:///{db}")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    # The data directory (keys, job queue) is created private too, wherever the database is.
    assert modes["data_dir"] == 0o700

