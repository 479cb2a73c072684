"""`truenorth backup` and `truenorth restore`, run as the operator runs them: subprocesses with their own
database (a SQLite file in a temporary data directory, or a scratch PostgreSQL database) and data
directory, whatever database the test run itself uses."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
PASSPHRASE = "correct horse battery staple"
PG_ADMIN = "postgres://postgres@127.0.0.1:5432/postgres"
Rows = dict[str, list[str]]


def _env(data_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    drop = {"DATABASE_URL", "SECRET_KEY", "TRUENORTH_ENCRYPTION_KEY", "TRUENORTH_DUCKDB_DIRS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(TRUENORTH_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="truenorth.settings", COLUMNS="200")
    env["BACKUP_PASSPHRASE"] = PASSPHRASE
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def truenorth(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _run(env, "truenorth.cli", *args)


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one-line error of a refused command (exit 2), checked for `words`."""
    assert done.returncode == 2, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def secrets_of(env: dict[str, str]) -> dict[str, Any]:
    return dict(json.loads(ok(_run(env, "truenorth.ops.tests.seed", "read")).stdout.splitlines()[-1]))


def sqlite_rows(path: Path) -> Rows:
    """Every row of every table, as sorted text: equal when the databases hold the same data."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {n: sorted(repr(r) for r in db.execute(f'SELECT * FROM "{n}"')) for n in names}
    finally:
        db.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rewrite(archive: Path, change: Callable[[str, bytes], bytes]) -> Path:
    """A copy of `archive` whose members went through `change(name, data)`."""
    out = archive.with_name("changed-" + archive.name)
    with tarfile.open(archive, "r:gz") as source, tarfile.open(out, "w:gz") as target:
        for member in source:
            reader = source.extractfile(member)
            assert reader is not None
            data = change(member.name, reader.read())
            member.size = len(data)
            target.addfile(member, io.BytesIO(data))
    return out


def with_manifest(archive: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    def change(name: str, data: bytes) -> bytes:
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        edit(manifest)
        return json.dumps(manifest).encode()

    return rewrite(archive, change)


# --- SQLite -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A data directory with a migrated SQLite database holding the whole demo (every pillar, with its
    history and observations), plus a webhook and a data source; and the secrets sealed in it."""
    data_dir = tmp_path_factory.mktemp("template")
    env = _env(data_dir)
    ok(truenorth(env, "migrate"))
    sealed = json.loads(ok(_run(env, "truenorth.ops.tests.seed", "seed", "--full")).stdout.splitlines()[-1])
    return data_dir, sealed


@pytest.fixture
def instance(template: tuple[Path, dict[str, Any]], tmp_path: Path) -> Path:
    """A copy of the template's data directory: an instance with its own database and generated keys."""
    data_dir = tmp_path / "instance"
    shutil.copytree(template[0], data_dir)
    return data_dir


