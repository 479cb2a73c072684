"""`truenorth restore`: a backup made by `truenorth backup` (truenorth/ops/backup.py) back into the database.

Checked before the database is touched: the archive opens and its manifest is of a known format, the vendor
is the configured database's, no migration in the backup is unknown to this TrueNorth (a newer schema:
upgrade first), the passphrase opens the keys, and every member's SHA-256 matches the manifest.

SQLite: the server must be stopped (a database still open elsewhere is refused). The backup is written to
a temporary file beside the database, checked (SQLite's quick check, the manifest's rows per table), and
only then renamed over the database in one step; the previous file is kept beside it.
PostgreSQL: `pg_restore --clean --if-exists --no-owner` streamed into `psql --single-transaction`, which
first drops the schema's tables and last checks the rows per table: any error rolls everything back.
The append-only triggers do not get in the way: tables are dropped and created, never updated or deleted.

Keys: written back to the data directory's `secret_key` and `encryption_key` when the instance generated
them there; when the environment sets them, only their fingerprints are compared and printed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from rich.console import Console

from truenorth.ops.backup import (
    DATABASE,
    FORMAT,
    KEYS,
    MANIFEST,
    SEALED_PURPOSES,
    BackupError,
    Keys,
    check_pg_tools,
    duckdb_warning,
    fingerprint,
    keys_from_environment,
    open_keys,
    pg_environment,
    progress_bar,
    sqlite_counts,
    sqlite_path,
    tool,
)

_DAMAGED = (tarfile.TarError, OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError)


def _reason(exc: BaseException) -> str:
    """An exception as one short line (tarfile's messages run over several)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{exc.__class__.__name__}: {lines[0].rstrip(':') if lines else 'no detail'}"


@dataclass
class RestoreResult:
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@contextmanager
def _open(file: str) -> Iterator[tarfile.TarFile]:
    path = Path(file).expanduser()
    if not path.is_file():
        raise BackupError(f"{file} does not exist or is not a file")
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            yield archive
    except BackupError:
        raise
    except _DAMAGED as exc:
        raise BackupError(f"{file} is not a TrueNorth backup or is damaged ({_reason(exc)})") from None


def read_manifest(file: str) -> dict[str, Any]:
    """The backup's manifest, checked for shape; nothing else is read."""
    with _open(file) as archive:
        member = archive.next()
        if member is None or member.name != MANIFEST or not member.isfile():
            raise BackupError(f"{file} is not a TrueNorth backup (no {MANIFEST} first)")
        reader = archive.extractfile(member)
        assert reader is not None
        try:
            manifest = json.loads(reader.read())
        except _DAMAGED:
            raise BackupError(f"{file} is damaged: its {MANIFEST} is not JSON") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("format"), int):
        raise BackupError(f"{file} is damaged: its {MANIFEST} has no format version")
    if manifest["format"] > FORMAT:
        raise BackupError(
            f"{file} is backup format {manifest['format']}, newer than this TrueNorth reads ({FORMAT}): "
            "upgrade TrueNorth first"
        )
    shapes = {"vendor": str, "migrations": dict, "counts": dict, "files": dict}
    for key, kind in shapes.items():
        if not isinstance(manifest.get(key), kind):
            raise BackupError(f"{file} is damaged: its {MANIFEST} has no valid “{key}”")
    if manifest["vendor"] not in DATABASE:
        raise BackupError(f"{file} is a backup of an unsupported database ({manifest['vendor']})")
    return manifest


