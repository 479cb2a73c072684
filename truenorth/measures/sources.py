"""SQL data sources: connection settings encrypted at rest, and read-only, time-limited queries.

Kinds and their settings (the `config` dict; stored only as a Fernet token in `config_encrypted`):

- "duckdb": `{"path": "file.duckdb" or "" (an empty in-memory database), "files": [paths]}`. The
  query may read the listed Parquet/CSV files (or every file in a listed directory) itself, e.g.
  `SELECT day, revenue FROM read_parquet('/data/org-7/sales.parquet')`. Each organisation reaches only
  its own directories: `<dir>/org-<organisation id>/` under every `settings.TRUENORTH_DUCKDB_DIRS`
  entry (created on demand, mode 0700; `organisation_directory(org)`), plus the directories the
  operator grants it in TRUENORTH_DUCKDB_GRANTS. Relative paths are taken inside the organisation's
  directory; every path is resolved (`..`, symbolic links) and checked again before each run.
- "postgres": `{"dsn": "postgres://user:password@host:5432/db"}`. Best practice: a role that can only
  read (README, "Data sources"); TrueNorth enforces read-only anyway and refuses superusers and members
  of the server-file/program/signal roles. Loopback, private, link-local and unspecified addresses
  (and Unix sockets) are refused unless TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS is set; the checked
  addresses are pinned (`hostaddr`), so a name cannot resolve elsewhere at connect time. TrueNorth's own
  database is refused by identity after connecting (system identifier, database name and oid), not by
  the spelling of the address.

Read-only is enforced, not trusted:

- DuckDB: the query must be exactly one SELECT (DuckDB's own parser decides); the database file is
  attached READ_ONLY to an empty in-memory database; then file access outside the source's listed
  paths, extension loading and installing, and every further configuration change are switched off
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
import ipaddress
import json
import logging
import math
import os
import socket
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
from truenorth.orgs.models import Membership, Organisation, Role
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
ORG_DIRECTORY_PREFIX = "org-"
# Roles whose members can read or write the server's files, run programs or stop other sessions.
DANGEROUS_ROLES = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
)

logger = logging.getLogger(__name__)


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


def _org_pk(organisation: Organisation | int) -> int:
    return organisation if isinstance(organisation, int) else int(organisation.pk)


def organisation_directory(organisation: Organisation | int) -> Path:
    """The organisation's own DuckDB directory under the first allowed root (`<root>/org-<id>/`),
    created on demand (mode 0700). Put its DuckDB, Parquet and CSV files here."""
    roots = _allowed_roots()
    if not roots:
        raise ValidationFailed(
            "DuckDB sources are switched off on this server (TRUENORTH_DUCKDB_DIRS is empty).", field="path"
        )
    directory = roots[0] / f"{ORG_DIRECTORY_PREFIX}{_org_pk(organisation)}"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def organisation_directories(organisation: Organisation | int) -> list[Path]:
    """Every directory the organisation's DuckDB sources may reach (resolved): `<root>/org-<id>/` under
    each allowed root, then the directories the operator grants it (TRUENORTH_DUCKDB_GRANTS)."""
    pk = _org_pk(organisation)
    found: list[Path] = []
    for number, root in enumerate(_allowed_roots()):
        directory = root / f"{ORG_DIRECTORY_PREFIX}{pk}"
        try:
            directory.mkdir(mode=0o700, parents=number == 0, exist_ok=True)
        except OSError:
            pass  # a read-only or missing root: nothing of this organisation's lies there
        found.append(directory.resolve())
    grants: dict[int, list[Path]] = getattr(settings, "TRUENORTH_DUCKDB_GRANTS", {}) or {}
    found.extend(Path(d).resolve() for d in grants.get(pk, []))
    return found


def _inside(path: Path, directories: Iterable[Path]) -> bool:
    return any(path == d or path.is_relative_to(d) for d in directories)


def _allowed_path(raw: Any, field: str, organisation: Organisation | int) -> str:
    """The resolved path if it lies inside one of the organisation's directories (relative paths are
    taken inside its own directory; `..` and symbolic links are resolved before the check)."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationFailed("Give a file path.", field=field)
    if "\x00" in raw:
        raise ValidationFailed("Not a valid path.", field=field)
    directories = organisation_directories(organisation)
    path = Path(raw.strip())
    if not path.is_absolute():
        path = organisation_directory(organisation) / path
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        resolved = None
    if resolved is None or not _inside(resolved, directories):
        # Name only what the caller typed and its own directories, never where a link leads.
        where = ", ".join(str(d) for d in directories) or "(none configured)"
        raise ValidationFailed(
            f"“{raw}” is outside this organisation's DuckDB directories: {where} "
            "(each organisation reaches only its own; see TRUENORTH_DUCKDB_DIRS).",
            field=field,
        )
    return str(resolved)


