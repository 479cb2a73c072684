"""ClickHouse connectors (dialect "clickhouse"; see truenorth.engines.base).

Two kinds share the dialect, the error translation and the limits sent to the engine:

- ``ChDBConnector`` (kind "chdb", tested on the real engine): the ClickHouse engine embedded in the
  worker process through the ``chdb`` package. ``config["tables"]`` maps view names to Parquet/CSV files
  (or directories of Parquet parts); each becomes a ``File`` engine table in a database private to the
  connector (random name), which is the session's current database. It runs **inside the worker
  process**: chDB has one global engine per process, shared by every connector, so isolation is done
  here (see `ChDBConnector`).
- ``ClickHouseConnector`` (kind "clickhouse", tested "compiled": its requests are checked against a
  local HTTP stand-in, no server runs in CI): a server or cluster by URL through ``clickhouse-connect``.

Limits are enforced by the engine itself (``max_execution_time`` with ``timeout_overflow_mode=throw``,
``max_result_rows``/``max_result_bytes`` with ``result_overflow_mode=throw``, ``max_memory_usage``) and
again by `Connector.stream` (the Python watchdog, which kills the query on the engine, and the caps).
``join_use_nulls=1`` makes unmatched LEFT JOIN columns NULL as in standard SQL (ClickHouse fills them
with type defaults otherwise; the compiled evidence SQL gives the same numbers either way).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from truenorth.engines.base import (
    Connector,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
    NotReadOnly,
    ResultTooLarge,
)
from truenorth.engines.registry import register

#: Per-query memory ceiling (bytes) whatever a source asks for.
MAX_MEMORY_BYTES = 8 * 1024**3
DEFAULT_MEMORY_BYTES = 2 * 1024**3
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_FILE_FORMATS = {".parquet": "Parquet", ".csv": "CSVWithNames", ".tsv": "TSVWithNames"}
_CODE = re.compile(r"Code:\s*(\d+)")
_QUOTED = re.compile(r"[`'\"]([^`'\"]{1,200})[`'\"]")

#: Table functions a chDB query may use (generators only; every other one reads files, URLs, other
#: databases or other connectors' tables). Lower-cased.
CHDB_TABLE_FUNCTIONS = frozenset({"numbers", "numbers_mt", "generate_series", "generateseries", "values"})
#: Scalar functions refused on chDB: they read files (``file`` ignores user_files_path in embedded mode),
#: the caller's Python objects, other tables, dictionaries or the host's configuration.
CHDB_DENIED_FUNCTIONS = frozenset(
    {
        "file",
        "python",
        "arrowstream",
        "joinget",
        "joingetornull",
        "hascolumnintable",
        "getserversetting",
        "getmergetreesetting",
        "getmacro",
        "hostname",
        "fullhostname",
        "filesystemavailable",
        "filesystemcapacity",
        "filesystemunreserved",
        "currentrequesturl",
    }
)
_IN_FUNCTIONS = frozenset({"in", "notin", "globalin", "globalnotin", "nullin", "notnullin", "globalnullin"})


def clickhouse_settings(limits: Limits, config: Mapping[str, Any]) -> dict[str, int | str]:
    """The settings every ClickHouse query runs with (the server gets them with each request)."""
    try:
        memory = int(config.get("max_memory_bytes") or DEFAULT_MEMORY_BYTES)
    except (TypeError, ValueError):
        raise EngineError(
            "max_memory_bytes must be a whole number of bytes", field="max_memory_bytes"
        ) from None
    return {
        "max_execution_time": max(1, math.ceil(limits.timeout_seconds)),
        "timeout_overflow_mode": "throw",
        # One more than the cap, so that the shared cap in Connector.stream reports it.
        "max_result_rows": limits.max_rows + 1,
        "max_result_bytes": limits.max_bytes * 4,
        "result_overflow_mode": "throw",
        "max_memory_usage": min(max(memory, 64 * 1024**2), MAX_MEMORY_BYTES),
        "join_use_nulls": 1,
        # Standard SQL name resolution: in ``SELECT MIN(variation) AS variation, MAX(variation) ...`` the
        # second ``variation`` is the column, not the alias (ClickHouse's default reads the alias and
        # refuses an aggregate inside an aggregate; the compiled evidence SQL relies on this).
        "prefer_column_name_to_alias": 1,
    }


class _ClickHouseErrors:
    """ClickHouse error codes → messages naming the table, column or setting to fix."""

    kind: ClassVar[str]
    limits: Limits
    _database: str = ""

    def _where(self) -> str:
        return "ClickHouse"

    def translate(self, exc: BaseException) -> EngineError:
        if isinstance(exc, EngineError):
            return exc
        text = _strip(str(exc), self._database)
        match = _CODE.search(text)
        code = int(match.group(1)) if match else None
        detail = _detail(text)
        name = _quoted_name(detail)
        where = self._where()
        if code in (60, 81, 390):  # UNKNOWN_TABLE, UNKNOWN_DATABASE, CANNOT_GET_CREATE_TABLE_QUERY
            return EngineError(
                f"{where} has no table {name!r}; check the source's table names"
                if name
                else f"{where}: {detail}",
                field="tables",
            )
        if code in (47, 16):  # UNKNOWN_IDENTIFIER, NO_SUCH_COLUMN_IN_TABLE
            return EngineError(
                f"{where} has no column {name!r}; check the column names in the query or mapping"
                if name
                else f"{where}: {detail}",
                field="query",
            )
        if code == 46:  # UNKNOWN_FUNCTION
            return EngineError(f"{where} has no function {name!r}", field="query")
        if code in (159, 394):  # TIMEOUT_EXCEEDED, QUERY_WAS_CANCELLED
            return EngineTimeout(
                f"the query ran longer than {self.limits.timeout_seconds:g} s (max_execution_time) and was "
                "cancelled on the engine; raise the source's timeout or narrow the query",
                field="timeout_seconds",
            )
        if code in (
            164,
            497,
            452,
            446,
        ):  # READONLY, ACCESS_DENIED, SETTING_CONSTRAINT_VIOLATION, FUNCTION_NOT_ALLOWED
            return NotReadOnly(
                f"{where} refused the query: the session is read-only (readonly=1) and may not write, "
                "change settings or read files, URLs or other databases",
                field="query",
            )
        if code in (396, 158):  # TOO_MANY_ROWS_OR_BYTES, TOO_MANY_ROWS
            return ResultTooLarge(
                f"the query returned more than {self.limits.max_rows} rows or "
                f"{self.limits.max_bytes // 1024} KiB (max_result_rows/max_result_bytes)",
                field="query",
            )
        if code == 241:  # MEMORY_LIMIT_EXCEEDED
            return EngineError(
                f"{where} ran out of memory for the query (max_memory_usage); narrow the query",
                field="max_memory_bytes",
            )
        if code == 62:  # SYNTAX_ERROR
            return EngineError(f"{where} could not parse the query: {detail[:200]}", field="query")
        if code in (
            516,
            192,
            193,
            194,
        ):  # AUTHENTICATION_FAILED, UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD
            return EngineUnavailable(
                f"{where} refused the credentials; check the source's username and password", field="password"
            )
        if code in (209, 210, 279, 1000):  # SOCKET_TIMEOUT, NETWORK_ERROR, ALL_CONNECTION_TRIES_FAILED, POCO
            return EngineUnavailable(f"{where} is not reachable: {detail[:200]}", field="url")
        if code is not None:
            return EngineError(f"{where} could not run the query: {detail[:300]}", field="query")
        return EngineError(
            f"{where} could not run the query: {detail[:300] or type(exc).__name__}", field="query"
        )


def _strip(text: str, database: str) -> str:
    """The connector's private database name is an implementation detail: leave it out of messages."""
    if database:
        text = text.replace(f"{database}.", "").replace(database, "the source")
    return text


