"""SQL data sources: connection settings encrypted at rest, and read-only, time-limited queries.

Kinds and their settings (the `config` dict; stored only as a Fernet token in `config_encrypted`):

- "duckdb": `{"path": "/dir/file.duckdb" or "" (an empty in-memory database), "files": [paths]}`. The
  query may read the listed Parquet/CSV files (or every file in a listed directory) itself, e.g.
  `SELECT day, revenue FROM read_parquet('/data/sales.parquet')`. Every path must lie inside one of
  `settings.TRUENORTH_DUCKDB_DIRS` (TRUENORTH_DUCKDB_DIRS): an organisation admin is not a server admin
  and must not read the server's own files.
- "postgres": `{"dsn": "postgres://user:password@host:5432/db"}`. Best practice: a role that can only
  read; TrueNorth enforces read-only anyway. TrueNorth's own database is refused as a source (it holds
  every organisation's data); keep other internal databases out of reach by network policy.

Read-only is enforced, not trusted:

- DuckDB: the query must be exactly one SELECT (DuckDB's own parser decides); the database file is
  attached READ_ONLY to an empty in-memory database; then file access outside the allowed paths,
  extension loading and installing, and every further configuration change are switched off
  (`enable_external_access=false`, `lock_configuration=true`), so `COPY … TO`, `ATTACH`, `INSTALL` or
  reading another file fail even if the parser let them through. A watchdog thread interrupts a query
  that runs longer than the source's timeout.
- PostgreSQL: the session starts with `default_transaction_read_only=on` and a `statement_timeout`;
  the query runs inside `BEGIN READ ONLY` as a subquery (`SELECT * FROM (<query>) LIMIT n`) and as a
  prepared statement, which the server refuses to split into several commands; then it is rolled back.

A query returns one row per observation: exactly two columns, a timestamp or date and a number.
Naive timestamps and dates are taken as UTC. Anything else is a clear `QueryFailed` error.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import decimal
import json
import math
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.measures.models import DataSource, DataSourceKind
from truenorth.orgs.models import Membership, Role
from truenorth.orgs.services import require_role

# History records these; never the configuration (it holds credentials).
SOURCE_FIELDS = ("name", "kind", "timeout_seconds")
MASK = "********"
MAX_QUERY_LENGTH = 20_000
MAX_TIMEOUT_SECONDS = 600
MAX_ERROR_LENGTH = 500
DEFAULT_LIMIT = 100_000
DUCKDB_MEMORY_LIMIT = "1GB"
_KDF_INFO = b"truenorth data source credentials v1"


class QueryFailed(ValidationFailed):
    """A data source query that could not run or returned the wrong thing (field "query")."""

    def __init__(self, message: str, field: str = "query") -> None:
        super().__init__(message, field=field)


class SourceUnavailable(QueryFailed):
    """The data source cannot be reached or opened (field "config")."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="config")


class QueryTimeout(QueryFailed):
    """The query ran longer than the source's time limit and was stopped."""


# --- encryption -----------------------------------------------------------------------------------


def _fernet() -> MultiFernet:
    """A MultiFernet over the configured keys (the first encrypts; all decrypt, for rotation)."""
    keys = []
    for raw in settings.TRUENORTH_ENCRYPTION_KEYS:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO).derive(raw.encode())
        keys.append(Fernet(base64.urlsafe_b64encode(derived)))
    if not keys:
        raise ValidationFailed("No encryption key is configured (TRUENORTH_ENCRYPTION_KEY).", field="config")
    return MultiFernet(keys)


def encrypt_config(config: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(config, sort_keys=True).encode()).decode()


def decrypt_config(source: DataSource) -> dict[str, Any]:
    """The source's settings in clear. Internal use only: never return it through an API or page."""
    try:
        data = json.loads(_fernet().decrypt(source.config_encrypted.encode()))
    except (InvalidToken, ValueError):
        raise SourceUnavailable(
            f"The settings of data source “{source.name}” cannot be decrypted: the encryption key "
            "(TRUENORTH_ENCRYPTION_KEY or the data directory's encryption_key file) has changed. "
            "Restore the old key, or enter the settings again."
        ) from None
    if not isinstance(data, dict):
        raise SourceUnavailable(f"The settings of data source “{source.name}” are damaged.")
    return data


def rotate_encryption(source: DataSource) -> None:
    """Re-encrypt with the first (current) key, after adding a new key in front of the old one."""
    source.config_encrypted = _fernet().rotate(source.config_encrypted.encode()).decode()
    source.save(update_fields=["config_encrypted"])


