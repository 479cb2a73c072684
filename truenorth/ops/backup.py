"""`truenorth backup` and `truenorth restore` (issue 13): the database with the keys that read its secrets.

A backup is one gzip-compressed tar file, created 0600, holding:

- `manifest.json`: the format version, TrueNorth's version, the database vendor, when it was made, the
  migrations applied per app, the rows per table (checked again after a restore), the SHA-256 of every
  other member, and whether the keys are included (with the key derivation's parameters);
- `database.sqlite3` (SQLite's online backup API: a consistent copy while the server writes, WAL or not)
  or `database.pgdump` (`pg_dump --format=custom` in the snapshot where the manifest's counts are taken);
- `keys.enc` unless `--without-keys`: `SECRET_KEY` and the `TRUENORTH_ENCRYPTION_KEY` keys (everything
  sealed with them: data-source settings, webhook secrets, GitHub tokens, two-factor secrets), encrypted
  with AES-256-GCM under a key derived from a passphrase with scrypt.

Not in the backup: the DuckDB directories (files the organisations own; listed in a warning) and the job
queue (`jobs.sqlite3` or Redis: work in flight, not data). The restore is in truenorth/ops/restore.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from django.conf import settings
from django.db import connection, transaction
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

import truenorth
from truenorth.core.errors import DomainError
from truenorth.core.health import CheckResult

FORMAT = 1
MANIFEST = "manifest.json"
KEYS = "keys.enc"
DATABASE = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
MIN_PASSPHRASE = 10
# scrypt's cost: 2**16 x 8 x 128 bytes = 64 MiB and about a fifth of a second; stored in the manifest, so
# a later version can raise it and still read older backups.
SCRYPT = {"n": 2**16, "r": 8, "p": 1}
_AAD = b"truenorth backup keys v1"
LAST_BACKUP = "last_backup.json"
PG_TOOLS = ("pg_dump", "pg_restore", "psql")
# The purposes `core.crypto` derives keys for (HKDF `info`): a sealed value is readable when one opens it.
SEALED_PURPOSES = (b"truenorth data source credentials v1", b"truenorth two-factor secrets v1")


class BackupError(DomainError):
    """A backup or restore that cannot go on: one line for the CLI (exit 2)."""


@dataclass(frozen=True)
class Keys:
    secret_key: str
    encryption_keys: list[str]

    def as_json(self) -> bytes:
        return json.dumps({"secret_key": self.secret_key, "encryption_keys": self.encryption_keys}).encode()


@dataclass
class BackupResult:
    path: Path
    size: int
    tables: int
    rows: int
    keys_included: bool
    warnings: list[str] = field(default_factory=list)


def fingerprint(key: str) -> str:
    """A short, one-way name for a key, safe to print and compare (never the key itself)."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def current_keys() -> Keys:
    return Keys(settings.SECRET_KEY, list(settings.TRUENORTH_ENCRYPTION_KEYS))


def keys_from_environment() -> dict[str, bool]:
    """Which keys the environment sets (the rest were generated into the data directory)."""
    return {
        "SECRET_KEY": bool(os.environ.get("SECRET_KEY", "")),
        "TRUENORTH_ENCRYPTION_KEY": any(
            k.strip() for k in os.environ.get("TRUENORTH_ENCRYPTION_KEY", "").split(",")
        ),
    }


# --- keys under a passphrase ------------------------------------------------------------------------------