def _clean_duckdb(config: dict[str, Any], organisation: Organisation | int) -> dict[str, Any]:
    unknown = set(config) - {"path", "files"}
    if unknown:
        raise ValidationFailed(f"Unknown DuckDB setting(s): {', '.join(sorted(unknown))}.", field="config")
    raw_path = config.get("path") or ""
    path = _allowed_path(raw_path, "path", organisation) if str(raw_path).strip() else ""
    files = config.get("files") or []
    if isinstance(files, str):
        files = [line for line in files.replace(",", "\n").splitlines() if line.strip()]
    if not isinstance(files, list) or len(files) > 100:
        raise ValidationFailed("Give at most 100 file or directory paths.", field="files")
    return {"path": path, "files": [_allowed_path(f, "files", organisation) for f in files]}


# What a DSN may set: no `service`, `passfile`, `sslkey`… (they would read the server's own files).
_DSN_PARAMETERS = {
    "user", "password", "host", "hostaddr", "port", "dbname", "sslmode", "options", "application_name",
    "connect_timeout", "target_session_attrs", "channel_binding", "gssencmode", "sslnegotiation",
}  # fmt: skip


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
    refused = sorted(set(params) - _DSN_PARAMETERS)
    if refused:
        raise ValidationFailed(f"Parameter(s) not allowed in the address: {', '.join(refused)}.", field="dsn")
    if not (params.get("host") or params.get("hostaddr")) or not params.get("dbname"):
        raise ValidationFailed("The address needs a host and a database name.", field="dsn")
    _pinned_addresses(params, resolve_names=False)  # literal addresses now; names again at connect time
    return {"dsn": dsn}


# --- where a PostgreSQL source may connect --------------------------------------------------------


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, IPv4-compatible, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    packed = int(address)
    if address in ipaddress.ip_network("::/96") or address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    return None