# --- configuration --------------------------------------------------------------------------------


def _allowed_roots() -> list[Path]:
    return [Path(d).resolve() for d in settings.TRUENORTH_DUCKDB_DIRS]


def _allowed_path(raw: Any, field: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationFailed("Give a file path.", field=field)
    if "\x00" in raw:
        raise ValidationFailed("Not a valid path.", field=field)
    path = Path(raw.strip()).expanduser()
    if not path.is_absolute():
        raise ValidationFailed(f"“{raw}” is not an absolute path (start it with /).", field=field)
    resolved = path.resolve()
    roots = _allowed_roots()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        where = ", ".join(str(r) for r in roots) or "(none configured)"
        raise ValidationFailed(
            f"“{raw}” is outside the directories DuckDB sources may use: {where} "
            "(set by the server's TRUENORTH_DUCKDB_DIRS).",
            field=field,
        )
    return str(resolved)


def _clean_duckdb(config: dict[str, Any]) -> dict[str, Any]:
    unknown = set(config) - {"path", "files"}
    if unknown:
        raise ValidationFailed(f"Unknown DuckDB setting(s): {', '.join(sorted(unknown))}.", field="config")
    raw_path = config.get("path") or ""
    path = _allowed_path(raw_path, "path") if str(raw_path).strip() else ""
    files = config.get("files") or []
    if isinstance(files, str):
        files = [line for line in files.replace(",", "\n").splitlines() if line.strip()]
    if not isinstance(files, list) or len(files) > 100:
        raise ValidationFailed("Give at most 100 file or directory paths.", field="files")
    return {"path": path, "files": [_allowed_path(f, "files") for f in files]}


def _clean_postgres(config: dict[str, Any]) -> dict[str, Any]:
    import psycopg

    unknown = set(config) - {"dsn"}
    if unknown:
        raise ValidationFailed(
            f"Unknown PostgreSQL setting(s): {', '.join(sorted(unknown))}.", field="config"
        )
    dsn = config.get("dsn")
    if not isinstance(dsn, str) or not dsn.strip():
        raise ValidationFailed("Give a connection string, e.g. postgres://user@host:5432/db.", field="dsn")
    dsn = dsn.strip()
    if not dsn.startswith(("postgres://", "postgresql://")):
        raise ValidationFailed("Use a postgres://user:password@host:port/database address.", field="dsn")
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        # The driver's message may quote the password: say only what to do.
        raise ValidationFailed(
            "Not a valid PostgreSQL address (percent-encode special characters in the password).",
            field="dsn",
        ) from None
    if not params.get("host") or not params.get("dbname"):
        raise ValidationFailed("The address needs a host and a database name.", field="dsn")
    if _is_app_database(params):
        raise ValidationFailed("TrueNorth's own database cannot be a data source.", field="dsn")
    return {"dsn": dsn}


_LOOPBACK = {"localhost", "127.0.0.1", "::1", ""}


def _app_database() -> dict[str, Any]:
    return dict(settings.DATABASES["default"])


def _is_app_database(params: dict[str, Any]) -> bool:
    """Whether a PostgreSQL address points at TrueNorth's own database (every organisation's data)."""
    own = _app_database()
    if own.get("ENGINE") != "django.db.backends.postgresql":
        return False

    def host(value: Any) -> str:
        text = str(value or "").strip().lower()
        return "localhost" if text in _LOOPBACK or text.startswith("/") else text

    return (
        host(params.get("host")) == host(own.get("HOST"))
        and str(params.get("port") or "5432") == str(own.get("PORT") or "5432")
        and str(params.get("dbname") or "") == str(own.get("NAME") or "")
    )


def clean_config(kind: str, config: Any) -> dict[str, Any]:
    """Validate a kind's settings and normalise them (absolute resolved paths, stripped DSN)."""
    if not isinstance(config, dict):
        raise ValidationFailed("Settings must be an object.", field="config")
    if kind == DataSourceKind.DUCKDB:
        return _clean_duckdb(config)
    if kind == DataSourceKind.POSTGRES:
        return _clean_postgres(config)
    raise ValidationFailed(f"'{kind}' is not one of: {', '.join(DataSourceKind.values)}.", field="kind")


def mask_dsn(dsn: str) -> str:
    """The address with its password replaced by a mask, for display."""
    import psycopg

    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return MASK
    user = params.get("user") or ""
    host = params.get("host") or ""
    port = params.get("port")
    auth = quote(str(user), safe="") + (f":{MASK}" if params.get("password") else "")
    shown = f"postgres://{auth + '@' if auth else ''}{host}{':' + str(port) if port else ''}"
    shown += f"/{quote(str(params.get('dbname') or ''), safe='')}"
    extra = {k: v for k, v in params.items() if k not in {"user", "password", "host", "port", "dbname"} and v}
    if extra:
        shown += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in sorted(extra.items()))
    return shown


