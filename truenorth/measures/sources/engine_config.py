"""Settings of the connector kinds (issue 14): Spark, chDB, ClickHouse and the DB-API drivers (Trino,
BigQuery, Snowflake). Checked when saved and again before every run (`runtime_config`): the operator
may have switched a setting off since, a file may have become a symbolic link, a name may resolve
elsewhere.

Rules (a hostile organisation admin must not reach another organisation, TrueNorth's own database, the
server's files or network, nor run code of their choosing):

- tables: `{name: path}`, names are identifiers, paths resolved inside the organisation's directories
  (`allowed_path`, the DuckDB rules: `..` and symbolic links resolved first), Parquet/CSV files or
  directories only;
- addresses (Spark Connect `sc://`, ClickHouse `http(s)://`, a driver's `host`/`url`): loopback, private,
  link-local and unspecified destinations are refused unless TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS;
  names are resolved and every address checked (again before each run);
- local engines (Spark `local[N]`, chDB) only with TRUENORTH_ENGINES_LOCAL, N at most
  TRUENORTH_ENGINES_LOCAL_MAX_CORES;
- a driver is a *name*: one the operator allows (TRUENORTH_ENGINES_DRIVERS) that the kind's connector
  knows or a site installed as a `truenorth.engines.drivers` entry point; the admin never names a module
  to import. A known driver takes only its listed `params`; keys that would make any driver read the
  server's files (`*_file`, `*path*`, `cert`, …) are refused; values are scalars (or lists of them);
- secrets (ClickHouse `password`, a Spark Connect `token`, a driver's password/token/key params) are
  stored encrypted with the rest, shown as the mask, and kept on edit while the mask is left in place
  unless the edit changes where they would be sent.

Errors name the field as the API takes it: `config.url`, `config.tables.events`, `config.params.host`.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from truenorth.core.errors import ValidationFailed
from truenorth.measures.models import DataSourceKind
from truenorth.measures.sources._common import MASK
from truenorth.measures.sources.kinds import DRIVER_KINDS
from truenorth.orgs.models import Organisation

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
MAX_TABLES = 100
MAX_PARAMS = 50
TABLE_SUFFIXES = (".parquet", ".csv")
_LOCAL_MASTER = re.compile(r"local\[(\d{1,3})\]\Z")
_SPARK_PARAMS = {"token", "use_ssl", "user_id"}
# Driver parameters that name a secret (masked, kept on edit) ...
_SECRET_PARAM = re.compile(r"pass|secret|token|credential|private|(^|_)key($|_)|auth", re.IGNORECASE)
# ... and ones that would make a driver read the server's files or route through another host.
_REFUSED_PARAM = re.compile(
    r"file|path|dir|cert|(^|_)ca($|_)|socket|proxy|keyring|cache|config|plugin|module|class",
    re.IGNORECASE,
)
# Parameters whose change does not redirect a kept secret elsewhere.
_HARMLESS_PARAMS = {"catalog", "schema", "database", "dataset", "warehouse", "role", "timezone", "source"}
_URL_PARAMS = ("url", "endpoint", "api_endpoint", "server", "server_hostname")
# Parameters a driver turns into a host name ("<account>.snowflakecomputing.com"): labels only, so that
# no '/', ':', '@', '#' or '?' can move the address (and the login) to another host.
_HOST_LABEL_PARAMS = ("account",)
_HOST_LABELS = re.compile(r"[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63}){0,5}\Z")


def _field(*parts: str) -> str:
    return ".".join(("config", *parts))


def _only(config: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(str(k) for k in set(config) - allowed)
    if unknown:
        raise ValidationFailed(
            f"Unknown {what} setting(s): {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))}).",
            field=_field(unknown[0]),
        )


def _text(config: dict[str, Any], key: str, *, required: bool = False, limit: int = 2000) -> str:
    value = config.get(key)
    if value is None or value == "":
        if required:
            raise ValidationFailed(f"Give the {key}.", field=_field(key))
        return ""
    if not isinstance(value, str) or "\x00" in value:
        raise ValidationFailed(f"The {key} must be text.", field=_field(key))
    if len(value) > limit:
        raise ValidationFailed(f"The {key} is too long (at most {limit} characters).", field=_field(key))
    return value.strip()


def _secret(config: dict[str, Any], key: str, limit: int = 1000) -> str:
    """A password as typed (not stripped: spaces may belong to it)."""
    value = config.get(key)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or "\x00" in value or len(value) > limit:
        raise ValidationFailed(f"The {key} must be text of at most {limit} characters.", field=_field(key))
    return value


# --- tables (files in the organisation's directories) ---------------------------------------------


def clean_tables(raw: Any, organisation: Organisation | int, *, required: bool) -> dict[str, str]:
    """`{name: path}` with each path resolved inside the organisation's directories."""
    from truenorth.measures.sources.config import allowed_path

    if raw is None or raw == {} or raw == "":
        if required:
            raise ValidationFailed(
                "Name at least one table: {name: Parquet or CSV file in this organisation's directory}.",
                field=_field("tables"),
            )
        return {}
    if not isinstance(raw, dict):
        raise ValidationFailed("Give the tables as an object {name: path}.", field=_field("tables"))
    if len(raw) > MAX_TABLES:
        raise ValidationFailed(f"At most {MAX_TABLES} tables.", field=_field("tables"))
    out: dict[str, str] = {}
    for name, path in raw.items():
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            raise ValidationFailed(
                f"“{str(name)[:60]}” is not a table name: letters, digits and _, not starting with a digit.",
                field=_field("tables"),
            )
        field = _field("tables", name)
        resolved = Path(allowed_path(path, field, organisation))
        if not (resolved.is_dir() or resolved.suffix.lower() in TABLE_SUFFIXES):
            raise ValidationFailed(
                f"“{path}” is not a Parquet or CSV file (.parquet, .csv) or a directory of them.", field=field
            )
        out[name] = str(resolved)
    return out