def _schema_check(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """Refuse a backup with a migration this code does not know; return the ones it has and the backup
    lacks (an older schema: `truenorth migrate` brings it up to date)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    known = set(loader.disk_migrations)
    applied = {(str(app), str(name)) for app, names in manifest["migrations"].items() for name in names}
    for app, name in sorted(applied):
        if (app, name) not in known:
            raise BackupError(
                f"the backup is from a newer schema: migration {app}.{name} is unknown to TrueNorth "
                f"{_version()}; upgrade TrueNorth first"
            )
    pending = []
    for key, migration in loader.graph.nodes.items():
        replaced = getattr(migration, "replaces", None) or []
        if key not in applied and not (replaced and all(tuple(r) in applied for r in replaced)):
            pending.append(key)
    return sorted(pending)


def _version() -> str:
    import truenorth

    return truenorth.__version__


def _copy_member(reader: IO[bytes], out: IO[bytes], size: int, name: str, console: Console) -> str:
    digest = hashlib.sha256()
    with progress_bar(console) as progress:
        task = progress.add_task(f"Unpacking {name}", total=size)
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
            progress.advance(task, len(chunk))
    return digest.hexdigest()


def _unpack(
    file: str, manifest: dict[str, Any], destination: Path, console: Console, passphrase: str | None
) -> Keys | None:
    """Write the database member to `destination`, both it and the keys checked against the manifest's
    checksums; the keys (archived first) are opened with `passphrase` before the database is unpacked, and
    returned (None when the backup has none or no passphrase is given)."""
    expected = manifest["files"]
    wanted = DATABASE[manifest["vendor"]]
    keys: bytes | None = None
    opened: Keys | None = None
    found = False
    with _open(file) as archive:
        try:
            for member in archive:
                if member.name == KEYS and member.isfile():
                    reader = archive.extractfile(member)
                    assert reader is not None
                    keys = reader.read()
                    if hashlib.sha256(keys).hexdigest() != expected.get(KEYS):
                        raise BackupError(
                            f"{file} is damaged: the checksum of {KEYS} does not match its manifest"
                        )
                    if passphrase is not None:
                        opened = open_keys(keys, manifest["keys"], passphrase)
                elif member.name == wanted and member.isfile():
                    reader = archive.extractfile(member)
                    assert reader is not None
                    with destination.open("wb") as out:
                        digest = _copy_member(reader, out, member.size, wanted, console)
                        out.flush()
                        os.fsync(out.fileno())
                    if digest != expected.get(wanted):
                        raise BackupError(
                            f"{file} is damaged: the checksum of {wanted} does not match its manifest"
                        )
                    found = True
        except BackupError:
            raise
        except _DAMAGED as exc:
            raise BackupError(f"{file} is damaged ({_reason(exc)})") from None
    if not found:
        raise BackupError(f"{file} is damaged: it holds no {wanted}")
    if manifest.get("keys") and keys is None:
        raise BackupError(f"{file} is damaged: its manifest lists keys but it holds no {KEYS}")
    return opened


def _counts_differ(expected: dict[str, Any], found: dict[str, int]) -> str | None:
    for table, rows in sorted(expected.items()):
        if found.get(table) != rows:
            return f"table {table} has {found.get(table, 'no')} rows, the manifest says {rows}"
    return None


# --- SQLite -----------------------------------------------------------------------------------------------


def _take_sqlite(target: Path) -> sqlite3.Connection | None:
    """An exclusive hold on the current database file, or a refusal when another process has it open."""
    if not target.exists():
        return None
    hold = sqlite3.connect(target, timeout=1, isolation_level=None)
    try:
        mode = hold.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        if str(mode).lower() != "delete":
            raise sqlite3.OperationalError("database is locked")
        hold.execute("BEGIN EXCLUSIVE")
    except sqlite3.OperationalError:
        hold.close()
        raise BackupError(
            f"the database {target} is in use: stop `truenorth serve` and `truenorth worker`, then restore again"
        ) from None
    except sqlite3.DatabaseError as exc:
        hold.close()
        raise BackupError(
            f"the current database {target} cannot be opened ({exc}): move it away first"
        ) from None
    return hold


def _restore_sqlite(
    file: str, manifest: dict[str, Any], console: Console, result: RestoreResult, passphrase: str | None
) -> Keys | None:
    target = sqlite_path()
    if not target.parent.is_dir():
        target.parent.mkdir(parents=True, mode=0o700)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.restore-", dir=target.parent)
    os.close(fd)
    temporary = Path(name)
    try:
        keys = _unpack(file, manifest, temporary, console, passphrase)
        copy = sqlite3.connect(temporary)
        try:
            if (check := copy.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
                raise BackupError(f"{file} is damaged: its database failed SQLite's check ({check})")
            if problem := _counts_differ(manifest["counts"], sqlite_counts(copy)):
                raise BackupError(f"{file} is damaged: {problem}")
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{file} is damaged: its database cannot be read ({exc})") from None
        finally:
            copy.close()
        hold = _take_sqlite(target)
        try:
            if hold is not None:
                kept = target.with_name(f"{target.name}.before-restore-{manifest_stamp()}")
                try:
                    os.link(target, kept)
                except OSError:  # a file system without hard links
                    shutil.copy2(target, kept)
                result.lines.append(f"The previous database is kept as {kept} (delete it when satisfied).")
            os.replace(temporary, target)
        finally:
            if hold is not None:
                hold.close()
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        return keys
    finally:
        temporary.unlink(missing_ok=True)


def manifest_stamp() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


# --- PostgreSQL -------------------------------------------------------------------------------------------


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pg_scripts(schema: str, counts: dict[str, Any]) -> tuple[str, str]:
    """SQL run in the restore's transaction before the dump (drop the schema's tables, so nothing of a
    newer or other schema stays) and after it (the manifest's rows per table, else roll back)."""
    drop = (
        "DO $$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = "  # noqa: S608
        f"{_literal(schema)} LOOP EXECUTE format('DROP TABLE IF EXISTS %I.%I CASCADE', {_literal(schema)}, t); "
        "END LOOP; END $$;"
    )
    checks = []
    for table, rows in sorted(counts.items()):
        checks.append(
            f"SELECT count(*) INTO n FROM {_ident(schema)}.{_ident(table)}; "  # noqa: S608 - quoted names
            f"IF n <> {int(rows)} THEN RAISE EXCEPTION "
            f"'table % has % rows, the manifest says %', {_literal(table)}, n, {int(rows)}; END IF;"
        )
    check = "DO $$ DECLARE n bigint; BEGIN " + " ".join(checks) + " END $$;"
    return drop, check


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _restore_postgres(
    file: str, manifest: dict[str, Any], console: Console, result: RestoreResult, passphrase: str | None
) -> Keys | None:
    server = check_pg_tools()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        schema = str(cursor.fetchone()[0])
    if manifest.get("schema", schema) != schema:
        raise BackupError(
            f"the backup is of the schema {manifest['schema']}, the database's current schema is {schema}: "
            "restore into a database whose search path starts with the same schema"
        )
    if int(manifest.get("server_major", server)) > server:
        result.warnings.append(
            f"The backup comes from PostgreSQL {manifest['server_major']}, this server is {server}: "
            "restoring into an older server may fail."
        )
    connection.close()  # the restore drops and creates tables: hold no connection meanwhile
    with tempfile.TemporaryDirectory(prefix="truenorth-restore-") as scratch:
        dump = Path(scratch) / DATABASE["postgresql"]
        keys = _unpack(file, manifest, dump, console, passphrase)
        drop, check = _pg_scripts(schema, manifest["counts"])
        env = pg_environment()
        with console.status("Restoring into PostgreSQL in one transaction…"):
            dumper = subprocess.Popen(  # noqa: S603 - fixed programs, arguments are not from the user
                [
                    tool("pg_restore"),
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--no-privileges",
                    "--file=-",
                    str(dump),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
            loader = subprocess.run(  # noqa: S603
                [
                    tool("psql"),
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "--single-transaction",
                    "-c",
                    drop,
                    "-f",
                    "-",
                    "-c",
                    check,
                ],
                stdin=dumper.stdout,
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            assert dumper.stdout is not None
            dumper.stdout.close()
            dumper_err = dumper.stderr.read().decode(errors="replace") if dumper.stderr else ""
            dumper.wait()
        if dumper.returncode != 0 or loader.returncode != 0:
            text = loader.stderr if loader.returncode != 0 else dumper_err
            lines = [line for line in text.splitlines() if line.strip()]
            errors = [line[line.index("ERROR:") :] for line in lines if "ERROR:" in line] or lines
            reason = (
                " ".join(errors[-1].split())
                if errors
                else f"exit code {loader.returncode or dumper.returncode}"
            )
            raise BackupError(f"the restore failed and was rolled back, the database is unchanged: {reason}")
    return keys


# --- keys -------------------------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(name, path)


def _apply_keys(keys: Keys, result: RestoreResult) -> list[str]:
    """Put the backup's keys where this instance reads them; return the encryption keys in effect."""
    from_env = keys_from_environment()
    data_dir = Path(settings.DATA_DIR)
    if from_env["SECRET_KEY"]:
        if fingerprint(settings.SECRET_KEY) == fingerprint(keys.secret_key):
            result.lines.append("SECRET_KEY (environment) is the backup's.")
        else:
            result.warnings.append(
                f"Set SECRET_KEY to the backup's key, fingerprint {fingerprint(keys.secret_key)} "
                f"(now {fingerprint(settings.SECRET_KEY)}); until then sessions and links signed before are refused."
            )
    else:
        _write_private(data_dir / "secret_key", keys.secret_key)
        result.lines.append(f"Wrote the backup's secret key to {data_dir / 'secret_key'}.")
    current = list(settings.TRUENORTH_ENCRYPTION_KEYS)
    if from_env["TRUENORTH_ENCRYPTION_KEY"]:
        have = {fingerprint(k) for k in current}
        missing = [fingerprint(k) for k in keys.encryption_keys if fingerprint(k) not in have]
        if missing:
            result.warnings.append(
                "Set TRUENORTH_ENCRYPTION_KEY to include the backup's keys with fingerprints "
                + ", ".join(missing)
                + f" (now {', '.join(fingerprint(k) for k in current)})."
            )
        else:
            result.lines.append("TRUENORTH_ENCRYPTION_KEY (environment) holds the backup's keys.")
        return current
    _write_private(data_dir / "encryption_key", keys.encryption_keys[0])
    result.lines.append(f"Wrote the backup's encryption key to {data_dir / 'encryption_key'}.")
    if len(keys.encryption_keys) > 1:
        result.warnings.append(
            "The backup's instance had several encryption keys (a rotation): values sealed with the older ones "
            "need TRUENORTH_ENCRYPTION_KEY set to all of them, fingerprints "
            + ", ".join(fingerprint(k) for k in keys.encryption_keys)
            + "."
        )
    return keys.encryption_keys[:1]


def sealed_values() -> Iterator[tuple[str, Any, str]]:
    """(model label, primary key, token) of every stored value sealed with the encryption keys: the model
    fields named `…_encrypted` (data sources, webhooks, GitHub connections, two-factor devices…)."""
    from django.apps import apps

    tables = set(connection.introspection.table_names())
    for model in apps.get_models():
        if model._meta.db_table not in tables:  # an older schema: `truenorth migrate` creates it empty
            continue
        for f in model._meta.concrete_fields:
            if f.name.endswith("_encrypted"):
                for pk, token in model._base_manager.values_list("pk", f.name).iterator():
                    if token:
                        yield model._meta.label, pk, str(token)


def unreadable_secrets(encryption_keys: list[str]) -> tuple[int, list[str]]:
    """How many sealed values there are, and which of them none of `encryption_keys` opens."""
    import base64

    from cryptography.fernet import Fernet, InvalidToken, MultiFernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    openers = [
        MultiFernet(
            [
                Fernet(base64.urlsafe_b64encode(HKDF(hashes.SHA256(), 32, None, info).derive(k.encode())))
                for k in encryption_keys
            ]
        )
        for info in SEALED_PURPOSES
    ]
    total, bad = 0, []
    for label, pk, token in sealed_values():
        total += 1
        for opener in openers:
            try:
                opener.decrypt(token.encode())
                break
            except (InvalidToken, ValueError):
                continue
        else:
            bad.append(f"{label} #{pk}")
    return total, bad


# --- the whole restore ------------------------------------------------------------------------------------


def restore(
    file: str, passphrase: str | None, *, use_keys: bool = True, console: Console | None = None
) -> RestoreResult:
    """Restore `file` into the configured database (see the module's docstring)."""
    console = console or Console(stderr=True)
    manifest = read_manifest(file)
    vendor = connection.vendor
    if manifest["vendor"] != vendor:
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
        raise BackupError(
            f"the backup is of a {names.get(manifest['vendor'], manifest['vendor'])} database and this instance uses "
            f"{names.get(vendor, vendor)}: restore it into the same kind of database (set DATABASE_URL)"
        )
    pending = _schema_check(manifest)
    has_keys = bool(manifest.get("keys"))
    if has_keys and use_keys and passphrase is None:
        raise BackupError("the backup's keys are encrypted: give the passphrase (or pass --without-keys)")
    result = RestoreResult()
    secret = passphrase if has_keys and use_keys else None
    if vendor == "sqlite":
        keys = _restore_sqlite(file, manifest, console, result, secret)
    else:
        keys = _restore_postgres(file, manifest, console, result, secret)
    rows = sum(int(n) for n in manifest["counts"].values())
    result.lines.insert(
        0,
        f"Restored {rows} rows in {len(manifest['counts'])} tables from the backup of {manifest.get('created_at')}.",
    )
    effective = list(settings.TRUENORTH_ENCRYPTION_KEYS)
    if keys is not None:
        effective = _apply_keys(keys, result)
    elif has_keys:
        result.warnings.append(
            "The backup's keys were left out (--without-keys): sealed secrets are readable only with this "
            "instance's current keys."
        )
    else:
        result.warnings.append(
            "The backup holds no keys: sealed secrets are readable only if this instance has the original "
            "SECRET_KEY and TRUENORTH_ENCRYPTION_KEY."
        )
    if pending:
        result.warnings.append(
            f"The backup's schema is older ({len(pending)} migration{'s' if len(pending) != 1 else ''} to apply, "
            f"e.g. {pending[0][0]}.{pending[0][1]}): "
            "run `truenorth migrate` now."
        )
    try:
        total, bad = unreadable_secrets(effective)
    except Exception as exc:  # an older schema may lack a column the models name: say so, do not fail
        result.warnings.append(
            f"Sealed secrets not checked ({exc.__class__.__name__}); check after `truenorth migrate`."
        )
    else:
        if bad:
            result.warnings.append(
                f"{len(bad)} of {total} sealed secrets cannot be decrypted with the current keys: "
                + ", ".join(bad[:10])
                + ("…" if len(bad) > 10 else "")
            )
        else:
            result.lines.append(f"All {total} sealed secrets decrypt with the current keys.")
    if vendor == "sqlite":
        result.lines.append(
            "Start `truenorth serve` and `truenorth worker` again; `truenorth check` reports the state."
        )
    if note := duckdb_warning():
        result.warnings.append(note.replace("Not in the backup", "Not restored"))
    result.warnings.append(
        "The job queue is not part of a backup: jobs queued before it may need to be asked again."
    )
    return result