def public_config(source: DataSource) -> dict[str, Any]:
    """What may be shown of a source's settings: DuckDB paths; a PostgreSQL address without password."""
    try:
        config = decrypt_config(source)
    except SourceUnavailable:
        return {}
    if source.kind == DataSourceKind.POSTGRES:
        return {"dsn": mask_dsn(str(config.get("dsn", "")))}
    return {"path": config.get("path", ""), "files": list(config.get("files", []))}


def _keep_password(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """An edited DSN whose password is still the mask keeps the stored password."""
    import psycopg

    dsn = new.get("dsn")
    if not isinstance(dsn, str) or MASK not in dsn:
        return new
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        old_params = psycopg.conninfo.conninfo_to_dict(str(old.get("dsn", "")))
    except psycopg.Error:
        return new
    if params.get("password") != MASK:
        return new
    if old_params.get("password"):
        params["password"] = old_params["password"]
    else:
        params.pop("password", None)
    user = quote(str(params.pop("user", "") or ""), safe="")
    password = params.pop("password", None)
    host = params.pop("host", "") or ""
    port = params.pop("port", None)
    dbname = quote(str(params.pop("dbname", "") or ""), safe="")
    auth = user + (":" + quote(str(password), safe="") if password else "")
    rebuilt = f"postgres://{auth + '@' if auth else ''}{host}{':' + str(port) if port else ''}/{dbname}"
    if params:
        rebuilt += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in sorted(params.items()))
    return {**new, "dsn": rebuilt}


# --- services -------------------------------------------------------------------------------------


def _name(value: Any) -> str:
    name = (value or "").strip() if isinstance(value, str | type(None)) else ""
    if not name:
        raise ValidationFailed("Name is required.", field="name")
    if len(name) > 120:
        raise ValidationFailed(f"Must be at most 120 characters (got {len(name)}).", field="name")
    return name


def _timeout(value: Any) -> int:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise ValidationFailed(
            f"'{value}' is not a whole number of seconds.", field="timeout_seconds"
        ) from None
    if not 1 <= seconds <= MAX_TIMEOUT_SECONDS:
        raise ValidationFailed(
            f"Must be between 1 and {MAX_TIMEOUT_SECONDS} seconds (got {seconds}).", field="timeout_seconds"
        )
    return seconds


def data_sources_of(membership: Membership) -> list[DataSource]:
    """The organisation's data sources (any member may see names and kinds, to pick one for a measure)."""
    return list(DataSource.objects.filter(organisation_id=membership.organisation_id))


def get_data_source(membership: Membership, source_id: int) -> DataSource:
    source = DataSource.objects.filter(organisation_id=membership.organisation_id, pk=source_id).first()
    if source is None:
        raise NotFound("No such data source.")
    return source


def describe(source: DataSource) -> dict[str, Any]:
    """A data source for display or the API: never the decrypted settings, and no password."""
    return {
        "id": source.pk,
        "name": source.name,
        "kind": source.kind,
        "config": public_config(source),
        "timeout_seconds": source.timeout_seconds,
        "last_checked_at": source.last_checked_at,
        "last_error": source.last_error,
        "version": source.version,
    }


def create_data_source(
    membership: Membership,
    actor: User,
    *,
    name: str,
    kind: str,
    config: dict[str, Any],
    timeout_seconds: int = 30,
) -> DataSource:
    """Add a data source (admins only); its settings are stored encrypted."""
    require_role(membership, Role.ADMIN)
    clean_name = _name(name)
    cleaned = clean_config(kind, config)
    seconds = _timeout(timeout_seconds)
    if DataSource.objects.filter(organisation_id=membership.organisation_id, name=clean_name).exists():
        raise Conflict(f"A data source named “{clean_name}” already exists.", field="name")
    try:
        with transaction.atomic():
            source = DataSource.objects.create(
                organisation_id=membership.organisation_id,
                name=clean_name,
                kind=kind,
                config_encrypted=encrypt_config(cleaned),
                timeout_seconds=seconds,
            )
            record(
                membership.organisation,
                source,
                actor,
                HistoryEntry.Action.CREATED,
                diff({}, snapshot(source, SOURCE_FIELDS)),
            )
    except IntegrityError:
        raise Conflict(f"A data source named “{clean_name}” already exists.", field="name") from None
    return source


