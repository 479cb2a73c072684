"""Append-only tables, enforced by the database itself (not only by models and querysets).

`protect(table)` is a migration operation that installs triggers refusing UPDATE and DELETE of a
table's rows on SQLite and PostgreSQL, and TRUNCATE on PostgreSQL. `may_set` names one boolean column
whose single transition false → true (every other column unchanged) stays allowed: measures'
`Observation.superseded`, set when a correction supersedes a value.

Used by history (HistoryEntry), measures (Observation), strategy (TargetObservation) and hypotheses
(ResultSnapshot). On SQLite, rebuilding a table (Django does it for most AlterField/AddField) drops its
triggers: a migration that alters a protected table must `protect` it again after the change
(tests/test_append_only.py checks every protected table).

The only way to empty a protected table is the test suite's flush (`flush_may_purge`): it sets a
transaction-local PostgreSQL setting, or a row in a one-column SQLite table, that the triggers honour.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import migrations

PURGE_SETTING = "truenorth.append_only_purge"
PURGE_TABLE = "truenorth_append_only_purge"

PROTECTED_TABLES = (
    "history_historyentry",
    "measures_observation",
    "strategy_targetobservation",
    "hypotheses_resultsnapshot",
)


def _names(table: str) -> dict[str, str]:
    return {
        "function": f"{table}_append_only",
        "row": f"{table}_no_update_or_delete",
        "truncate": f"{table}_no_truncate",
        "update": f"{table}_no_update",
        "delete": f"{table}_no_delete",
    }


def _quote(text: str) -> str:
    return text.replace("'", "''")


def postgres_sql(table: str, message: str, may_set: str | None = None) -> list[str]:
    n = _names(table)
    allowed = ""
    if may_set:
        allowed = (
            f"    IF TG_OP = 'UPDATE' AND NOT OLD.{may_set} AND NEW.{may_set}\n"
            f"       AND (to_jsonb(NEW) - '{may_set}') = (to_jsonb(OLD) - '{may_set}') THEN\n"
            "        RETURN NEW;\n"
            "    END IF;\n"
        )
    return [
        f"""CREATE OR REPLACE FUNCTION {n["function"]}() RETURNS trigger AS $$
BEGIN
    IF current_setting('{PURGE_SETTING}', true) = 'on' THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        IF TG_OP = 'UPDATE' THEN RETURN NEW; END IF;
        RETURN NULL;
    END IF;
{allowed}    RAISE EXCEPTION USING ERRCODE = 'restrict_violation',
        MESSAGE = '{_quote(message)} (' || TG_OP || ' refused)';
END;
$$ LANGUAGE plpgsql""",
        f"DROP TRIGGER IF EXISTS {n['row']} ON {table}",
        f"CREATE TRIGGER {n['row']} BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {n['function']}()",
        f"DROP TRIGGER IF EXISTS {n['truncate']} ON {table}",
        f"CREATE TRIGGER {n['truncate']} BEFORE TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {n['function']}()",
    ]


def sqlite_sql(table: str, message: str, columns: Sequence[str], may_set: str | None = None) -> list[str]:
    n = _names(table)
    not_purging = "NOT EXISTS (SELECT 1 FROM truenorth_append_only_purge)"
    update_when = not_purging
    if may_set:
        same = " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in columns if c != may_set)
        update_when += f' AND NOT (OLD."{may_set}" = 0 AND NEW."{may_set}" = 1 AND {same})'
    abort = f"BEGIN SELECT RAISE(ABORT, '{_quote(message)}'); END"
    return [
        f"CREATE TABLE IF NOT EXISTS {PURGE_TABLE} (id INTEGER PRIMARY KEY)",
        f"DROP TRIGGER IF EXISTS {n['update']}",
        f"CREATE TRIGGER {n['update']} BEFORE UPDATE ON {table} WHEN {update_when} {abort}",
        f"DROP TRIGGER IF EXISTS {n['delete']}",
        f"CREATE TRIGGER {n['delete']} BEFORE DELETE ON {table} WHEN {not_purging} {abort}",
    ]


def install(schema_editor: Any, table: str, message: str, may_set: str | None = None) -> None:
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        statements = postgres_sql(table, message, may_set)
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            columns = [c.name for c in connection.introspection.get_table_description(cursor, table)]
        statements = sqlite_sql(table, message, columns, may_set)
    else:  # pragma: no cover - TrueNorth runs on SQLite and PostgreSQL only
        return
    for sql in statements:
        schema_editor.execute(sql)


def uninstall(schema_editor: Any, table: str) -> None:
    n = _names(table)
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {n['row']} ON {table}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {n['truncate']} ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {n['function']}()")
    elif vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {n['update']}")
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {n['delete']}")


def protect(table: str, message: str, *, may_set: str | None = None) -> migrations.RunPython:
    """A migration operation making `table` append-only in the database (reversible)."""

    def forward(apps: Any, schema_editor: Any) -> None:
        install(schema_editor, table, message, may_set)

    def backward(apps: Any, schema_editor: Any) -> None:
        uninstall(schema_editor, table)

    return migrations.RunPython(forward, backward, elidable=False)


def triggers_on(connection: Any, table: str) -> set[str]:
    """The names of the triggers installed on a table (for tests and checks)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal", [table]
            )
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
        return {row[0] for row in cursor.fetchall()}


def expected_triggers(vendor: str, table: str) -> set[str]:
    n = _names(table)
    if vendor == "postgresql":
        return {n["row"], n["truncate"]}
    return {n["update"], n["delete"]}


def purge_statements(vendor: str) -> tuple[list[str], list[str]]:
    """(before, after): statements around a flush that let it empty the protected tables."""
    if vendor == "postgresql":
        return [f"SET LOCAL {PURGE_SETTING} = 'on'"], [f"SET LOCAL {PURGE_SETTING} = 'off'"]
    if vendor == "sqlite":
        return (
            ["INSERT OR IGNORE INTO truenorth_append_only_purge (id) VALUES (1)"],
            ["DELETE FROM truenorth_append_only_purge"],
        )
    return [], []  # pragma: no cover


@contextmanager
def flush_may_purge() -> Iterator[None]:
    """For the test suite only: Django's flush (between transactional tests) may empty protected
    tables. Nothing else in TrueNorth deletes evidence."""
    from django.db.backends.base.operations import BaseDatabaseOperations

    original = BaseDatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: BaseDatabaseOperations, sql_list: Iterable[str]) -> None:
        before, after = purge_statements(self.connection.vendor)
        original(self, [*before, *sql_list, *after])

    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseDatabaseOperations.execute_sql_flush = original  # type: ignore[method-assign]