def _public_address(text: str) -> bool:
    """Whether an address is a public (global) one, looking through IPv6 forms that embed IPv4."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None and not inner.is_global:
            return False
    return bool(address.is_global) and not address.is_multicast


def _split(value: Any) -> list[str]:
    return [part.strip() for part in str(value or "").split(",")] if str(value or "").strip() else []


def _resolve(host: str, port: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, int(port or 5432), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError):
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _NoAddress(Exception):
    """No host name of the address resolves."""


def _pinned_addresses(params: dict[str, Any], *, resolve_names: bool = True) -> dict[str, Any]:
    """Refuse loopback, private, link-local, unspecified and Unix-socket destinations (unless the
    operator allows private networks); return the parameters with every host pinned to its checked
    addresses (`hostaddr`), so the name cannot resolve somewhere else when the driver connects."""
    if settings.TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS:
        return params
    hosts, addrs = _split(params.get("host")), _split(params.get("hostaddr"))
    ports = _split(params.get("port"))
    count = max(len(hosts), len(addrs), 1)
    if (hosts and len(hosts) != count) or (addrs and len(addrs) != count) or len(ports) not in (0, 1, count):
        raise ValidationFailed("The address's host, hostaddr and port lists do not match.", field="dsn")
    refusal = ValidationFailed(
        "This address is on a loopback, private or link-local network (or a local socket); this server "
        "does not allow data sources there (TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS).",
        field="dsn",
    )
    out_hosts: list[str] = []
    out_addrs: list[str] = []
    out_ports: list[str] = []
    for i in range(count):
        host = hosts[i] if hosts else ""
        port = ports[i] if len(ports) == count else (ports[0] if ports else "5432")
        if addrs and addrs[i]:
            candidates = [addrs[i]]
        elif not host or host.startswith(("/", "@")) or host.lower() == "localhost":
            raise refusal
        else:
            try:
                ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
                candidates = [host.strip("[]")]
            except ValueError:
                if not resolve_names:
                    continue
                candidates = _resolve(host, port)  # an unknown name: nothing to try there
        for address in candidates:
            if not _public_address(address):
                raise refusal
            out_hosts.append(host or address)
            out_addrs.append(address)
            out_ports.append(port)
    if resolve_names and not out_addrs:
        raise _NoAddress()
    pinned = {"host": ",".join(out_hosts), "hostaddr": ",".join(out_addrs), "port": ",".join(out_ports)}
    return {**params, **pinned}


def clean_config(kind: str, config: Any, organisation: Organisation | int) -> dict[str, Any]:
    """Validate a kind's settings and normalise them (resolved paths inside the organisation's
    directories, stripped DSN)."""
    if not isinstance(config, dict):
        raise ValidationFailed("Settings must be an object.", field="config")
    if kind == DataSourceKind.DUCKDB:
        return _clean_duckdb(config, organisation)
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


# Where the stored password goes: changing any of these with the mask in place needs the password again.
_PASSWORD_BOUND = {"host": "host", "hostaddr": "address", "port": "port", "user": "user"}


def _where(params: dict[str, Any], key: str) -> str:
    value = str(params.get(key) or "").strip()
    if key == "port":
        return ",".join(p.strip().lstrip("0") or "0" for p in (value or "5432").split(","))
    return value.lower() if key in ("host", "hostaddr") else value


def _keep_password(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """An edited DSN whose password is still the mask keeps the stored password, unless the edit
    changes where it would be sent (host, address, port or user): then it must be typed again."""
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
    moved = [key for key in _PASSWORD_BOUND if _where(params, key) != _where(old_params, key)]
    if moved:
        # Otherwise the stored password could be sent to a server of the editor's choosing.
        raise ValidationFailed(
            f"Changing the {', '.join(_PASSWORD_BOUND[key] for key in moved)} needs the password again: "
            f"type it in place of {MASK}.",
            field="dsn",
        )
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
    cleaned = clean_config(kind, config, membership.organisation_id)
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
            cleaned = clean_config(source.kind, _keep_password(config, old), source.organisation_id)
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


def _run_duckdb(
    source: DataSource, config: dict[str, Any], text: str, limit: int, extra_files: Sequence[str] = ()
) -> _Result:
    import duckdb

    path = str(config.get("path") or "")
    files = [str(f) for f in config.get("files") or []] + [str(f) for f in extra_files]
    # Re-check the stored paths: the allowed directories may have been narrowed since.
    for raw in ([path] if path else []) + files:
        try:
            _allowed_path(raw, "config", source.organisation_id)
        except ValidationFailed as exc:
            raise SourceUnavailable(exc.message) from None
    if path and not Path(path).is_file():
        raise SourceUnavailable(f"The DuckDB file {path} does not exist (or is not a file).")
    _no_links_out(source.organisation_id, [f for f in files if Path(f).is_dir()])
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
            # TIMESTAMPTZ columns come back as UTC instants (converting them in Python needs pytz).
            relation = conn.sql(text)
            names, types = list(relation.columns), [str(t) for t in relation.types]
            zoned = [i for i, name in enumerate(types) if name == "TIMESTAMP WITH TIME ZONE"]
            if zoned:
                picks = ", ".join(
                    f"timezone('UTC', #{i + 1})" if i in zoned else f"#{i + 1}" for i in range(len(types))
                )
                cursor = conn.execute(f"SELECT {picks} FROM (\n{text}\n) AS truenorth_query")  # noqa: S608
            else:
                cursor = conn.execute(text)
            columns = names if zoned else [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(limit + 1)
            if zoned:
                rows = [_utc_columns(row, zoned) for row in rows]
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


MAX_SCANNED_ENTRIES = 100_000


def _no_links_out(organisation: Organisation | int, directories: list[str]) -> None:
    """Refuse a listed directory holding a symbolic link that leads outside the organisation's
    directories: DuckDB would list (glob) through it, naming another organisation's files."""
    allowed = organisation_directories(organisation)
    seen = 0
    for top in directories:
        for folder, subdirs, names in os.walk(top, followlinks=False):
            for name in subdirs + names:
                seen += 1
                if seen > MAX_SCANNED_ENTRIES:
                    raise SourceUnavailable(
                        f"The listed directories hold more than {MAX_SCANNED_ENTRIES:,} entries; list "
                        "narrower ones."
                    )
                entry = Path(folder) / name
                if entry.is_symlink() and not _inside(entry.resolve(), allowed):
                    raise SourceUnavailable(
                        f"{entry} is a link leading outside this organisation's DuckDB directories; "
                        "the server's operator must remove it."
                    )


