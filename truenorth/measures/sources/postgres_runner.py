"""Running a query on a PostgreSQL source: pinned addresses, read-only session, and the server checks
(never TrueNorth's own database, never a role that reaches beyond read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from truenorth.core.errors import ValidationFailed
from truenorth.engines.base import (
    MAX_ROWS,
    EngineError,
    EngineTimeout,
    EngineUnavailable,
    Limits,
    NotReadOnly,
)
from truenorth.engines.postgres_engine import PostgresConnector
from truenorth.measures.models import DataSource
from truenorth.measures.sources._common import (
    DANGEROUS_ROLES,
    SourceUnavailable,
    _Result,
    _short,
    engine_failure,
    logger,
)
from truenorth.measures.sources.config import _DSN_PARAMETERS, _NoAddress, _pinned_addresses, mask_dsn

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
            "Use a role that can only read (docs/security.md, “Data sources”)."
        )


class _SourceConnector(PostgresConnector):
    """The engines' PostgreSQL connector with a data source's wording. The server enforces read-only
    (one statement, in a read-only session and transaction), so the SQL check of `truenorth.engines`
    is not applied again here: its refusals would hide the server's precise reasons."""

    def __init__(self, conninfo: str, source: DataSource, cannot: SourceUnavailable, shown: str) -> None:
        timeout = source.timeout_seconds
        super().__init__(
            {"dsn": conninfo},
            Limits(timeout_seconds=timeout, connect_timeout_seconds=min(timeout, 10), max_rows=MAX_ROWS),
            after_connect=_check_server,
            server_grace_ms=0,  # the source's statement_timeout exactly, as documented
        )
        self.source = source
        self.cannot = cannot
        self.shown = shown

    def check(self, sql: str) -> None:
        """Nothing to add: the server refuses writes and several statements (see the class)."""

    def _timeout(self) -> EngineTimeout:
        return EngineTimeout(_timeout_message(self.source), field="query")

    def translate(self, exc: BaseException) -> EngineError:
        import psycopg

        if isinstance(exc, psycopg.errors.QueryCanceled):
            return EngineTimeout(_timeout_message(self.source), field="query")
        if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
            return NotReadOnly(f"Data sources are read-only: {_short(exc)}", field="query")
        if isinstance(exc, psycopg.OperationalError) and not self.connected:
            # Refused, timed out, not PostgreSQL, bad password: the same answer (no port scanner);
            # details for the operator in the log.
            logger.warning(
                "Data source %s: cannot connect to %s: %s", self.source.pk, self.shown, _short(exc)
            )
            return EngineUnavailable(self.cannot.message, field="config")
        if isinstance(exc, psycopg.OperationalError):
            return EngineUnavailable(f"Lost the connection to PostgreSQL: {_short(exc)}", field="config")
        if isinstance(exc, psycopg.Error):
            return EngineError(f"The query failed: {_short(exc)}", field="query")
        return super().translate(exc)


def _timeout_message(source: DataSource) -> str:
    return (
        f"The query took longer than {source.timeout_seconds} s and was stopped "
        "(the data source's time limit)."
    )


def _run_postgres(source: DataSource, config: dict[str, Any], text: str, limit: int) -> _Result:
    """The source's query on `truenorth.engines`' PostgreSQL connector, after this module's address
    checks (allowed parameters, pinned addresses) and with its server checks (`_check_server`) run
    right after connecting. At most ``limit + 1`` rows (one more tells "there is more")."""
    import psycopg

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
    connector = _SourceConnector(psycopg.conninfo.make_conninfo("", **params), source, cannot, shown)
    # The measure's own SQL, by design; the server enforces read-only and the time limit.
    wrapped = f"SELECT * FROM (\n{text}\n) AS truenorth_query LIMIT {int(limit) + 1}"  # noqa: S608
    try:
        with connector:
            rows = connector.fetch(wrapped)
            columns = list(connector.columns)
    except EngineError as exc:
        raise engine_failure(exc, limit) from None
    return _Result(columns, rows)
