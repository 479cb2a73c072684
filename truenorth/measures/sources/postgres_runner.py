"""Running a query on a PostgreSQL source: pinned addresses, read-only session, and the server checks
(never TrueNorth's own database, never a role that reaches beyond read-only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from truenorth.core.errors import ValidationFailed
from truenorth.measures.models import DataSource
from truenorth.measures.sources._common import (
    DANGEROUS_ROLES,
    QueryFailed,
    QueryTimeout,
    SourceUnavailable,
    _Result,
    _short,
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