def _utc_columns(row: tuple[Any, ...], indexes: list[int]) -> tuple[Any, ...]:
    return tuple(
        v.replace(tzinfo=dt.UTC) if i in indexes and isinstance(v, dt.datetime) else v
        for i, v in enumerate(row)
    )


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_sql_string(v) for v in values) + "]"


# The server's identity: a streaming replica shares the system identifier, so it counts as the same.
_IDENTITY_SQL = (
    "SELECT current_database(), d.oid::bigint, pg_catalog.pg_postmaster_start_time() "
    "FROM pg_catalog.pg_database d WHERE d.datname = current_database()"
)
_SYSTEM_ID_SQL = "SELECT system_identifier FROM pg_catalog.pg_control_system()"
_DANGEROUS_SQL = (
    "SELECT rolname, rolsuper FROM pg_catalog.pg_roles "
    "WHERE (rolsuper OR rolname = ANY(%s)) AND pg_catalog.pg_has_role(session_user, oid, 'MEMBER') "
    "ORDER BY rolname"
)


@dataclass(frozen=True)
class _Identity:
    database: str
    oid: int
    started: Any
    system_id: int | None

    def same_as(self, other: _Identity) -> bool:
        if (self.database, self.oid) != (other.database, other.oid):
            return False
        if self.system_id is not None and other.system_id is not None:
            return self.system_id == other.system_id
        return bool(self.started == other.started)


def _identity(execute: Any) -> _Identity:
    """`execute(sql, params)` returns the first row; a refused system identifier becomes None."""
    database, oid, started = execute(_IDENTITY_SQL, None)
    try:
        system_id = execute(_SYSTEM_ID_SQL, None)[0]
    except Exception:  # no privilege to read it: fall back to the start time
        system_id = None
    return _Identity(str(database), int(oid), started, None if system_id is None else int(system_id))


def _own_identity() -> _Identity | None:
    """TrueNorth's own PostgreSQL database (None when TrueNorth runs on another engine)."""
    from django.db import DatabaseError, connections

    own = connections["default"]
    if own.vendor != "postgresql":
        return None

    def execute(sql: str, params: Any) -> Any:
        with transaction.atomic(using="default"), own.cursor() as cursor:  # a savepoint if it fails
            cursor.execute(sql, params)
            return cursor.fetchone()

    try:
        return _identity(execute)
    except DatabaseError:
        logger.exception("Cannot read TrueNorth's own database identity")
        raise SourceUnavailable(  # fail closed: never run a source that might be TrueNorth's database
            "TrueNorth cannot tell whether this is its own database; try again later."
        ) from None


def _check_server(conn: Any) -> None:
    """After connecting, before any query of the source's: refuse TrueNorth's own database (by the
    server's identity, whatever the address's spelling) and roles that can reach beyond read-only SQL
    (superusers, members of the server-file, program and signal roles)."""
    import psycopg

    def execute(sql: str, params: Any) -> Any:
        try:
            with conn.transaction(), conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchone()
        finally:
            conn.rollback()

    try:
        mine = _own_identity()
        if mine is not None and _identity(execute).same_as(mine):
            raise SourceUnavailable("TrueNorth's own database cannot be a data source.")
        with conn.cursor() as cursor:
            cursor.execute(_DANGEROUS_SQL, [list(DANGEROUS_ROLES)])
            dangerous = cursor.fetchall()
            role = cursor.execute("SELECT session_user").fetchone()
        conn.rollback()
    except psycopg.Error as exc:
        logger.warning("Data source: the server checks failed: %s", _short(exc))
        raise SourceUnavailable("The PostgreSQL server did not answer TrueNorth's checks.") from None
    if dangerous:
        what = (
            "a superuser"
            if any(superuser for _, superuser in dangerous)
            else "a member of " + ", ".join(name for name, _ in dangerous)
        )
        raise SourceUnavailable(
            f"The role “{role[0] if role else '?'}” is {what}: it can reach beyond read-only queries. "
            "Use a role that can only read (README, “Data sources”)."
        )


