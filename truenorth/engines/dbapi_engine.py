"""DB-API 2.0 connectors: the generic `DBAPIConnector`, and Trino, BigQuery and Snowflake on top of it.

These three engines are *compiled-only*: CI checks the exact SQL each receives (golden files under
``truenorth/evidence/tests/golden/``) but no real Trino/BigQuery/Snowflake runs there. The generic path
(connect with a timeout, execute, ``fetchmany`` streaming, cancel, error translation) is tested with
Python's ``sqlite3`` as the stand-in driver.

Config (plain dict, already checked and decrypted by ``truenorth.measures.sources``)::

    {"driver": "trino", "params": {"host": "trino.internal", "port": 443, "user": "truenorth", ...}}

``driver`` is the name of a driver this module knows (``trino``, ``bigquery``, ``snowflake``; or the
``module:connect`` they stand for), or the name of an entry point a site installs in the
``truenorth.engines.drivers`` group (its object a DB-API ``connect`` callable or a module having one).
An arbitrary ``package.module:callable`` is refused: the config comes from an organisation's admin, and
``subprocess:run`` is a callable too. For a known driver ``params`` is checked against the parameters
listed per engine (others are refused naming the parameter); a site's own driver gets ``params`` as
they are (its code is the site's, so is the check).

Per engine (see the classes): connect timeout, server-side time limit, how a query is cancelled on the
engine, and what stands for a read-only session.
"""

from __future__ import annotations

import importlib
import ipaddress
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

from truenorth.engines.base import (
    Connector,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
    NotReadOnly,
    first_line,
)
from truenorth.engines.registry import register

#: Entry point group where a site registers DB-API drivers (``name = "package.module:connect"``).
DRIVER_GROUP = "truenorth.engines.drivers"

_TABLE_PATTERNS = (
    re.compile(r"no such table:?\s*([\w.$`\"'-]+)", re.I),
    re.compile(r"Not found: Table ([\w.:$-]+)", re.I),
    re.compile(r"Object '([^']+)' does not exist", re.I),
    re.compile(r"relation \"([^\"]+)\" does not exist", re.I),
    re.compile(r"table\s+['\"`]?([\w.:$-]+?)['\"`]?\s+(?:does not exist|not found|was not found)", re.I),
)
_COLUMN_PATTERNS = (
    re.compile(r"no such column:?\s*([\w.$`\"'-]+)", re.I),
    re.compile(r"Unrecognized name:\s*([\w$]+)", re.I),
    re.compile(r"invalid identifier '([^']+)'", re.I),
    re.compile(r"column\s+['\"`]?([\w.$]+?)['\"`]?\s+(?:does not exist|cannot be resolved|not found)", re.I),
)
_DENIED = re.compile(
    r"permission denied|access denied|not authorized|insufficient privileges|forbidden", re.I
)
_AUTH = re.compile(
    r"authenticat|incorrect username or password|invalid credentials|unauthorized|\b401\b|login failed", re.I
)
_READ_ONLY = re.compile(r"read-only|readonly|read only", re.I)
_SYNTAX = re.compile(r"syntax error|mismatched input|syntaxerror|parse error", re.I)
_CANCELLED = re.compile(
    r"interrupted|cancel+ed|timeout|timed out|exceeded (?:the )?maximum (?:time|execution time)|deadline exceeded",
    re.I,
)
_BYTES_BILLED = re.compile(r"bytes billed", re.I)
_RESOURCES = re.compile(r"exceeded (?:\S+ )?(?:memory|resource)|out of memory|memory limit", re.I)


def _import(spec: str) -> Any:
    """``package.module:attr.attr`` or ``package.module`` → the object."""
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


def _strip_name(name: str) -> str:
    return name.strip("`\"'[]").rstrip(".,;:")