# --- addresses ------------------------------------------------------------------------------------


def _refused(field: str) -> ValidationFailed:
    return ValidationFailed(
        "This address is on a loopback, private or link-local network; this server does not allow data "
        "sources there (TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS).",
        field=field,
    )


def check_host(host: str, port: int, field: str, *, must_resolve: bool) -> list[str]:
    """Refuse loopback, private, link-local and unspecified destinations (every address a name resolves
    to). ``must_resolve``: a name that does not resolve is an error (before a run) rather than accepted
    (when saving: it is checked again before each run). Returns the checked addresses (none when
    private networks are allowed or the name did not resolve), for a connector to pin."""
    from truenorth.measures.sources.config import _public_address, _resolve

    if settings.TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS:
        return []
    name = host.strip().strip("[]").rstrip(".").lower()
    if not name or name == "localhost" or name.endswith(".localhost"):
        raise _refused(field)
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
        candidates = [name]
    except ValueError:
        candidates = _resolve(name, str(port))
        if not candidates:
            if must_resolve:
                raise ValidationFailed(f"The host “{host}” does not resolve.", field=field) from None
            return []
    if not all(_public_address(address) for address in candidates):
        raise _refused(field)
    return candidates


def _split_url(raw: str, schemes: tuple[str, ...], field: str) -> SplitResult:
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValidationFailed("Not a valid address.", field=field) from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise ValidationFailed(
            f"Use a {' or '.join(s + '://host:port' for s in schemes)} address.", field=field
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationFailed(
            "Put no user name or password in the address (use the username and password settings).",
            field=field,
        )
    return parts


# --- Spark ----------------------------------------------------------------------------------------


def _spark_url(raw: str, *, must_resolve: bool) -> tuple[str, dict[str, str]]:
    """A Spark Connect address `sc://host:port[/;param=value…]` (token, use_ssl, user_id)."""
    field = _field("url")
    parts = _split_url(raw, ("sc",), field)
    if parts.query or parts.fragment:
        raise ValidationFailed(
            "Spark Connect parameters follow '/;' (sc://host:15002/;use_ssl=true).", field=field
        )
    params: dict[str, str] = {}
    path = parts.path
    if path not in ("", "/"):
        if not path.startswith("/;"):
            raise ValidationFailed("A Spark Connect address has no path (sc://host:15002).", field=field)
        for item in path[2:].split(";"):
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep or key not in _SPARK_PARAMS:
                raise ValidationFailed(
                    f"Spark Connect parameter “{key}” is not allowed ({', '.join(sorted(_SPARK_PARAMS))}).",
                    field=field,
                )
            params[key] = value
    host, port = str(parts.hostname), parts.port or 15002
    check_host(host, port, field, must_resolve=must_resolve)
    netloc = f"[{host}]" if ":" in host else host
    rebuilt = f"sc://{netloc}:{port}" + (
        "/;" + ";".join(f"{k}={v}" for k, v in params.items()) if params else ""
    )
    return rebuilt, params


def _check_local(field: str) -> None:
    if not settings.TRUENORTH_ENGINES_LOCAL:
        raise ValidationFailed(
            "Local engines (Spark local mode, chDB) are switched off on this server: they would run inside "
            "TrueNorth's own worker (TRUENORTH_ENGINES_LOCAL). Use a Spark Connect or ClickHouse address.",
            field=field,
        )


def _clean_spark(config: dict[str, Any], organisation: Organisation | int, *, run: bool) -> dict[str, Any]:
    _only(config, {"url", "master", "tables", "database"}, "Spark")
    url, master = _text(config, "url"), _text(config, "master")
    if bool(url) == bool(master):
        raise ValidationFailed(
            "Give either a Spark Connect address (url, sc://host:15002) or a local master (local[2]).",
            field=_field("url"),
        )
    out: dict[str, Any] = {}
    if url:
        out["url"], _ = _spark_url(url, must_resolve=run)
        if run:
            # The connector connects to an address checked now, never to a second resolution of the
            # name (DNS rebinding).
            parts = urlsplit(out["url"])
            addresses = check_host(str(parts.hostname), parts.port or 15002, _field("url"), must_resolve=True)
            if addresses:
                out["address"] = addresses[0]
    else:
        _check_local(_field("master"))
        match = _LOCAL_MASTER.match(master)
        cores = settings.TRUENORTH_ENGINES_LOCAL_MAX_CORES
        if match is None or not 1 <= int(match.group(1)) <= cores:
            raise ValidationFailed(f"Use local[N] with N from 1 to {cores}.", field=_field("master"))
        out["master"] = master
    out["tables"] = clean_tables(config.get("tables"), organisation, required=bool(master))
    database = _text(config, "database", limit=128)
    if database:
        if not IDENTIFIER.match(database):
            raise ValidationFailed("Not a database name (letters, digits and _).", field=_field("database"))
        out["database"] = database
    return out


# --- ClickHouse -----------------------------------------------------------------------------------


def _clean_chdb(config: dict[str, Any], organisation: Organisation | int) -> dict[str, Any]:
    _only(config, {"tables"}, "chDB")
    _check_local("kind")
    return {"tables": clean_tables(config.get("tables"), organisation, required=True)}


def _clean_clickhouse(config: dict[str, Any], *, run: bool) -> dict[str, Any]:
    _only(config, {"url", "username", "password", "database"}, "ClickHouse")
    field = _field("url")
    parts = _split_url(_text(config, "url", required=True), ("http", "https"), field)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValidationFailed("Give only the scheme, host and port (https://host:8443).", field=field)
    scheme = parts.scheme.lower()
    host, port = str(parts.hostname), parts.port or (8443 if scheme == "https" else 8123)
    addresses = check_host(host, port, field, must_resolve=run)
    database = _text(config, "database", limit=128)
    if database and not IDENTIFIER.match(database):
        raise ValidationFailed("Not a database name (letters, digits and _).", field=_field("database"))
    netloc = f"[{host}]" if ":" in host else host
    cleaned = {
        "url": f"{scheme}://{netloc}:{port}",
        "username": _text(config, "username", limit=200) or "default",
        "password": _secret(config, "password"),
        "database": database or "default",
    }
    if run and addresses:
        # The connector connects to the address checked now, never to a second resolution of the name
        # (DNS rebinding); TLS is still verified against the name.
        cleaned["address"] = addresses[0]
    return cleaned


# --- DB-API drivers (Trino, BigQuery, Snowflake) --------------------------------------------------


def drivers_for(kind: str) -> list[str]:
    """The driver names an admin may pick for ``kind``: the operator's TRUENORTH_ENGINES_DRIVERS that
    are this kind's known drivers (truenorth.engines.dbapi_engine) or installed site drivers (the
    ``truenorth.engines.drivers`` entry points). Never a module path: the admin cannot choose code."""
    from importlib.metadata import entry_points

    from truenorth.engines import registry
    from truenorth.engines.base import EngineError

    allowed = set(getattr(settings, "TRUENORTH_ENGINES_DRIVERS", []) or [])
    try:
        known = set(getattr(registry.connector_class(kind), "known_drivers", {}) or {})
    except EngineError:
        known = set()
    site = {ep.name for ep in entry_points(group="truenorth.engines.drivers")}
    return sorted(allowed & (known | site))


def _known_params(kind: str, driver: str) -> frozenset[str] | None:
    """The parameters a known driver takes (None for a site's driver: its own code checks them)."""
    from truenorth.engines import registry

    cls = registry.connector_class(kind)
    if driver in (getattr(cls, "known_drivers", {}) or {}):
        return frozenset(getattr(cls, "allowed_params", frozenset()))
    return None


# A service account key's fields (the JSON file Google gives). google-auth posts the signed login to
# `token_uri`: any other address than Google's would make this server send it where the admin chooses.
_SERVICE_ACCOUNT_KEYS = {
    "type",
    "project_id",
    "private_key_id",
    "private_key",
    "client_email",
    "client_id",
    "auth_uri",
    "token_uri",
    "auth_provider_x509_cert_url",
    "client_x509_cert_url",
    "universe_domain",
}
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


def _service_account_key(value: Any, field: str) -> dict[str, str]:
    """A service account key: an object, or its JSON text (the form's `credentials_info = {...}`)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if len(value) <= 20_000 else None
        except ValueError:
            value = None
    if not isinstance(value, dict) or not value or len(value) > len(_SERVICE_ACCOUNT_KEYS):
        raise ValidationFailed(
            "Give the service account key: the content of its JSON file (an object).", field=field
        )
    for name, item in value.items():
        if name not in _SERVICE_ACCOUNT_KEYS:
            raise ValidationFailed(
                f"A service account key has no field “{str(name)[:60]}”.", field=_field_of(field, str(name))
            )
        if not isinstance(item, str) or len(item) > 8000 or "\x00" in item:
            raise ValidationFailed("Each field of the key is text.", field=_field_of(field, name))
    if value.get("token_uri", GOOGLE_TOKEN_URI) != GOOGLE_TOKEN_URI:
        raise ValidationFailed(
            f"The key's token_uri must be {GOOGLE_TOKEN_URI} (the login is sent there).",
            field=_field_of(field, "token_uri"),
        )
    if value.get("universe_domain", "googleapis.com") != "googleapis.com":
        raise ValidationFailed(
            "The key's universe_domain must be googleapis.com.", field=_field_of(field, "universe_domain")
        )
    return {str(k): str(v) for k, v in value.items()}


def _field_of(field: str, name: str) -> str:
    return f"{field}.{name}"


def _clean_driver(kind: str, config: dict[str, Any], *, run: bool) -> dict[str, Any]:
    _only(config, {"driver", "params"}, kind.capitalize())
    offered = drivers_for(kind)
    driver = config.get("driver")
    if not isinstance(driver, str) or driver not in offered:
        listed = ", ".join(offered) or "none: the operator lists them in TRUENORTH_ENGINES_DRIVERS"
        raise ValidationFailed(
            f"“{str(driver)[:80]}” is not a {kind} driver this server offers ({listed}).",
            field=_field("driver"),
        )
    known = _known_params(kind, driver)
    raw = config.get("params") or {}
    if not isinstance(raw, dict) or len(raw) > MAX_PARAMS:
        raise ValidationFailed(
            f"Give the driver's parameters as an object (at most {MAX_PARAMS}).", field=_field("params")
        )
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not IDENTIFIER.match(key):
            raise ValidationFailed(f"“{str(key)[:60]}” is not a parameter name.", field=_field("params"))
        field = _field("params", key)
        if known is not None and key not in known:
            raise ValidationFailed(
                f"The {driver} driver does not take the parameter “{key}” (allowed: {', '.join(sorted(known))}).",
                field=field,
            )
        if _REFUSED_PARAM.search(key):
            raise ValidationFailed(
                f"The parameter “{key}” is not allowed: it could make the driver read this server's files "
                "or route elsewhere.",
                field=field,
            )
        if key == "credentials_info":
            params[key] = _service_account_key(value, field)
            continue
        scalars = value if isinstance(value, list) else [value]
        if len(scalars) > 50 or not all(
            v is None or isinstance(v, str | int | float | bool) for v in scalars
        ):
            raise ValidationFailed("Parameters are text, numbers, true/false or lists of them.", field=field)
        if isinstance(value, str) and (len(value) > 4000 or "\x00" in value):
            raise ValidationFailed("At most 4000 characters of text.", field=field)
        params[key] = value
    for key in _HOST_LABEL_PARAMS:
        value = params.get(key)
        if value is not None and not (isinstance(value, str) and _HOST_LABELS.match(value)):
            raise ValidationFailed(
                f"The {key} is letters, digits, '-' and '_', in parts separated by dots (xy12345.us-east-1).",
                field=_field("params", key),
            )
    host = params.get("host")
    address = ""
    if isinstance(host, str) and host:
        port = params.get("port")
        addresses = check_host(
            host, int(port) if isinstance(port, int) else 443, _field("params", "host"), must_resolve=run
        )
        if run and addresses:
            address = addresses[0]
    for key in _URL_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value:
            parts = _split_url(
                value if "://" in value else f"https://{value}", ("http", "https"), _field("params", key)
            )
            check_host(str(parts.hostname), parts.port or 443, _field("params", key), must_resolve=run)
    cleaned: dict[str, Any] = {"driver": driver, "params": params}
    if kind == DataSourceKind.TRINO and address:
        # Run time only (never stored): the Trino connector connects to the address checked now, never to
        # a second resolution of the name (DNS rebinding); Host and TLS keep the name.
        cleaned["address"] = address
    return cleaned


# --- entry points ---------------------------------------------------------------------------------


def clean_engine_config(
    kind: str, config: dict[str, Any], organisation: Organisation | int, *, run: bool = False
) -> dict[str, Any]:
    """Validate and normalise a connector kind's settings (``run``: the check before a run, where a
    name must resolve)."""
    if kind == DataSourceKind.SPARK:
        return _clean_spark(config, organisation, run=run)
    if kind == DataSourceKind.CHDB:
        return _clean_chdb(config, organisation)
    if kind == DataSourceKind.CLICKHOUSE:
        return _clean_clickhouse(config, run=run)
    if kind in DRIVER_KINDS:
        return _clean_driver(kind, config, run=run)
    raise ValidationFailed(f"'{kind}' is not one of: {', '.join(DataSourceKind.values)}.", field="kind")


def runtime_config(kind: str, stored: dict[str, Any], organisation: Organisation | int) -> dict[str, Any]:
    """The settings a connector receives: checked again now (the operator's switches and drivers, table
    paths, addresses), as a source saved earlier may no longer pass."""
    return clean_engine_config(kind, stored, organisation, run=True)


def _masked_url(url: str) -> str:
    try:
        rebuilt, params = _spark_url(url, must_resolve=False)
    except ValidationFailed:
        return MASK
    if "token" in params:
        rebuilt = rebuilt.replace(f"token={params['token']}", f"token={MASK}")
    return rebuilt


def public_engine_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """What may be shown: every setting with its secrets replaced by the mask."""
    if kind == DataSourceKind.SPARK:
        shown: dict[str, Any] = {"tables": dict(config.get("tables", {}))}
        if config.get("url"):
            shown["url"] = _masked_url(str(config["url"]))
        if config.get("master"):
            shown["master"] = config["master"]
        if config.get("database"):
            shown["database"] = config["database"]
        return shown
    if kind == DataSourceKind.CHDB:
        return {"tables": dict(config.get("tables", {}))}
    if kind == DataSourceKind.CLICKHOUSE:
        return {
            "url": config.get("url", ""),
            "username": config.get("username", ""),
            "password": MASK if config.get("password") else "",
            "database": config.get("database", ""),
        }
    if kind in DRIVER_KINDS:
        params = dict(config.get("params", {}))
        return {
            "driver": config.get("driver", ""),
            "params": {k: (MASK if _SECRET_PARAM.search(k) and v else v) for k, v in params.items()},
        }
    return {}


def _again(what: str, field: str) -> ValidationFailed:
    return ValidationFailed(
        f"Changing the {what} needs the secret again: type it in place of {MASK}.", field=field
    )


def keep_engine_secrets(kind: str, new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """An edit that leaves a secret as the mask keeps the stored secret, unless it changes where the
    secret would be sent (then it must be typed again)."""
    if kind == DataSourceKind.CLICKHOUSE and new.get("password") == MASK:
        moved = [
            key
            for key in ("url", "username")
            if str(new.get(key) or "").strip().rstrip("/").lower()
            != str(old.get(key) or "").rstrip("/").lower()
            and not (key == "username" and not new.get(key) and old.get(key) == "default")
        ]
        if moved:
            raise _again(" and ".join(moved), _field("password"))
        return {**new, "password": old.get("password", "")}
    if kind == DataSourceKind.SPARK and isinstance(new.get("url"), str) and f"token={MASK}" in new["url"]:
        try:
            rebuilt, params = _spark_url(new["url"], must_resolve=False)
            old_rebuilt, old_params = _spark_url(str(old.get("url") or ""), must_resolve=False)
        except ValidationFailed:
            raise _again("address", _field("url")) from None
        where = (rebuilt.split("/;")[0], params.get("user_id"))
        if where != (old_rebuilt.split("/;")[0], old_params.get("user_id")) or "token" not in old_params:
            raise _again("address", _field("url"))
        return {**new, "url": rebuilt.replace(f"token={MASK}", f"token={old_params['token']}")}
    if kind in DRIVER_KINDS and isinstance(new.get("params"), dict):
        params = dict(new["params"])
        masked = [k for k, v in params.items() if v == MASK]
        if not masked:
            return new
        old_params = dict(old.get("params", {}))

        def binding(p: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in p.items() if not _SECRET_PARAM.search(k) and k not in _HARMLESS_PARAMS}

        if new.get("driver") != old.get("driver") or binding(params) != binding(old_params):
            raise _again("driver or the connection parameters", _field("params", masked[0]))
        for key in masked:
            if key not in old_params:
                raise _again("parameters", _field("params", key))
            params[key] = old_params[key]
        return {**new, "params": params}
    return new