def test_a_sqlite_backup_restores_every_row_and_the_keys_into_a_fresh_data_directory(
    instance: Path, template: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    archive = tmp_path / "nightly.truenorth"
    done = ok(truenorth(_env(instance), "backup", str(archive), "--passphrase-env", "BACKUP_PASSPHRASE"))
    assert "with the keys" in done.stdout
    assert archive.stat().st_mode & 0o777 == 0o600
    before = sqlite_rows(instance / "truenorth.sqlite3")
    assert before["history_historyentry"] and before["measures_observation"] and before["engagement_webhook"]

    fresh = tmp_path / "fresh"  # the machine burnt down: a new data directory, new generated keys
    env = _env(fresh)
    done = ok(truenorth(env, "restore", str(archive), "--passphrase-env", "BACKUP_PASSPHRASE", "--yes"))
    assert "sealed secrets decrypt with the current keys" in done.stdout, done.stdout + done.stderr
    assert sqlite_rows(fresh / "truenorth.sqlite3") == before
    for name in ("secret_key", "encryption_key"):
        assert (fresh / name).read_text() == (instance / name).read_text()
        assert (fresh / name).stat().st_mode & 0o777 == 0o600
    assert secrets_of(env)["webhook_secret"] == template[1]["webhook_secret"]
    assert secrets_of(env)["source_config"] == template[1]["source_config"]
    ok(truenorth(env, "migrate", "--check"))


def test_a_sqlite_backup_is_one_moment_while_another_connection_writes(
    instance: Path, tmp_path: Path
) -> None:
    database = instance / "truenorth.sqlite3"
    setup = sqlite3.connect(database)
    setup.executescript("CREATE TABLE probe_a (n INTEGER); CREATE TABLE probe_b (n INTEGER);")
    setup.close()
    stop, written = threading.Event(), [0]

    def write() -> None:
        db = sqlite3.connect(database, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        while not stop.is_set():
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO probe_a VALUES (?)", (written[0],))
            time.sleep(0.001)  # a transaction that is visibly in two steps
            db.execute("INSERT INTO probe_b VALUES (?)", (written[0],))
            db.execute("COMMIT")
            written[0] += 1
        db.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while written[0] < 20:
            time.sleep(0.01)
        at_start = written[0]
        archive = tmp_path / "busy.truenorth"
        ok(truenorth(_env(instance), "backup", str(archive), "--without-keys"))
        during = written[0] - at_start
    finally:
        stop.set()
        writer.join()
    assert during > 0, "the writer made no progress during the backup"

    fresh = tmp_path / "fresh"
    ok(truenorth(_env(fresh), "restore", str(archive), "--yes"))  # it checks the manifest's rows per table
    restored = sqlite3.connect(fresh / "truenorth.sqlite3")
    a = restored.execute("SELECT count(*), max(n) FROM probe_a").fetchone()
    b = restored.execute("SELECT count(*), max(n) FROM probe_b").fetchone()
    assert restored.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    restored.close()
    assert a == b and a[0] >= at_start and a[0] < written[0]


def test_a_backup_from_a_newer_schema_is_refused_and_the_database_left_alone(
    instance: Path, tmp_path: Path
) -> None:
    env = _env(instance)
    archive = tmp_path / "b.truenorth"
    ok(truenorth(env, "backup", str(archive), "--passphrase-env", "BACKUP_PASSPHRASE"))
    newer = with_manifest(archive, lambda m: m["migrations"]["core"].append("9999_from_the_future"))
    before = digest(instance / "truenorth.sqlite3")
    restore = ("--passphrase-env", "BACKUP_PASSPHRASE", "--yes")
    refused(
        truenorth(env, "restore", str(newer), *restore),
        "core.9999_from_the_future",
        "upgrade TrueNorth first",
    )
    assert digest(instance / "truenorth.sqlite3") == before
    assert not list(instance.glob("*.before-restore-*"))

    # An older schema (a migration the backup lacks) restores, then says to migrate.
    older = with_manifest(archive, lambda m: m["migrations"]["core"].pop())
    done = ok(truenorth(_env(tmp_path / "fresh"), "restore", str(older), *restore))
    assert "run `truenorth migrate`" in done.stderr


def test_a_wrong_passphrase_or_a_damaged_archive_is_refused_before_anything_changes(
    instance: Path, tmp_path: Path
) -> None:
    env = _env(instance)
    archive = tmp_path / "b.truenorth"
    ok(truenorth(env, "backup", str(archive), "--passphrase-env", "BACKUP_PASSPHRASE"))
    before = digest(instance / "truenorth.sqlite3")
    keys = digest(instance / "encryption_key")
    restore = ("--passphrase-env", "BACKUP_PASSPHRASE", "--yes")

    wrong = _env(instance, BACKUP_PASSPHRASE="not the passphrase at all")
    refused(truenorth(wrong, "restore", str(archive), *restore), "wrong passphrase")

    flipped = tmp_path / "flipped.truenorth"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    refused(truenorth(env, "restore", str(flipped), *restore), "damaged")

    truncated = tmp_path / "truncated.truenorth"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    refused(truenorth(env, "restore", str(truncated), *restore), "damaged")

    def tamper(name: str, data: bytes) -> bytes:
        return data[:-1] + b"\x01" if name == "database.sqlite3" else data

    refused(
        truenorth(env, "restore", str(rewrite(archive, tamper)), *restore), "checksum of database.sqlite3"
    )

    stranger = tmp_path / "notes.txt"
    stranger.write_text("not a backup")
    refused(truenorth(env, "restore", str(stranger), *restore), "not a TrueNorth backup")

    mismatch = _env(instance, DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    refused(truenorth(mismatch, "restore", str(archive), *restore), "SQLite", "PostgreSQL")

    assert digest(instance / "truenorth.sqlite3") == before
    assert digest(instance / "encryption_key") == keys
    assert not list(instance.glob("*.before-restore-*"))


def test_without_keys_warns_and_a_restore_elsewhere_reports_the_unreadable_secrets(
    instance: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "nokeys.truenorth"
    done = ok(truenorth(_env(instance), "backup", str(archive), "--without-keys"))
    assert "WARNING: the backup holds no keys" in done.stderr and "WITHOUT the keys" in done.stdout
    assert f"Not in the backup: the DuckDB files in {instance / 'duckdb'}" in done.stderr  # the demo's
    with tarfile.open(archive) as opened:
        assert opened.getnames() == ["manifest.json", "database.sqlite3"]
        reader = opened.extractfile("manifest.json")
        assert reader is not None and json.loads(reader.read())["keys"] is None

    fresh = tmp_path / "fresh"
    done = ok(truenorth(_env(fresh), "restore", str(archive), "--yes"))
    assert re.search(r"(\d+) of \1 sealed secrets cannot be decrypted", done.stderr), done.stderr
    assert secrets_of(_env(fresh)) == {"webhook_secret": None, "source_config": None}


def test_keys_from_the_environment_are_compared_by_fingerprint_and_never_printed(
    instance: Path, tmp_path: Path
) -> None:
    archive = tmp_path / "b.truenorth"
    ok(truenorth(_env(instance), "backup", str(archive), "--passphrase-env", "BACKUP_PASSPHRASE"))
    from truenorth.ops.backup import fingerprint

    secret, key = (instance / "secret_key").read_text(), (instance / "encryption_key").read_text()
    fresh = tmp_path / "fresh"
    elsewhere = _env(
        fresh, SECRET_KEY="another-secret-key-" + "x" * 40, TRUENORTH_ENCRYPTION_KEY="another-key"
    )
    done = ok(truenorth(elsewhere, "restore", str(archive), "--passphrase-env", "BACKUP_PASSPHRASE", "--yes"))
    output = done.stdout + done.stderr
    assert f"Set SECRET_KEY to the backup's key, fingerprint {fingerprint(secret)}" in output
    assert (
        f"TRUENORTH_ENCRYPTION_KEY to include the backup's keys with fingerprints {fingerprint(key)}"
        in output
    )
    assert re.search(r"(\d+) of \1 sealed secrets cannot be decrypted", output), output
    assert secret not in output and key not in output
    assert not (fresh / "encryption_key").exists() and not (fresh / "secret_key").exists()  # env rules

    matching = _env(fresh, SECRET_KEY=secret, TRUENORTH_ENCRYPTION_KEY=f"new-key-in-front,{key}")
    done = ok(truenorth(matching, "restore", str(archive), "--passphrase-env", "BACKUP_PASSPHRASE", "--yes"))
    assert "SECRET_KEY (environment) is the backup's." in done.stdout
    assert re.search(r"All \d+ sealed secrets decrypt with the current keys", done.stdout), done.stdout


def test_a_restore_refuses_a_database_in_use_and_a_backup_refuses_to_overwrite(
    instance: Path, tmp_path: Path
) -> None:
    env = _env(instance)
    archive = tmp_path / "b.truenorth"
    ok(truenorth(env, "backup", str(archive), "--without-keys"))
    refused(truenorth(env, "backup", str(archive), "--without-keys"), "exists", "--force")
    ok(truenorth(env, "backup", str(archive), "--without-keys", "--force"))
    short = _env(instance, BACKUP_PASSPHRASE="short")
    refused(
        truenorth(short, "backup", str(tmp_path / "c"), "--passphrase-env", "BACKUP_PASSPHRASE"), "too short"
    )
    refused(
        truenorth(env, "backup", str(tmp_path / "c"), "--passphrase-env", "UNSET_VARIABLE_XYZ"), "not set"
    )

    server = sqlite3.connect(instance / "truenorth.sqlite3")  # as `truenorth serve` holds it
    server.execute("PRAGMA journal_mode=WAL")
    server.execute("SELECT count(*) FROM accounts_user").fetchone()
    try:
        refused(truenorth(env, "restore", str(archive), "--yes"), "in use", "stop `truenorth serve`")
    finally:
        server.close()
    done = ok(truenorth(env, "restore", str(archive), "--yes"))
    assert "previous database is kept" in done.stdout
    assert len(list(instance.glob("truenorth.sqlite3.before-restore-*"))) == 1


# --- PostgreSQL ---------------------------------------------------------------------------------------------


def _pg_available() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except Exception:
        return False
    return True


def _pg(sql: str, url: str = PG_ADMIN) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(sql)


def pg_rows(url: str) -> Rows:
    import psycopg

    with psycopg.connect(url) as db:
        names = [r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {n: sorted(repr(r) for r in db.execute(f'SELECT * FROM "{n}"')) for n in names}


@pytest.fixture
def scratch_database() -> Iterator[str]:
    if not _pg_available():
        pytest.skip("no PostgreSQL server at 127.0.0.1:5432")
    name = f"test_backup_{os.getpid()}"
    _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_postgresql_backup_restores_every_row_into_an_empty_or_existing_database(
    scratch_database: str, tmp_path: Path
) -> None:
    url, name = scratch_database, scratch_database.rsplit("/", 1)[1]
    env = _env(tmp_path / "instance", url)
    ok(truenorth(env, "migrate"))
    sealed = json.loads(ok(_run(env, "truenorth.ops.tests.seed", "seed")).stdout.splitlines()[-1])
    archive = tmp_path / "pg.truenorth"
    ok(truenorth(env, "backup", str(archive), "--passphrase-env", "BACKUP_PASSPHRASE"))
    before = pg_rows(url)
    assert before["history_historyentry"] and before["measures_observation"]

    # Wiped: an empty database, a fresh data directory.
    _pg(f'DROP DATABASE "{name}" WITH (FORCE)')
    _pg(f'CREATE DATABASE "{name}"')
    fresh = _env(tmp_path / "fresh", url)
    restore = ("--passphrase-env", "BACKUP_PASSPHRASE", "--yes")
    done = ok(truenorth(fresh, "restore", str(archive), *restore))
    assert "sealed secrets decrypt with the current keys" in done.stdout
    assert pg_rows(url) == before
    assert secrets_of(fresh) == {k: sealed[k] for k in ("webhook_secret", "source_config")}

    # Into the existing database, changed since (a new table, new rows in an append-only one): back as it was.
    _pg("CREATE TABLE stray (n int); INSERT INTO stray VALUES (1)", url)
    _pg(
        "INSERT INTO history_historyentry (object_type, object_id, object_repr, action, changes, actor_name, at, "
        "actor_id, organisation_id) SELECT object_type, object_id, object_repr, action, changes, actor_name, at, "
        "actor_id, organisation_id FROM history_historyentry LIMIT 1",
        url,
    )
    ok(truenorth(fresh, "restore", str(archive), *restore))
    assert pg_rows(url) == before

    # A restore that fails (here: the rows do not match the manifest) is rolled back whole.
    _pg("CREATE TABLE stray (n int)", url)
    bad = with_manifest(archive, lambda m: m["counts"].update(accounts_user=m["counts"]["accounts_user"] + 1))
    refused(truenorth(fresh, "restore", str(bad), *restore), "rolled back", "accounts_user")
    assert pg_rows(url) == {**before, "stray": []}

    # Consistent while another connection writes: both rows of each transaction, or neither.
    import psycopg

    _pg("DROP TABLE stray; CREATE TABLE probe_a (n int); CREATE TABLE probe_b (n int)", url)
    stop, written = threading.Event(), [0]

    def write() -> None:
        with psycopg.connect(url, autocommit=True) as db:
            while not stop.is_set():
                with db.transaction():
                    db.execute("INSERT INTO probe_a VALUES (%s)", (written[0],))
                    time.sleep(0.001)
                    db.execute("INSERT INTO probe_b VALUES (%s)", (written[0],))
                written[0] += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while written[0] < 20:
            time.sleep(0.01)
        at_start = written[0]
        busy = tmp_path / "busy.truenorth"
        ok(truenorth(env, "backup", str(busy), "--without-keys"))
        assert written[0] > at_start
    finally:
        stop.set()
        writer.join()
    ok(truenorth(fresh, "restore", str(busy), "--yes"))
    with psycopg.connect(url) as db:
        a = db.execute("SELECT count(*), max(n) FROM probe_a").fetchone()
        b = db.execute("SELECT count(*), max(n) FROM probe_b").fetchone()
    assert a == b and a is not None and at_start <= a[0] < written[0]


# --- truenorth check --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_health_check_warns_until_a_recent_backup_is_recorded(settings: Any, tmp_path: Path) -> None:
    import datetime as dt

    from django.db import connection

    from truenorth.ops.backup import LAST_BACKUP, backup_checks

    settings.DATA_DIR = tmp_path
    first, *tools = backup_checks()
    assert (first.status, first.name) == ("warning", "backup") and "no backup" in first.detail

    def record(days: int) -> None:
        at = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat(timespec="seconds")
        (tmp_path / LAST_BACKUP).write_text(json.dumps({"at": at, "file": "/srv/b.truenorth", "keys": True}))

    record(8)
    first, *_ = backup_checks()
    assert first.status == "warning" and "over 7 days ago" in first.detail
    record(1)
    first, *_ = backup_checks()
    assert first.status == "ok" and "/srv/b.truenorth (with the keys)" in first.detail
    if connection.vendor == "postgresql":
        assert [(t.name, t.status) for t in tools] == [("backup tools", "ok")]
    else:
        assert tools == []