def update_data_source(
    membership: Membership,
    actor: User,
    source_id: int,
    *,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    timeout_seconds: int | None = None,
    version: int | None = None,
) -> DataSource:
    """Change a data source (admins only). `config` replaces the settings; a PostgreSQL address whose
    password is the mask shown by `describe` keeps the stored password."""
    require_role(membership, Role.ADMIN)
    with transaction.atomic():
        source = get_data_source(membership, source_id)
        source = DataSource.objects.select_for_update().get(pk=source.pk)
        if version is not None and version != source.version:
            raise Conflict(
                f"“{source}” was changed by someone else (you edited version {version}, it is now at "
                f"version {source.version}). Reload it and apply your change again.",
                field="version",
            )
        before = snapshot(source, SOURCE_FIELDS)
        changed_config = False
        if name is not None:
            source.name = _name(name)
            clash = DataSource.objects.filter(organisation_id=source.organisation_id, name=source.name)
            if clash.exclude(pk=source.pk).exists():
                raise Conflict(f"A data source named “{source.name}” already exists.", field="name")
        if timeout_seconds is not None:
            source.timeout_seconds = _timeout(timeout_seconds)
        if config is not None:
            old = decrypt_config(source) if source.kind == DataSourceKind.POSTGRES else {}
            cleaned = clean_config(source.kind, _keep_password(config, old))
            source.config_encrypted = encrypt_config(cleaned)
            changed_config = True
        after = snapshot(source, SOURCE_FIELDS)
        changes = diff(before, after)
        if changed_config:
            changes["config"] = {"old": "(hidden)", "new": "(changed)"}
            source.last_error = ""
            source.last_checked_at = None
        if changes:
            source.version += 1
            source.save()
            record(membership.organisation, source, actor, HistoryEntry.Action.UPDATED, changes)
    return source


def delete_data_source(membership: Membership, actor: User, source_id: int) -> None:
    """Remove a data source no measure uses (admins only)."""
    require_role(membership, Role.ADMIN)
    with transaction.atomic():
        source = get_data_source(membership, source_id)
        used = list(source.measures.values_list("name", flat=True)[:5])
        if used:
            raise Conflict(f"Measures use “{source}”: {', '.join(used)}. Change them first.")
        record(membership.organisation, source, actor, HistoryEntry.Action.DELETED, {})
        source.delete()


def test_data_source(membership: Membership, source_id: int) -> str:
    """Connect and run a trivial query (admins only). Records the outcome on the source (shown on its
    page and by `truenorth check`); returns a one-line description, raises QueryFailed on failure."""
    require_role(membership, Role.ADMIN)
    source = get_data_source(membership, source_id)
    try:
        detail = _probe(source)
    except QueryFailed as exc:
        mark_checked(source, exc.message)
        raise
    mark_checked(source, "")
    return detail


test_data_source.__test__ = False  # type: ignore[attr-defined]  # a service, not a pytest test


def mark_checked(source: DataSource, error: str) -> None:
    """Record the outcome of a check (or of a refresh that had to connect) on the source."""
    source.last_checked_at = timezone.now()
    source.last_error = error[:2000]
    DataSource.objects.filter(pk=source.pk).update(
        last_checked_at=source.last_checked_at, last_error=source.last_error
    )


# --- running queries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def check_query(source: DataSource, query: str) -> str:
    """Static checks before running (also for saving a measure): length, and for DuckDB exactly one
    SELECT statement. Returns the query without a trailing semicolon."""
    if not isinstance(query, str) or not query.strip():
        raise QueryFailed("The query is empty.")
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryFailed(f"The query is too long ({len(query)} characters; at most {MAX_QUERY_LENGTH}).")
    text = query.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    if source.kind == DataSourceKind.DUCKDB:
        _duckdb_single_select(text)
    return text


