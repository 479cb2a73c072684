"""PostgreSQL through psycopg: a read-only session with the time limit set on the server too.

Config: ``{"dsn": "postgres://user:password@host:5432/db", "search_path": optional schema}``. The
caller (`truenorth.measures.sources`) has already checked and pinned the address; it may pass
``after_connect`` (a callable given the open psycopg connection, e.g. to refuse TrueNorth's own
database by the server's identity), run before any query.

The session starts with ``default_transaction_read_only=on``, a server-side ``statement_timeout``
(a little above the source's timeout, so the server stops the query even if TrueNorth's process
dies) and ``idle_in_transaction_session_timeout``; the query runs inside ``BEGIN READ ONLY`` through a
server-side (named) cursor, which PostgreSQL refuses for anything but one query, and rows come back in
batches. The watchdog cancels it on the server (``cancel_safe``, the protocol's cancel request).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

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

BATCH_ROWS = 2000
#: The server's own limit is the source's timeout plus this (the watchdog normally fires first).
SERVER_GRACE_MS = 2000
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


@register
class PostgresConnector(Connector):
    """PostgreSQL (and compatible servers) through psycopg 3."""

    kind = "postgres"
    dialect = "postgres"

    def __init__(
        self,
        config: Mapping[str, Any],
        limits: Limits | None = None,
        *,
        after_connect: Callable[[Any], None] | None = None,
        server_grace_ms: int = SERVER_GRACE_MS,
    ) -> None:
        super().__init__(config, limits)
        self.after_connect = after_connect
        self.server_grace_ms = max(0, int(server_grace_ms))
        self.connection: Any = None
        self._params: dict[str, Any] = {}

    def _conninfo(self) -> str:
        import psycopg

        try:
            params = psycopg.conninfo.conninfo_to_dict(str(self.config.get("dsn") or ""))
        except psycopg.Error:
            raise EngineUnavailable("the PostgreSQL address (dsn) is not valid", field="dsn") from None
        self._params = dict(params)
        timeout_ms = int(self.limits.timeout_seconds * 1000)
        params["passfile"] = os.devnull  # never the server process's own ~/.pgpass
        options = str(params.get("options") or "")
        params["options"] = (
            f"{options} -c default_transaction_read_only=on "
            f"-c statement_timeout={timeout_ms + self.server_grace_ms} "
            f"-c idle_in_transaction_session_timeout={timeout_ms + self.server_grace_ms + 5000}"
        ).strip()
        # libpq waits at least 2 s; a fraction would read as "forever" (0).
        params["connect_timeout"] = str(max(2, math.ceil(self.limits.connect_timeout_seconds)))
        params.setdefault("application_name", "truenorth")
        return str(psycopg.conninfo.make_conninfo("", **params))

    def _connect(self) -> None:
        import psycopg
        from psycopg import sql as pgsql

        conninfo = self._conninfo()
        search_path = self.config.get("search_path")
        if search_path and not _SCHEMA.fullmatch(str(search_path)):
            raise EngineUnavailable(
                f"the search path {search_path!r} is not a schema name", field="search_path"
            )
        self.connection = psycopg.connect(conninfo, autocommit=True)
        if search_path:
            self.connection.execute(
                pgsql.SQL("SET search_path = {}").format(pgsql.Identifier(str(search_path)))
            )
        if self.after_connect is not None:
            self.after_connect(self.connection)
        self.connection.autocommit = False
        self.connection.read_only = True  # every transaction: BEGIN READ ONLY

    def _execute(self, sql: str) -> Iterator[tuple[Any, ...]]:
        conn = self.connection
        try:
            # A named cursor is DECLARE … CURSOR FOR <query>: one query, nothing else, rows in batches.
            with conn.cursor(name="truenorth_query") as cursor:
                cursor.execute(sql.encode())
                self.columns = [d.name for d in cursor.description or []]
                while True:
                    batch = cursor.fetchmany(BATCH_ROWS)
                    if not batch:
                        return
                    yield from batch
        finally:
            try:
                conn.rollback()
            except Exception:  # noqa: S110 - a broken connection is reported by the query's error
                pass

    def _cancel(self) -> None:
        if self.connection is not None:
            self.connection.cancel_safe(timeout=5.0)

    def _close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _server(self) -> str:
        host = str(self._params.get("host") or self._params.get("hostaddr") or "localhost")
        return f"{host}:{self._params.get('port') or 5432}"

    def translate(self, exc: BaseException) -> EngineError:
        import psycopg
        from psycopg import errors

        text = first_line(getattr(getattr(exc, "diag", None), "message_primary", None) or exc)
        if isinstance(exc, errors.QueryCanceled):
            return EngineTimeout(
                f"the query ran longer than {self.limits.timeout_seconds:g} s and was cancelled on the server",
                field="timeout_seconds",
            )
        if isinstance(exc, errors.UndefinedTable):
            found = re.search(r'relation "([^"]+)" does not exist', text)
            name = found.group(1) if found else "?"
            where = f" (search path {self.config['search_path']})" if self.config.get("search_path") else ""
            return EngineError(
                f'table "{name}" does not exist{where}: check tables.{name.split(".")[-1]} in the mapping',
                field=f"tables.{name.split('.')[-1]}",
            )
        if isinstance(exc, errors.UndefinedColumn):
            found = re.search(r"column (\S+) does not exist", text)
            column = found.group(1).strip('"') if found else "?"
            if "." in column:
                table, column = column.rsplit(".", 1)
                what = f'column "{column}" does not exist in {table}'
            else:
                what = f'column "{column}" does not exist in the query\'s tables'
            return EngineError(f"{what}: check the column names in the mapping", field="query")
        if isinstance(exc, errors.InsufficientPrivilege):
            return EngineError(
                f"{text}: grant the source's role SELECT on it (and USAGE on its schema)", field="query"
            )
        if isinstance(exc, errors.ReadOnlySqlTransaction):
            return NotReadOnly(f"data sources are read-only: {text}", field="query")
        if isinstance(exc, errors.SyntaxError):
            return EngineError(f"the query is not valid PostgreSQL SQL: {text}", field="query")
        if isinstance(exc, errors.InvalidCursorDefinition | errors.FeatureNotSupported):
            return NotReadOnly(f"only one read-only query may run: {text}", field="query")
        if isinstance(exc, psycopg.OperationalError) and (not self.connected or self.connection is None):
            reason = _connect_reason(str(exc))
            user = self._params.get("user")
            who = f" as {user}" if user else ""
            return EngineUnavailable(
                f"cannot connect to {self._server()}{who}: {reason}; check the dsn", field="dsn"
            )
        if isinstance(exc, psycopg.OperationalError):
            return EngineUnavailable(f"lost the connection to {self._server()}: {text}", field="dsn")
        if isinstance(exc, psycopg.Error):
            return EngineError(f"PostgreSQL: {text}", field="query")
        return EngineError(f"PostgreSQL: {first_line(exc)}", field="query")


def _connect_reason(message: str) -> str:
    """libpq's connect failure, without the address list it repeats per host."""
    lowered = message.lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("timeout expired", "connection timed out"),
        ("password authentication failed", "password authentication failed"),
        ("no password supplied", "a password is needed"),
        ("does not exist", "no such database or role"),
        ("could not translate host name", "unknown host name"),
        ("no pg_hba.conf entry", "the server does not accept this client (pg_hba.conf)"),
        ("ssl", "SSL negotiation failed"),
    ):
        if needle in lowered:
            return reason
    return first_line(message.split(": ", 1)[-1] if "failed: " in message else message)