def _derive(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"])
    return kdf.derive(passphrase.encode())


def check_passphrase(passphrase: str) -> None:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(f"the passphrase is too short: use at least {MIN_PASSPHRASE} characters")


def seal_keys(keys: Keys, passphrase: str) -> tuple[bytes, dict[str, Any]]:
    """The keys encrypted under the passphrase, and what the manifest records to open them again."""
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    blob = AESGCM(_derive(passphrase, salt, SCRYPT)).encrypt(nonce, keys.as_json(), _AAD)
    b64 = base64.b64encode
    return blob, {
        "kdf": "scrypt",
        **SCRYPT,
        "salt": b64(salt).decode(),
        "cipher": "AES-256-GCM",
        "nonce": b64(nonce).decode(),
    }


def open_keys(blob: bytes, params: dict[str, Any], passphrase: str) -> Keys:
    try:
        salt, nonce = base64.b64decode(params["salt"]), base64.b64decode(params["nonce"])
        cost = {k: int(params[k]) for k in ("n", "r", "p")}
    except (KeyError, ValueError, TypeError):
        raise BackupError("the backup's manifest is damaged (key parameters)") from None
    try:
        data = json.loads(AESGCM(_derive(passphrase, salt, cost)).decrypt(nonce, blob, _AAD))
    except InvalidTag:
        raise BackupError("wrong passphrase: the keys in the backup cannot be decrypted") from None
    return Keys(str(data["secret_key"]), [str(k) for k in data["encryption_keys"]])


# --- the database's consistent copy ----------------------------------------------------------------------


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sqlite_path() -> Path:
    return Path(str(settings.DATABASES["default"]["NAME"]))


def sqlite_counts(db: sqlite3.Connection) -> dict[str, int]:
    names = [
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    return {n: int(db.execute(f"SELECT count(*) FROM {_quote(n)}").fetchone()[0]) for n in names}  # noqa: S608


def _migrations(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    for app, name in rows:
        applied.setdefault(app, []).append(name)
    return applied


def _sqlite_snapshot(target: Path) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Copy the live SQLite database with the online backup API in one step: one read transaction, so the
    copy is one moment even while the server writes (in WAL mode, writers go on meanwhile)."""
    source_path = sqlite_path()
    if not source_path.is_file():
        raise BackupError(f"there is no database at {source_path}: nothing to back up")
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy, pages=-1)
        copy.execute("PRAGMA journal_mode=DELETE")  # a file that stands alone, without -wal
        if (check := copy.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
            raise BackupError(f"the database failed SQLite's check: {check}")
        rows = copy.execute("SELECT app, name FROM django_migrations ORDER BY id").fetchall()
        return _migrations(rows), sqlite_counts(copy)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the SQLite database could not be copied: {exc}") from None
    finally:
        copy.close()
        source.close()


def pg_environment() -> dict[str, str]:
    """The connection for pg_dump, pg_restore and psql as PG* variables (never the password in argv)."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)  # libpq reads PG* variables the way Django's own connection does
    pairs = {
        "PGHOST": db.get("HOST"),
        "PGPORT": db.get("PORT"),
        "PGUSER": db.get("USER"),
        "PGDATABASE": db.get("NAME"),
    }
    pairs["PGPASSWORD"] = db.get("PASSWORD")
    options = db.get("OPTIONS") or {}
    for option, variable in (
        ("sslmode", "PGSSLMODE"),
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
        ("connect_timeout", "PGCONNECT_TIMEOUT"),
        ("options", "PGOPTIONS"),
    ):
        pairs[variable] = options.get(option)
    env.update({k: str(v) for k, v in pairs.items() if v not in (None, "")})
    env["PGAPPNAME"] = "truenorth-backup"
    return env


def tool(name: str) -> str:
    """The PostgreSQL client program's full path."""
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not installed: install the PostgreSQL client tools (e.g. postgresql-client)"
        )
    return path


def _tool_major(name: str) -> int:
    path = tool(name)
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout  # noqa: S603
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    if match is None:
        raise BackupError(f"{name} --version said {out.strip()!r}: not a PostgreSQL client")
    return int(match.group(1))


def check_pg_tools() -> int:
    """The PostgreSQL client tools are installed and at least the server's version: the server's major."""
    connection.ensure_connection()
    server = int(connection.pg_version) // 10000  # type: ignore[attr-defined]
    for name in PG_TOOLS:
        if (major := _tool_major(name)) < server:
            raise BackupError(
                f"{name} {major} cannot work with the PostgreSQL {server} server: install client tools {server} or newer"
            )
    return server


def _run(args: list[str], what: str, **kwargs: Any) -> None:
    done = subprocess.run(args, env=pg_environment(), capture_output=True, text=True, check=False, **kwargs)  # noqa: S603
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise BackupError(f"{what} failed: {lines[-1] if lines else f'exit code {done.returncode}'}")


def _pg_snapshot(target: Path) -> tuple[dict[str, list[str]], dict[str, int], str, int]:
    """pg_dump in the snapshot of a repeatable-read transaction that also counts the rows and reads the
    migrations: the dump and the manifest describe the same moment. Returns the schema and server major."""
    server = check_pg_tools()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot(), current_schema()")
        snapshot, schema = cursor.fetchone()
        _run(
            [
                tool("pg_dump"),
                "--format=custom",
                f"--snapshot={snapshot}",
                "--no-owner",
                "--no-privileges",
                f"--file={target}",
            ],
            "pg_dump",
        )
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        )
        counts = {}
        for (name,) in cursor.fetchall():
            cursor.execute(f"SELECT count(*) FROM {_quote(name)}")  # noqa: S608 - a table name from the catalogue
            counts[name] = int(cursor.fetchone()[0])
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY id")
        migrations = _migrations(cursor.fetchall())
    return migrations, counts, schema, server


# --- the archive ------------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Counting(io.RawIOBase):
    """A file read through a progress callback (bytes so far)."""

    def __init__(self, f: IO[bytes], advance: Callable[[int], None]) -> None:
        self._f, self._advance = f, advance

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._f.read(size)
        self._advance(len(data))
        return data


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, int(dt.datetime.now(dt.UTC).timestamp())
    archive.addfile(info, io.BytesIO(data))


def _write_archive(
    path: Path, manifest: dict[str, Any], database: Path, keys: bytes | None, console: Console
) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as archive:
        _add(archive, MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
        if keys is not None:
            _add(archive, KEYS, keys)
        info = archive.gettarinfo(str(database), arcname=DATABASE[manifest["vendor"]])
        info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
        with progress_bar(console) as progress, database.open("rb") as f:
            task = progress.add_task("Compressing the database", total=info.size)
            archive.addfile(info, _Counting(f, lambda n: progress.advance(task, n)))
        raw.flush()
        os.fsync(raw.fileno())


@contextmanager
def _scratch(near: Path) -> Iterator[Path]:
    """A private scratch directory next to `near` (same file system, so the final rename is atomic)."""
    directory = Path(tempfile.mkdtemp(prefix=".truenorth-backup-", dir=near))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def duckdb_warning() -> str | None:
    present = [str(d) for d in settings.TRUENORTH_DUCKDB_DIRS if d.is_dir() and any(d.rglob("*.duckdb"))]
    if not present:
        return None
    return (
        "Not in the backup: the DuckDB files in "
        + ", ".join(present)
        + " (the organisations' own data): back them up with the file system."
    )


def backup(
    file: str,
    passphrase: str | None,
    *,
    include_keys: bool = True,
    force: bool = False,
    console: Console | None = None,
) -> BackupResult:
    """Write a consistent backup of the database (and, under `passphrase`, its keys) to `file`."""
    console = console or Console(stderr=True)
    target = Path(file).expanduser().absolute()
    if target.is_dir():
        raise BackupError(f"{file} is a directory: give the backup file's name")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} does not exist")
    if target.exists() and not force:
        raise BackupError(f"{file} exists: choose another name, or pass --force to replace it")
    if include_keys:
        if passphrase is None:
            raise BackupError("a passphrase is needed to include the keys (or pass --without-keys)")
        check_passphrase(passphrase)
    vendor = connection.vendor
    if vendor not in DATABASE:
        raise BackupError(f"backups support SQLite and PostgreSQL, not {vendor}")
    with _scratch(target.parent) as scratch:
        database = scratch / DATABASE[vendor]
        extra: dict[str, Any] = {}
        with console.status("Copying the database in one consistent snapshot…"):
            if vendor == "sqlite":
                migrations, counts = _sqlite_snapshot(database)
            else:
                migrations, counts, schema, server = _pg_snapshot(database)
                extra = {"schema": schema, "server_major": server}
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "truenorth_version": truenorth.__version__,
            "vendor": vendor,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "migrations": migrations,
            "counts": counts,
            "files": {DATABASE[vendor]: sha256_file(database)},
            "keys": None,
            **extra,
        }
        blob = None
        if include_keys and passphrase is not None:
            with console.status("Encrypting the keys under the passphrase…"):
                blob, manifest["keys"] = seal_keys(current_keys(), passphrase)
            manifest["files"][KEYS] = hashlib.sha256(blob).hexdigest()
        partial = scratch / "archive.partial"
        _write_archive(partial, manifest, database, blob, console)
        os.replace(partial, target)
    target.chmod(0o600)
    warnings = []
    if not include_keys:
        warnings.append(
            "WARNING: the backup holds no keys (--without-keys). Keep SECRET_KEY and TRUENORTH_ENCRYPTION_KEY (or "
            f"the files secret_key and encryption_key in {settings.DATA_DIR}) safe yourself: without them, "
            "data-source settings, webhook secrets, GitHub tokens and two-factor secrets cannot be read after a restore."
        )
    if note := duckdb_warning():
        warnings.append(note)
    _record(target, manifest)
    return BackupResult(
        target, target.stat().st_size, len(counts), sum(counts.values()), include_keys, warnings
    )