def _short(exc: BaseException) -> str:
    """A driver's message, first lines only (DuckDB lists every candidate function otherwise)."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip().strip("^")]
    message = " ".join(lines[:3]) if lines else exc.__class__.__name__
    return message if len(message) <= MAX_ERROR_LENGTH else message[: MAX_ERROR_LENGTH - 1] + "…"


def _duckdb_single_select(text: str) -> None:
    import duckdb

    parser = duckdb.connect(":memory:", config={"enable_external_access": False})
    try:
        statements = parser.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryFailed(f"The query is not valid SQL: {_short(exc)}") from None
    finally:
        parser.close()
    if len(statements) != 1:
        raise QueryFailed(f"Give exactly one SELECT statement (found {len(statements)}).")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryFailed(
            f"Only a SELECT (or WITH … SELECT) query may run; this is a {kind.name} statement. "
            "Data sources are read-only."
        )


def _run_duckdb(source: DataSource, config: dict[str, Any], text: str, limit: int) -> _Result:
    import duckdb

    path = str(config.get("path") or "")
    files = [str(f) for f in config.get("files") or []]
    # Re-check the stored paths: the allowed directories may have been narrowed since.
    for raw in ([path] if path else []) + files:
        try:
            _allowed_path(raw, "config")
        except ValidationFailed as exc:
            raise SourceUnavailable(exc.message) from None
    if path and not Path(path).is_file():
        raise SourceUnavailable(f"The DuckDB file {path} does not exist (or is not a file).")
    try:
        conn = duckdb.connect(
            ":memory:",
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "memory_limit": DUCKDB_MEMORY_LIMIT,
            },
        )
    except duckdb.Error as exc:
        raise SourceUnavailable(f"DuckDB could not start: {_short(exc)}") from None
    try:
        try:
            if path:
                conn.execute(f"ATTACH {_sql_string(path)} AS source (READ_ONLY)")
                conn.execute("USE source")
            directories = [f.rstrip("/") + "/" for f in files if Path(f).is_dir()]
            plain = [f for f in files if not Path(f).is_dir()]
            if directories:
                conn.execute(f"SET allowed_directories = {_sql_list(directories)}")
            if plain:
                conn.execute(f"SET allowed_paths = {_sql_list(plain)}")
            conn.execute("SET enable_external_access = false")
            conn.execute("SET lock_configuration = true")
        except duckdb.Error as exc:
            raise SourceUnavailable(f"Cannot open the DuckDB database {path}: {_short(exc)}") from None
        timer = threading.Timer(source.timeout_seconds, conn.interrupt)
        timer.daemon = True
        started = time.monotonic()
        timer.start()
        try:
            cursor = conn.execute(text)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(limit + 1)
        except duckdb.InterruptException:
            raise QueryTimeout(
                f"The query took longer than {source.timeout_seconds} s and was stopped "
                "(the data source's time limit)."
            ) from None
        except duckdb.Error as exc:
            if time.monotonic() - started >= source.timeout_seconds:
                raise QueryTimeout(
                    f"The query took longer than {source.timeout_seconds} s and was stopped."
                ) from None
            raise QueryFailed(f"The query failed: {_short(exc)}") from None
        finally:
            timer.cancel()
        return _Result(columns, rows)
    finally:
        conn.close()


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_sql_string(v) for v in values) + "]"


def _run_postgres(source: DataSource, config: dict[str, Any], text: str, limit: int) -> _Result:
    import psycopg

    timeout_ms = source.timeout_seconds * 1000
    try:
        params = psycopg.conninfo.conninfo_to_dict(str(config.get("dsn", "")))
    except psycopg.Error:
        raise SourceUnavailable("The stored PostgreSQL address is not valid; enter it again.") from None
    if _is_app_database(params):
        raise SourceUnavailable("TrueNorth's own database cannot be a data source.")
    options = str(params.get("options") or "")
    params["options"] = (
        f"{options} -c default_transaction_read_only=on -c statement_timeout={timeout_ms} "
        f"-c idle_in_transaction_session_timeout={timeout_ms + 5000}"
    ).strip()
    params["connect_timeout"] = str(min(source.timeout_seconds, 10))
    params.setdefault("application_name", "truenorth")
    try:
        conn = psycopg.connect(psycopg.conninfo.make_conninfo("", **params), autocommit=False)
    except psycopg.Error as exc:
        raise SourceUnavailable(
            f"Cannot connect to PostgreSQL ({mask_dsn(str(config.get('dsn')))}): {_short(exc)}"
        ) from None
    try:
        conn.read_only = True  # BEGIN READ ONLY
        # The measure's own SQL, by design; the server enforces read-only and the time limit.
        wrapped = f"SELECT * FROM (\n{text}\n) AS truenorth_query LIMIT {int(limit) + 1}"  # noqa: S608
        try:
            with conn.cursor() as cursor:
                # prepare=True: a prepared statement cannot hold several commands (no "…; COMMIT; …").
                cursor.execute(wrapped, prepare=True)
                columns = [d.name for d in cursor.description or []]
                rows = cursor.fetchall()
        except psycopg.errors.QueryCanceled:
            raise QueryTimeout(
                f"The query took longer than {source.timeout_seconds} s and was stopped "
                "(the data source's time limit)."
            ) from None
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise QueryFailed(f"Data sources are read-only: {_short(exc)}") from None
        except psycopg.OperationalError as exc:
            raise SourceUnavailable(f"Lost the connection to PostgreSQL: {_short(exc)}") from None
        except psycopg.Error as exc:
            raise QueryFailed(f"The query failed: {_short(exc)}") from None
        return _Result(columns, rows)
    finally:
        try:
            conn.rollback()
        except psycopg.Error:
            pass
        conn.close()


def _execute(source: DataSource, query: str, limit: int) -> _Result:
    text = check_query(source, query)
    ceiling = settings.TRUENORTH_MAX_QUERY_SECONDS  # the instance-wide cap on any query's time
    if source.timeout_seconds > ceiling:
        source = copy.copy(source)  # not saved: the cap applies to this run only
        source.timeout_seconds = ceiling
    config = decrypt_config(source)
    if source.kind == DataSourceKind.DUCKDB:
        return _run_duckdb(source, config, text, limit)
    if source.kind == DataSourceKind.POSTGRES:
        return _run_postgres(source, config, text, limit)
    raise SourceUnavailable(f"Unknown data source kind '{source.kind}'.")


def _probe(source: DataSource) -> str:
    result = _execute(source, "SELECT 1", 1)
    if result.rows != [(1,)]:
        raise SourceUnavailable("The data source answered a test query unexpectedly.")
    if source.kind == DataSourceKind.POSTGRES:
        return f"Connected to PostgreSQL at {public_config(source).get('dsn', '')} (read-only)."
    config = decrypt_config(source)
    where = config.get("path") or "an in-memory database"
    return f"Opened DuckDB {where} read-only."


def _timestamp(value: Any, row: int) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise QueryFailed(
                f"Row {row}: the first column must be a timestamp or date, got the text “{value[:40]}”."
            ) from None
    if isinstance(value, dt.datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if value is None:
        raise QueryFailed(f"Row {row}: the timestamp is empty (NULL).")
    raise QueryFailed(f"Row {row}: the first column must be a timestamp or date, got {type(value).__name__}.")


def _value(value: Any, row: int) -> float:
    if value is None:
        raise QueryFailed(f"Row {row}: the value is empty (NULL); filter such rows out in the query.")
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal):
        raise QueryFailed(
            f"Row {row}: the second column must be a number, got {type(value).__name__} "
            "(cast it in the query)."
        )
    number = float(value)
    if not math.isfinite(number):
        raise QueryFailed(f"Row {row}: the value is not a finite number ({value}).")
    return number


def shape(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[tuple[dt.datetime, float]]:
    """Check a result is (timestamp, number) rows with distinct timestamps; return them sorted."""
    if len(columns) != 2:
        listed = ", ".join(columns) if columns else "none"
        raise QueryFailed(
            f"Wrong shape: the query must return exactly two columns (timestamp, value); it returned "
            f"{len(columns)}: {listed}."
        )
    seen: dict[dt.datetime, int] = {}
    out = []
    for number, row in enumerate(rows, start=1):
        observed_at = _timestamp(row[0], number)
        value = _value(row[1], number)
        if observed_at in seen:
            raise QueryFailed(
                f"Rows {seen[observed_at]} and {number} have the same timestamp {observed_at.isoformat()}; "
                "aggregate them in the query."
            )
        seen[observed_at] = number
        out.append((observed_at, value))
    out.sort(key=lambda pair: pair[0])
    return out


def run_query(
    source: DataSource, query: str, *, limit: int = DEFAULT_LIMIT
) -> list[tuple[dt.datetime, float]]:
    """Run a measure's query read-only within the source's time limit; return (observed_at, value) pairs
    (sorted by time, aware datetimes). Raises QueryFailed (SourceUnavailable, QueryTimeout) with a
    message fit to show on the measure page."""
    result = _execute(source, query, limit)
    if len(result.rows) > limit:
        raise QueryFailed(
            f"The query returned more than {limit:,} rows; aggregate or filter it (e.g. one row per day)."
        )
    return shape(result.columns, result.rows)