def _detail(text: str) -> str:
    """The engine's message without code, stack trace, version trailer or echoed query."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    first = next((line for line in lines if "DB::Exception" in line), lines[0] if lines else "")
    first = re.sub(r"^.*?DB::Exception:\s*", "", first)
    first = re.sub(r"^Code:\s*\d+\.\s*", "", first)
    first = re.sub(r"\s*\(version [^)]*\)\.?", "", first)
    first = re.sub(r"\s*In scope .*$", "", first)
    first = re.sub(r"\s*Maybe you meant [^.]*\.", "", first)
    return first.strip()


def _quoted_name(detail: str) -> str:
    match = _QUOTED.search(detail)
    if match:
        return match.group(1)
    match = re.search(r"[Tt]able (\S+) does(?:n't| not) exist", detail)
    return match.group(1).strip(".`") if match else ""


def _check_tables(config: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """``config["tables"]`` → {name: (ClickHouse path, format)}; names are identifiers, paths absolute
    existing Parquet/CSV files or directories of Parquet files."""
    tables = config.get("tables") or {}
    if not isinstance(tables, Mapping):
        raise EngineError("tables must map view names to Parquet files", field="tables")
    checked: dict[str, tuple[str, str]] = {}
    for name, raw in tables.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise EngineError(
                f"{str(name)[:80]!r} is not a table name (letters, digits and _)", field="tables"
            )
        path = Path(str(raw))
        if not path.is_absolute() or not path.exists():
            raise EngineError(
                f"table {name!r}: {str(raw)[:200]!r} is not an existing absolute path", field="tables"
            )
        if any(c in str(path) for c in "*?{}[]'\\\x00"):
            raise EngineError(f"table {name!r}: the path may not contain wildcards or quotes", field="tables")
        if path.is_dir():
            if not any(path.glob("*.parquet")):
                raise EngineError(f"table {name!r}: {path} has no .parquet files", field="tables")
            checked[name] = (str(path / "*.parquet"), "Parquet")
            continue
        fmt = _FILE_FORMATS.get(path.suffix.lower())
        if fmt is None or not path.is_file():
            raise EngineError(f"table {name!r}: {path.name} is not a .parquet or .csv file", field="tables")
        checked[name] = (str(path), fmt)
    return checked


_DATETIME = re.compile(r"^(?:Nullable\(|LowCardinality\()*DateTime(?:\(|$)")
_EPOCH = dt.datetime(1970, 1, 1)


def _seconds_to_datetime(value: Any) -> Any:
    """A ClickHouse ``DateTime`` in Arrow output (seconds since the epoch, uint32) → naive UTC."""
    return _EPOCH + dt.timedelta(seconds=value) if isinstance(value, int) else value


def _plain_value(value: Any) -> Any:
    # Timestamps come back as UTC-aware datetimes (session_timezone=UTC); DuckDB and the other engines
    # return naive UTC datetimes for a Parquet timestamp without time zone.
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def check_ast(ast: str) -> None:
    """Check ClickHouse's own parse of a query (``EXPLAIN AST`` text), so that no difference between its
    parser and SQLGlot's (the read-only check) can hide a table function or another database: every
    table is unqualified (the connector's own database, or a CTE), table functions are generators only,
    the denied functions are absent, and ``x IN t`` never names a qualified table."""
    lines = [(len(line) - len(line.lstrip()), line.strip()) for line in ast.splitlines() if line.strip()]
    # One plain SELECT/UNION: a second child of the top node is INTO OUTFILE (which chDB writes even
    # with readonly=1), FORMAT or SETTINGS.
    if not lines or lines[0][1] != "SelectWithUnionQuery (children 1)":
        raise NotReadOnly(
            "only one plain SELECT is allowed (no INTO OUTFILE, FORMAT or SETTINGS clause)", field="query"
        )
    for i, (indent, text) in enumerate(lines):
        if text.startswith("TableIdentifier "):
            name = re.sub(r"\s*\(alias .*\)$", "", text[len("TableIdentifier ") :])
            if "." in name:
                raise NotReadOnly(
                    f"table {name!r}: a query may only read the source's own tables", field="query"
                )
        elif text.startswith("Function "):
            shown = text.split()[1]
            name = shown.lower()
            if i and lines[i - 1][1].startswith("TableExpression") and name not in CHDB_TABLE_FUNCTIONS:
                raise NotReadOnly(
                    f"table function {shown!r} is not allowed; read the source's tables", field="query"
                )
            if name in CHDB_DENIED_FUNCTIONS or name.startswith("dict"):
                raise NotReadOnly(f"function {shown!r} is not allowed", field="query")
            if name in _IN_FUNCTIONS:
                operands = []
                for depth, child in lines[i + 2 :]:
                    if depth <= indent + 1:
                        break
                    if depth == indent + 2:
                        operands.append(child)
                if len(operands) >= 2 and operands[1].startswith("Identifier ") and "." in operands[1]:
                    raise NotReadOnly(
                        f"{operands[1].split()[1]!r}: IN may not read another table", field="query"
                    )


# -- chDB (embedded) ------------------------------------------------------------------------------------

#: chDB has one engine per process; creating/dropping databases is serialised.
_CHDB_SETUP = threading.Lock()


@register
class ChDBConnector(_ClickHouseErrors, Connector):
    """The ClickHouse engine embedded through chDB, over Parquet/CSV files only.

    Inside the worker process: chDB has one global engine per process, shared by every connector (and so
    every organisation) in it. Each connector therefore gets a private database with a random name and two
    sessions: a control session (creates the ``File`` tables, kills a running query, drops the database)
    and the query session (current database = the private one, limits set, then ``readonly=1``, after
    which the engine refuses writes, DDL, settings changes and the file/url/s3/remote/mysql/postgresql/
    executable/… table functions). What readonly does not stop — the ``file()`` scalar function (embedded
    mode ignores ``user_files_path``), ``python()`` (reads the worker's Python objects), ``merge()``, and
    other databases (``system.processes`` shows other connectors' queries) — is refused before the query
    runs by checking ClickHouse's own parse of it (`check_ast`): tables unqualified, table functions
    generators only. Cancel: ``KILL QUERY`` from the control session (a running embedded query cannot be
    interrupted through chDB's streaming ``cancel()``, which blocks until the query ends); the engine also
    enforces ``max_execution_time`` itself."""

    kind = "chdb"
    dialect = "clickhouse"

    def __init__(self, config: Mapping[str, Any], limits: Limits | None = None) -> None:
        super().__init__(config, limits)
        self._tables = _check_tables(self.config)
        self._database = ""
        self._control: Any = None
        self._session: Any = None
        self._tag = ""
        self._stale = False
        self._query_lock = threading.Lock()

    def _where(self) -> str:
        return "chDB"

    def _connect(self) -> None:
        try:
            from chdb.state import sqlitelike
        except ImportError:
            raise EngineUnavailable(
                "chDB is not installed on this server (pip install chdb)", field="kind"
            ) from None
        database = f"tn_{uuid.uuid4().hex}"
        with _CHDB_SETUP:
            control = sqlitelike.Connection(":memory:")
            self._control = control
            control.query(f"CREATE DATABASE {database}")
            self._database = database
            for name, (path, fmt) in self._tables.items():
                # name and database are identifiers, the path is checked free of quotes and backslashes.
                control.query(f"CREATE TABLE {database}.`{name}` ENGINE = File({fmt}, '{path}')")
        self._session = self._open_session()

    def _open_session(self) -> Any:
        """The query session: the private database, UTC, the limits, then readonly=1 (after which its
        settings cannot change)."""
        from chdb.state import sqlitelike

        session = sqlitelike.Connection(":memory:")
        try:
            session.query(f"USE {self._database}")
            session.query("SET session_timezone = 'UTC'")
            # File tables have no row counts, so 'auto' builds the LEFT JOIN's hash table from the right
            # side (all the events); the evidence query's left side (the experiment's units) is the
            # small one: 1.7x faster at 2M events.
            session.query("SET query_plan_join_swap_table = 'true'")
            session.query("SET allow_introspection_functions = 0")  # chDB enables them by default
            for key, value in clickhouse_settings(self.limits, self.config).items():
                session.query(f"SET {key} = {_setting_literal(value)}")
            session.query("SET readonly = 1")
        except Exception:
            session.close()
            raise
        return session

    def _execute(self, sql: str) -> Iterator[tuple[Any, ...]]:
        # The whole result comes back at once (chDB's streaming cancel blocks while a query runs), but
        # the engine caps it first (max_result_rows = max_rows + 1, max_result_bytes).
        with self._query_lock:
            if self._stale:
                # A killed or failed query can leave chDB's session returning the previous result.
                old, self._session = self._session, None
                old.close()
                self._session = self._open_session()
                self._stale = False
            session = self._session
            try:
                tag = f"tn-query-{uuid.uuid4().hex}"
                check_ast(session.query(f"EXPLAIN AST {sql}", "TSVRaw").bytes().decode())
                # From here on the engine may run the query (DESCRIBE evaluates scalar subqueries):
                # tagged, so that the watchdog can kill it.
                self._tag = tag
                # Arrow carries DateTime as seconds (uint32): the column types say which are times.
                described = session.query(f"/* {tag} */ DESCRIBE ({sql})", "ArrowTable").to_pydict()
                times = [bool(_DATETIME.match(str(t))) for t in described["type"]]
                table = session.query(f"/* {tag} */ {sql}", "ArrowTable")
            except BaseException:
                self._stale = True
                raise
            finally:
                self._tag = ""
        self.columns = [str(name) for name in table.column_names]
        if len(times) != len(self.columns):
            times = [False] * len(self.columns)
        for batch in table.to_batches(max_chunksize=1024):
            columns = [
                [_seconds_to_datetime(v) for v in column.to_pylist()] if is_time else column.to_pylist()
                for column, is_time in zip(batch.columns, times, strict=True)
            ]
            for row in zip(*columns, strict=True):
                yield tuple(_plain_value(v) for v in row)

    def _cancel(self) -> None:
        tag, control = self._tag, self._control
        if tag and control is not None:
            control.query(
                f"KILL QUERY WHERE position(query, '{tag}') = 4 ASYNC"  # the tag follows '/* '
            )

    def _close(self) -> None:
        session, control, database = self._session, self._control, self._database
        self._session = self._control = None
        try:
            if session is not None:
                session.close()
        finally:
            if control is not None:
                with _CHDB_SETUP:
                    try:
                        # Dropping File tables with an explicit path leaves the files in place.
                        if database:
                            control.query(f"DROP DATABASE IF EXISTS {database} SYNC")
                    finally:
                        control.close()


def _setting_literal(value: int | str) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# -- ClickHouse server / cluster (clickhouse-connect) ---------------------------------------------------


def _no_redirects_pool(server_host_name: str | None = None) -> Any:
    """An HTTP pool for one connector that never follows a redirect: the source's address is checked
    (not private) by the caller, and a hostile server must not send the request (and its credentials)
    on to another address with a 3xx. TLS is verified as clickhouse-connect's own pool does."""
    from clickhouse_connect.driver.httputil import get_pool_manager_options
    from urllib3 import PoolManager

    class NoRedirects(PoolManager):
        def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:  # type: ignore[override]
            return super().urlopen(method, url, redirect=False, **kw)

    options: dict[str, Any] = {}
    if server_host_name:  # connecting to a pinned address: verify the certificate against the name
        options = {"assert_hostname": server_host_name, "server_hostname": server_host_name}
    return NoRedirects(**get_pool_manager_options(verify=True, **options))


@register
class ClickHouseConnector(_ClickHouseErrors, Connector):
    """A ClickHouse server or cluster by URL (HTTP interface, ``clickhouse-connect``).

    Every query carries the limits and ``readonly=1`` as request settings when the user's profile
    allows (see `settings`), a query id set here (``KILL QUERY WHERE query_id = …`` at the timeout;
    KILL QUERY is allowed whatever ``readonly`` is), and ``cancel_http_readonly_queries_on_client_close``.
    The real boundary is the server's: give TrueNorth a user with SELECT on the events database only and
    a profile with ``readonly=2`` plus settings constraints (max ``max_execution_time``,
    ``max_memory_usage``, ``max_result_rows``), or ``readonly=0`` with SELECT-only grants."""

    kind = "clickhouse"
    dialect = "clickhouse"
    #: No ClickHouse server runs in CI: its requests are checked against a local HTTP stand-in.
    tested = "compiled"

    def __init__(self, config: Mapping[str, Any], limits: Limits | None = None) -> None:
        super().__init__(config, limits)
        url = str(self.config.get("url") or "")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise EngineError(f"{url[:100]!r} is not a ClickHouse URL (http(s)://host:8123)", field="url")
        self.url = (
            f"{parts.scheme}://{parts.hostname}:{parts.port or (8443 if parts.scheme == 'https' else 8123)}"
        )
        self._parts = parts
        # The address to connect to, checked by the caller (DNS rebinding: the name is not resolved again).
        address = str(self.config.get("address") or "")
        if address:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise EngineError(f"{address[:60]!r} is not an IP address", field="url") from None
        self._address = address
        self._client: Any = None
        self._query_id = ""
        self._profile_readonly = 0
        self._pool: Any = None

    def _where(self) -> str:
        return f"ClickHouse at {self.url}"

    def settings(self) -> dict[str, int | str]:
        """The settings sent with every query, by the ``readonly`` of the user's profile: 0 → ``readonly=1``
        with the limits (the server checks a request's settings against the profile before applying
        them all, so both take effect); 2 → the limits only (the profile already refuses writes and DDL,
        and refuses any change of ``readonly``); 1 → nothing (the profile refuses every setting: its own
        limits apply, with the Python watchdog's KILL QUERY)."""
        if self._profile_readonly == 1:
            return {}
        limits: dict[str, int | str] = {
            **clickhouse_settings(self.limits, self.config),
            "cancel_http_readonly_queries_on_client_close": 1,
        }
        return limits if self._profile_readonly == 2 else {"readonly": 1, **limits}

    def _connect(self) -> None:
        try:
            import clickhouse_connect
        except ImportError:
            raise EngineUnavailable(
                "clickhouse-connect is not installed on this server (pip install clickhouse-connect)",
                field="kind",
            ) from None
        parts = self._parts
        try:
            self._pool = _no_redirects_pool(parts.hostname if self._address else None)
            self._client = clickhouse_connect.get_client(
                pool_mgr=self._pool,
                host=self._address or parts.hostname,
                # Pinned: the Host header and TLS (SNI, certificate) still use the name.
                server_host_name=parts.hostname if self._address else None,
                port=parts.port or (8443 if parts.scheme == "https" else 8123),
                secure=parts.scheme == "https",
                username=str(self.config.get("username") or "default"),
                password=str(self.config.get("password") or ""),
                database=str(self.config.get("database") or "") or None,
                connect_timeout=self.limits.connect_timeout_seconds,
                send_receive_timeout=self.limits.timeout_seconds + self.limits.connect_timeout_seconds,
                autogenerate_session_id=False,
                query_limit=0,
                query_retries=0,
            )
        except Exception as exc:
            raise self._unavailable(exc) from None
        profile = getattr(self._client, "server_settings", {}).get("readonly")
        value = str(getattr(profile, "value", "0"))
        self._profile_readonly = int(value) if value in ("0", "1", "2") else 1

    def _unavailable(self, exc: BaseException) -> EngineError:
        translated = self.translate(exc)
        if isinstance(translated, EngineUnavailable) or _CODE.search(str(exc)) is None:
            message = translated.message if isinstance(translated, EngineUnavailable) else ""
            return EngineUnavailable(
                message
                or f"cannot connect to ClickHouse at {self.url} within "
                f"{self.limits.connect_timeout_seconds:g} s; check the URL and that the server is reachable",
                field="url",
            )
        return translated

    def _execute(self, sql: str) -> Iterator[tuple[Any, ...]]:
        self._query_id = f"truenorth-{uuid.uuid4()}"
        try:
            stream = self._client.query_row_block_stream(
                sql, settings={**self.settings(), "query_id": self._query_id}
            )
        except Exception as exc:
            if _CODE.search(str(exc)) is None:
                raise self._unavailable(exc) from None
            raise
        with stream:
            self.columns = [str(name) for name in stream.source.column_names]
            for block in stream:
                for row in block:
                    yield tuple(_plain_value(v) for v in row)

    def _cancel(self) -> None:
        if self._client is not None and self._query_id:
            self._client.command(
                "KILL QUERY WHERE query_id = {qid:String} ASYNC", parameters={"qid": self._query_id}
            )

    def _close(self) -> None:
        client, self._client = self._client, None
        pool, self._pool = self._pool, None
        try:
            if client is not None:
                client.close()
        finally:
            if pool is not None:
                pool.clear()