def _run_postgres(source: DataSource, config: dict[str, Any], text: str, limit: int) -> _Result:
    import psycopg

    timeout_ms = source.timeout_seconds * 1000
    try:
        params = psycopg.conninfo.conninfo_to_dict(str(config.get("dsn", "")))
    except psycopg.Error:
        raise SourceUnavailable("The stored PostgreSQL address is not valid; enter it again.") from None
    refused = sorted(set(params) - _DSN_PARAMETERS)
    if refused:
        raise SourceUnavailable(
            f"Parameter(s) not allowed in the address: {', '.join(refused)}; enter it again."
        )
    shown = mask_dsn(str(config.get("dsn")))
    cannot = SourceUnavailable(
        f"Could not connect to PostgreSQL ({shown}): check the address, the user and the password, "
        "and that the server accepts connections from TrueNorth."
    )
    try:
        params = _pinned_addresses(params)
    except _NoAddress:
        logger.warning("Data source %s: no address of %s resolves", source.pk, shown)
        raise cannot from None
    except ValidationFailed as exc:
        raise SourceUnavailable(exc.message) from None
    params["passfile"] = os.devnull  # never the server's own ~/.pgpass
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
        # Refused, timed out, not PostgreSQL, bad password: the same answer (no port scanner); details
        # for the operator in the log.
        logger.warning("Data source %s: cannot connect to %s: %s", source.pk, shown, _short(exc))
        raise cannot from None
    try:
        _check_server(conn)
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


def _execute(source: DataSource, query: str, limit: int, *, files: Sequence[str] = ()) -> _Result:
    """Run one read-only query. ``files``: further files of the organisation the query may read (DuckDB
    only; each must pass the organisation's directory rules, like the source's own `files`)."""
    text = check_query(source, query)
    ceiling = settings.TRUENORTH_MAX_QUERY_SECONDS  # the instance-wide cap on any query's time
    if source.timeout_seconds > ceiling:
        source = copy.copy(source)  # not saved: the cap applies to this run only
        source.timeout_seconds = ceiling
    config = decrypt_config(source)
    if source.kind == DataSourceKind.DUCKDB:
        return _run_duckdb(source, config, text, limit, files)
    if files:
        raise QueryFailed("Only a DuckDB data source reads Parquet or CSV files.", field="files")
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


PREVIEW_ROWS = 20


def seal(data: Any) -> str:
    """JSON-able data encrypted with the settings key, for rows a job keeps for the admin who asked
    (a job's result is readable by every member through the jobs API)."""
    return _fernet().encrypt(json.dumps(data).encode()).decode()


def unseal(token: Any) -> Any:
    """What `seal` encrypted, or None when it cannot be read (another key, damaged)."""
    try:
        return json.loads(_fernet().decrypt(str(token).encode()))
    except (InvalidToken, ValueError):
        return None


def _cell(value: Any) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return "NULL" if value is None else str(value)[:200]


def preview_query(source: DataSource, query: str, *, limit: int = PREVIEW_ROWS) -> dict[str, Any]:
    """The first `limit` rows a query returns (read-only, within the source's time limit), as text,
    and whether a refresh would accept them: {"columns", "rows", "more", "problem", "summary"}.
    Callers check who may run it (`services.require_query_author`). Raises QueryFailed when it cannot run."""
    result = _execute(source, query, limit)
    rows = result.rows[:limit]
    try:
        shape(result.columns, rows)
        problem = ""
    except QueryFailed as exc:
        problem = exc.message
    more = len(result.rows) > limit
    count = f"the first {len(rows)} rows" if more else f"{len(rows)} row{'s' if len(rows) != 1 else ''}"
    summary = f"The query returned {count} from “{source.name}”."
    if problem:
        summary += f" A refresh would refuse them: {problem}"
    return {
        "columns": list(result.columns),
        "rows": [[_cell(v) for v in row] for row in rows],
        "more": more,
        "problem": problem,
        "summary": summary,
    }