def _record(target: Path, manifest: dict[str, Any]) -> None:
    """Remember the last backup in the data directory, for `truenorth check`."""
    record = {"at": manifest["created_at"], "file": str(target), "keys": manifest["keys"] is not None}
    try:
        path = Path(settings.DATA_DIR) / LAST_BACKUP
        path.write_text(json.dumps(record))
        path.chmod(0o600)
    except OSError:
        pass


BACKUP_MAX_AGE = dt.timedelta(days=7)


def backup_checks() -> list[CheckResult]:
    """`truenorth check`'s backup lines: the last backup `truenorth backup` recorded in the data directory
    (a warning when none or over a week old), and on PostgreSQL the client tools a backup needs."""
    results = []
    try:
        record = json.loads((Path(settings.DATA_DIR) / LAST_BACKUP).read_text())
        at = dt.datetime.fromisoformat(record["at"])
    except (OSError, ValueError, KeyError, TypeError):
        results.append(
            CheckResult(
                "backup", "warning", "no backup made from this data directory: run `truenorth backup FILE`"
            )
        )
    else:
        age = dt.datetime.now(dt.UTC) - at
        keys = "with the keys" if record.get("keys") else "WITHOUT the keys"
        detail = f"last {at:%Y-%m-%d %H:%M} UTC to {record.get('file')} ({keys})"
        if age > BACKUP_MAX_AGE:
            results.append(CheckResult("backup", "warning", f"{detail}: over {BACKUP_MAX_AGE.days} days ago"))
        else:
            results.append(CheckResult("backup", "ok", detail))
    if connection.vendor == "postgresql":
        try:
            server = check_pg_tools()
        except BackupError as exc:
            results.append(CheckResult("backup tools", "error", exc.message))
        except Exception as exc:  # no database: the database check says so
            results.append(CheckResult("backup tools", "warning", f"not checked ({exc.__class__.__name__})"))
        else:
            results.append(
                CheckResult("backup tools", "ok", f"pg_dump, pg_restore and psql for PostgreSQL {server}")
            )
    return results
