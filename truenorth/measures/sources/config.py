"""A source's settings: the organisation's DuckDB directories, PostgreSQL addresses (where they may
connect, pinned), and what may be shown of them."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings

from truenorth.core.errors import ValidationFailed
from truenorth.measures.models import DataSource, DataSourceKind
from truenorth.measures.sources._common import MASK, ORG_DIRECTORY_PREFIX, SourceUnavailable, decrypt_config
from truenorth.orgs.models import Organisation

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


def allowed_path(raw: Any, field: str, organisation: Organisation | int) -> str:
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
    path = allowed_path(raw_path, "path", organisation) if str(raw_path).strip() else ""
    files = config.get("files") or []
    if isinstance(files, str):
        files = [line for line in files.replace(",", "\n").splitlines() if line.strip()]
    if not isinstance(files, list) or len(files) > 100:
        raise ValidationFailed("Give at most 100 file or directory paths.", field="files")
    return {"path": path, "files": [allowed_path(f, "files", organisation) for f in files]}


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
    if kind in DataSourceKind.values:
        from truenorth.measures.sources.engine_config import clean_engine_config

        return clean_engine_config(kind, config, organisation)
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
    """What may be shown of a source's settings: DuckDB paths; a PostgreSQL address without password;
    the other kinds' settings with every secret replaced by the mask."""
    try:
        config = decrypt_config(source)
    except SourceUnavailable:
        return {}
    if source.kind == DataSourceKind.POSTGRES:
        return {"dsn": mask_dsn(str(config.get("dsn", "")))}
    if source.kind != DataSourceKind.DUCKDB:
        from truenorth.measures.sources.engine_config import public_engine_config

        return public_engine_config(source.kind, config)
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


def keep_secrets(kind: str, new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """An edit whose secrets are still the mask keeps the stored ones (see `_keep_password`)."""
    if kind == DataSourceKind.POSTGRES:
        return _keep_password(new, old)
    if kind == DataSourceKind.DUCKDB:
        return new
    from truenorth.measures.sources.engine_config import keep_engine_secrets

    return keep_engine_secrets(kind, new, old)