class DBAPIConnector(Connector):
    """Any DB-API 2.0 driver. Subclasses set ``kind``/``dialect``, the drivers and parameters they know,
    and may override the hooks (``connect_kwargs``, ``_session_setup``, ``_execute_kwargs``,
    ``_engine_cancel``)."""

    #: Names (and the ``module:callable`` they stand for) this kind accepts as ``driver``.
    known_drivers: ClassVar[Mapping[str, str]] = {}
    #: The driver used when the config names none.
    default_driver: ClassVar[str] = ""
    #: Parameters a known driver accepts from the config (anything else is refused).
    allowed_params: ClassVar[frozenset[str]] = frozenset()
    #: Parameters never repeated in a message.
    secret_params: ClassVar[frozenset[str]] = frozenset(
        {"password", "private_key", "token", "credentials_info", "access_token"}
    )
    #: Rows asked of the driver at a time (never the whole result).
    batch_size: ClassVar[int] = 1000

    def __init__(self, config: Mapping[str, Any], limits: Limits | None = None) -> None:
        super().__init__(config, limits)
        driver = self.config.get("driver") or self.default_driver
        params = self.config.get("params", {})
        if not isinstance(driver, str) or not driver:
            raise EngineError("name the DB-API driver (driver)", field="driver")
        if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
            raise EngineError("params must be an object of driver parameters", field="params")
        self.driver = driver
        self.params: dict[str, Any] = dict(params)
        self.site_driver = False
        self.connection: Any = None
        self.cursor: Any = None
        self.rows_fetched = 0
        self._abandoned = False

    # -- driver and parameters ----------------------------------------------------------------
    def resolve_driver(self) -> Callable[..., Any]:
        """The ``connect`` callable: a site's entry point, or one of this kind's known drivers."""
        plugins = {ep.name: ep for ep in entry_points(group=DRIVER_GROUP)}
        by_value = {ep.value: ep for ep in plugins.values()}
        target: Any
        if self.driver in plugins or self.driver in by_value:
            ep = plugins.get(self.driver) or by_value[self.driver]
            try:
                target = ep.load()
            except Exception as exc:
                raise EngineUnavailable(
                    f"the driver {self.driver!r} ({ep.value}) cannot be loaded: {first_line(exc)}",
                    field="driver",
                ) from None
            self.site_driver = True
        elif self.driver in self.known_drivers or self.driver in self.known_drivers.values():
            spec = self.known_drivers.get(self.driver, self.driver)
            try:
                target = _import(spec)
            except (ImportError, AttributeError) as exc:
                package = spec.split(".")[0].split(":")[0]
                raise EngineUnavailable(
                    f"the {self.label or self.kind} driver is not installed ({package}: {first_line(exc)}); "
                    f"install it on the server (pip install {package})",
                    field="driver",
                ) from None
        else:
            known = sorted(set(self.known_drivers) | set(plugins))
            raise EngineError(
                f"unknown driver {self.driver[:80]!r}: use one of {', '.join(known) or '(none)'}, or have the "
                f"site register it as a {DRIVER_GROUP} entry point",
                field="driver",
            )
        connect = getattr(target, "connect", target)
        if not callable(connect):
            raise EngineError(f"the driver {self.driver!r} has no connect()", field="driver")
        return cast("Callable[..., Any]", connect)

    def checked_params(self) -> dict[str, Any]:
        """``params``, refusing any a known driver does not list (a site's driver gets them all)."""
        if self.site_driver:
            return dict(self.params)
        for name in self.params:
            if name not in self.allowed_params:
                raise EngineError(
                    f"{self.label or self.kind} does not take the parameter {name!r}; allowed: "
                    f"{', '.join(sorted(self.allowed_params))}",
                    field=f"params.{name}",
                )
        return dict(self.params)

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the driver's ``connect`` (hook: timeouts, authentication objects)."""
        return self.checked_params()

    def _session_setup(self, connection: Any) -> None:
        """Make the session read-only / limited where the engine can (hook)."""

    def _execute_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments of ``cursor.execute`` (hook)."""
        return {}

    def _engine_cancel(self) -> bool:
        """Engine-specific cancel; True when done (hook)."""
        return False

    # -- Connector ----------------------------------------------------------------------------
    def _connect(self) -> None:
        connect = self.resolve_driver()
        kwargs = self.connect_kwargs()
        outcome: dict[str, Any] = {}
        guard = threading.Lock()

        def run() -> None:
            try:
                conn = connect(**kwargs)
            except BaseException as exc:
                outcome["error"] = exc
                return
            with guard:
                if self._abandoned:  # the caller gave up: do not leak the session
                    try:
                        conn.close()
                    except Exception:  # noqa: S110
                        pass
                    return
                outcome["connection"] = conn

        thread = threading.Thread(target=run, name=f"truenorth-connect-{self.kind}", daemon=True)
        thread.start()
        thread.join(self.limits.connect_timeout_seconds)
        with guard:
            if "connection" not in outcome and "error" not in outcome:
                self._abandoned = True
                raise EngineUnavailable(
                    f"cannot connect to {self.label or self.kind} within "
                    f"{self.limits.connect_timeout_seconds:g} s: check the address in params",
                    field="params",
                )
        if "error" in outcome:
            raise outcome["error"]
        self.connection = outcome["connection"]
        self._session_setup(self.connection)

    def _execute(self, sql: str) -> Iterator[tuple[Any, ...]]:
        cursor = self.connection.cursor()
        self.cursor = cursor
        self.rows_fetched = 0
        try:
            if hasattr(cursor, "arraysize"):
                cursor.arraysize = self._batch()
            cursor.execute(sql, **self._execute_kwargs())
            self.columns = [str(d[0]) for d in (cursor.description or [])]
            while True:
                rows = cursor.fetchmany(self._batch())
                if not rows:
                    break
                self.rows_fetched += len(rows)
                for row in rows:
                    yield tuple(row)
        finally:
            self.cursor = None
            try:
                cursor.close()
            except Exception:  # noqa: S110 - the query's own outcome is reported
                pass

    def _batch(self) -> int:
        return max(1, min(self.batch_size, self.limits.max_rows + 1))

    def _cancel(self) -> None:
        """The engine's own cancel first, then the driver's: ``cursor.cancel()``,
        ``connection.cancel()``, ``connection.interrupt()`` (sqlite3)."""
        if self._engine_cancel():
            return
        for owner, method in (
            (self.cursor, "cancel"),
            (self.connection, "cancel"),
            (self.connection, "interrupt"),
        ):
            fn = getattr(owner, method, None) if owner is not None else None
            if callable(fn):
                fn()
                return

    def _close(self) -> None:
        with_guard = self.connection
        self.connection = None
        if with_guard is not None:
            with_guard.close()

    # -- errors -------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        for name in self.secret_params:
            value = self.params.get(name)
            if isinstance(value, str) and len(value) >= 4:
                text = text.replace(value, "***")
        return text

    def translate(self, exc: BaseException) -> EngineError:
        label = self.label or self.kind
        text = self._redact(first_line(exc))
        whole = self._redact(" ".join(str(exc).split()))[:2000]  # the driver's detail may be on line 2
        if isinstance(exc, EngineError):
            return exc
        for pattern in _TABLE_PATTERNS:
            found = pattern.search(whole)
            if found:
                name = _strip_name(found.group(1))
                return EngineError(
                    f"table {name} does not exist on {label} (or the source's user cannot read it): check the "
                    f"table names in the mapping",
                    field="tables",
                )
        for pattern in _COLUMN_PATTERNS:
            found = pattern.search(whole)
            if found:
                name = _strip_name(found.group(1))
                return EngineError(
                    f'column "{name}" does not exist in the query\'s tables on {label}: check the column names '
                    f"in the mapping",
                    field="query",
                )
        if not self.connected:
            if _AUTH.search(text):
                return EngineUnavailable(
                    f"{label} refused the credentials: {text}; check the user and password in params",
                    field="params",
                )
            return EngineUnavailable(f"cannot connect to {label}: {text}; check params", field="params")
        if _DENIED.search(text):
            return EngineError(
                f"{label}: {text}: grant the source's user read access (SELECT) to the tables", field="query"
            )
        if _READ_ONLY.search(text):
            return NotReadOnly(f"data sources are read-only: {text}", field="query")
        if _SYNTAX.search(text):
            return EngineError(f"the query is not valid {label} SQL: {text}", field="query")
        if _BYTES_BILLED.search(text):
            return EngineError(
                f"{label}: {text}; raise the source's maximum_bytes_billed or narrow the query",
                field="params.maximum_bytes_billed",
            )
        if _RESOURCES.search(text):
            return EngineError(
                f"{label} ran out of resources: {text}; narrow the query (fewer metrics, a shorter period)",
                field="query",
            )
        if _CANCELLED.search(text):
            return EngineTimeout(
                f"the query was cancelled on {label} ({text}); raise the source's timeout or narrow the query",
                field="timeout_seconds",
            )
        return EngineError(f"{label}: {text}", field="query")


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


@register
class TrinoConnector(DBAPIConnector):
    """Trino through the ``trino`` package (``trino.dbapi``).

    - connect: ``request_timeout`` is the connect timeout (every HTTP request to the coordinator); the
      session time zone is UTC (exposure-window bounds are UTC timestamps) unless ``timezone`` is given;
    - server-side limit: session property ``query_max_run_time`` = the source's timeout;
    - cancel: ``cursor.cancel()`` — the client sends DELETE to the query's URI, the coordinator kills it;
    - read-only: Trino has no read-only session; give the user SELECT-only access control rules (or use
      read-only catalogs). The read-only check refuses ``TABLE(system.query(...))`` pass-through queries.
    """

    kind = "trino"
    dialect = "trino"
    default_driver = "trino"
    known_drivers: ClassVar[Mapping[str, str]] = {"trino": "trino.dbapi:connect"}
    allowed_params = frozenset(
        {
            "host",
            "port",
            "user",
            "password",
            "catalog",
            "schema",
            "http_scheme",
            "source",
            "client_tags",
            "timezone",
        }
    )

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs = self.checked_params()
        if self.site_driver:
            return kwargs
        password = kwargs.pop("password", None)
        if password:
            auth = _import("trino.auth:BasicAuthentication")
            kwargs["auth"] = auth(kwargs.get("user", ""), password)
            kwargs.setdefault("http_scheme", "https")
        kwargs["request_timeout"] = self.limits.connect_timeout_seconds
        kwargs["http_session"] = self.http_session(str(kwargs.get("host") or ""))
        address = self.config.get("address")
        if address:
            # The address checked before the run (never a second resolution of the name: DNS rebinding);
            # the Host header and the TLS name/certificate check keep the configured name.
            kwargs["host"] = _pinned_host(str(address))
        kwargs["session_properties"] = {"query_max_run_time": f"{_seconds(self.limits.timeout_seconds)}s"}
        kwargs.setdefault("source", "truenorth")
        kwargs.setdefault("timezone", "UTC")  # metric time bounds are UTC timestamps without a zone
        return kwargs

    def http_session(self, name: str) -> requests.Session:
        """The ``requests`` session the Trino client uses. It never follows a redirect (a hostile public
        coordinator answering 307 to a private address must not get the query and credentials re-sent
        there), sends nothing to another host, port or scheme than the configured coordinator's (the
        client follows the ``nextUri`` the coordinator answers), and, when the run pinned an address,
        connects to that address with ``Host: name`` and the TLS name/certificate check on the name."""
        port = self.params.get("port") or 8080  # the trino client's default port
        scheme = str(self.params.get("http_scheme") or "")
        if not scheme:
            scheme = "https" if self.params.get("password") or port == 443 else "http"
        address = self.config.get("address")
        pinned = _pinned_host(str(address)) if address else ""
        session = _CoordinatorSession(name, int(port), scheme, pinned)
        session.max_redirects = 0  # a redirect raises TooManyRedirects instead of being followed
        if pinned and name:
            session.headers["Host"] = f"{name}:{port}"
            session.mount("https://", _NamedTLSAdapter(name))
        return session


class _CoordinatorSession(requests.Session):
    """Requests to the configured coordinator only; a pinned address replaces the name in every URL."""

    def __init__(self, name: str, port: int, scheme: str, pinned: str) -> None:
        super().__init__()
        self.coordinator = (name.lower(), port, scheme)
        self.pinned = pinned

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else str(url)
        parts = urlsplit(text)
        default = 443 if parts.scheme == "https" else 80
        name, port, scheme = self.coordinator
        host = (parts.hostname or "").lower()
        if (parts.port or default, parts.scheme) != (port, scheme) or host not in {
            name,
            self.pinned.strip("[]"),
        }:
            raise requests.exceptions.InvalidURL(
                f"the Trino coordinator sent the client to another address ({parts.scheme}://{host}:"
                f"{parts.port or default}); only {scheme}://{name}:{port} is used"
            )
        if self.pinned and host == name:
            text = urlunsplit(parts._replace(netloc=f"{self.pinned}:{port}"))
        verb = method.decode() if isinstance(method, bytes) else method
        return super().request(verb, text, *args, **kwargs)


def _pinned_host(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)  # an address, never a name
    except ValueError:
        raise EngineError("the pinned address is not an IP address", field="params.host") from None
    return f"[{ip}]" if ip.version == 6 else str(ip)


class _NamedTLSAdapter(HTTPAdapter):
    """HTTPS to a pinned address with SNI and the certificate check on the configured name."""

    def __init__(self, name: str) -> None:
        self.tls_name = name
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self.tls_name
        kwargs["assert_hostname"] = self.tls_name
        super().init_poolmanager(*args, **kwargs)


@register
class BigQueryConnector(DBAPIConnector):
    """BigQuery through ``google-cloud-bigquery``'s DB-API module (``google.cloud.bigquery.dbapi``).

    - credentials: a service account key in ``params.credentials_info`` (required: the server's own
      Google credentials are never used for an organisation's source), ``project``, ``location``, and
      ``dataset`` (the default dataset unqualified table names resolve in: a project ID with a hyphen
      cannot be written in the mapping's ``[catalog.]schema.table``);
    - server-side limit: the job's ``job_timeout_ms`` = the source's timeout, ``maximum_bytes_billed``
      when given (a query that would scan more fails before it runs);
    - cancel: the running query job's ``cancel()`` (the DB-API cursor keeps the job while it waits);
    - read-only: a service account with BigQuery Data Viewer + Job User only.
    """

    kind = "bigquery"
    dialect = "bigquery"
    default_driver = "bigquery"
    known_drivers: ClassVar[Mapping[str, str]] = {"bigquery": "google.cloud.bigquery.dbapi:connect"}
    allowed_params = frozenset({"project", "dataset", "credentials_info", "location", "maximum_bytes_billed"})

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs = self.checked_params()
        if self.site_driver:
            return kwargs
        info = kwargs.get("credentials_info")
        if not isinstance(info, Mapping) or not info:
            raise EngineError(
                "a BigQuery source needs a service account key (params.credentials_info); the server's own "
                "Google credentials are never used",
                field="params.credentials_info",
            )
        credentials = _import("google.oauth2.service_account:Credentials").from_service_account_info(
            dict(info)
        )
        client_cls = _import("google.cloud.bigquery:Client")
        client = client_cls(
            project=kwargs.get("project") or info.get("project_id"),
            credentials=credentials,
            location=kwargs.get("location"),
        )
        return {"client": client}

    def _execute_kwargs(self) -> dict[str, Any]:
        if self.site_driver:
            return {}
        config = _import("google.cloud.bigquery:QueryJobConfig")(use_legacy_sql=False)
        config.job_timeout_ms = int(self.limits.timeout_seconds * 1000)
        dataset = self.params.get("dataset")
        if dataset:  # unqualified table names (the mapping's "events") resolve in it
            project = self.params.get("project") or (self.params.get("credentials_info") or {}).get(
                "project_id"
            )
            config.default_dataset = (
                f"{project}.{dataset}" if project and "." not in str(dataset) else str(dataset)
            )
        maximum = self.params.get("maximum_bytes_billed")
        if maximum:
            config.maximum_bytes_billed = int(maximum)
        return {"job_config": config}

    def _engine_cancel(self) -> bool:
        job = getattr(self.cursor, "_query_job", None)
        if job is not None and callable(getattr(job, "cancel", None)):
            job.cancel()
            return True
        return False


@register
class SnowflakeConnector(DBAPIConnector):
    """Snowflake through ``snowflake-connector-python`` (``snowflake.connector``).

    - connect: ``login_timeout`` is the connect timeout, ``network_timeout`` bounds each request;
    - server-side limit: session parameter ``STATEMENT_TIMEOUT_IN_SECONDS`` = the source's timeout;
      ``TIMEZONE`` = UTC (exposure-window bounds are UTC timestamps);
    - cancel: ``SYSTEM$CANCEL_ALL_QUERIES(<session id>)`` on a second cursor of the same connection
      (the connector runs one query at a time), else the cursor's ``abort_query``;
    - read-only: Snowflake has no read-only session; use a role with USAGE + SELECT grants only.
    """

    kind = "snowflake"
    dialect = "snowflake"
    default_driver = "snowflake"
    known_drivers: ClassVar[Mapping[str, str]] = {"snowflake": "snowflake.connector:connect"}
    allowed_params = frozenset({"account", "user", "password", "warehouse", "database", "schema", "role"})

    def connect_kwargs(self) -> dict[str, Any]:
        kwargs = self.checked_params()
        if self.site_driver:
            return kwargs
        kwargs["login_timeout"] = _seconds(self.limits.connect_timeout_seconds)
        kwargs["network_timeout"] = _seconds(self.limits.timeout_seconds) + 60
        kwargs["client_session_keep_alive"] = False
        kwargs["session_parameters"] = {
            "STATEMENT_TIMEOUT_IN_SECONDS": _seconds(self.limits.timeout_seconds),
            "QUERY_TAG": "truenorth",
            "TIMEZONE": "UTC",  # metric time bounds are UTC timestamps without a zone
        }
        return kwargs

    def _engine_cancel(self) -> bool:
        session = getattr(self.connection, "session_id", None)
        if self.connection is not None and isinstance(session, int):
            cancel_cursor = self.connection.cursor()
            try:
                cancel_cursor.execute(f"SELECT SYSTEM$CANCEL_ALL_QUERIES({int(session)})")
            finally:
                cancel_cursor.close()
            return True
        query_id = getattr(self.cursor, "sfqid", None)
        abort = getattr(self.cursor, "abort_query", None)
        if query_id and callable(abort):
            abort(query_id)
            return True
        return False
