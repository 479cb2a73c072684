"""The database's own full-text index over `search_searchentry`, per vendor.

SQLite: an FTS5 table with external content (the entry table), porter stemming, kept in step by three
triggers on the entry table. PostgreSQL: a stored generated tsvector (`english`, title weighted A, body
B) and a GIN index on it. `install` is idempotent; `rebuild` re-reads every entry into the index."""

from __future__ import annotations

from typing import Any

FTS = "search_entry_fts"
TABLE = "search_searchentry"

SQLITE_INSTALL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_entry_fts USING fts5(title, body, content='search_searchentry', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS search_entry_ai AFTER INSERT ON search_searchentry BEGIN "
    "INSERT INTO search_entry_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER IF NOT EXISTS search_entry_ad AFTER DELETE ON search_searchentry BEGIN "
    "INSERT INTO search_entry_fts(search_entry_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER IF NOT EXISTS search_entry_au AFTER UPDATE ON search_searchentry BEGIN "
    "INSERT INTO search_entry_fts(search_entry_fts, rowid, title, body) VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO search_entry_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS search_entry_ai",
    "DROP TRIGGER IF EXISTS search_entry_ad",
    "DROP TRIGGER IF EXISTS search_entry_au",
    "DROP TABLE IF EXISTS search_entry_fts",
]

POSTGRES_INSTALL = [
    "ALTER TABLE search_searchentry ADD COLUMN IF NOT EXISTS document tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(body, '')), 'B')) STORED",
    "CREATE INDEX IF NOT EXISTS search_entry_document ON search_searchentry USING GIN (document)",
]
POSTGRES_DROP = [
    "DROP INDEX IF EXISTS search_entry_document",
    "ALTER TABLE search_searchentry DROP COLUMN IF EXISTS document",
]


def _run(connection: Any, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


def install(connection: Any) -> None:
    if connection.vendor == "sqlite":
        _run(connection, SQLITE_INSTALL)
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = 'document' "
                "AND table_schema = current_schema()",
                [TABLE],
            )
            if cursor.fetchone() is None:  # ALTER TABLE even with IF NOT EXISTS would lock the table
                _run(connection, POSTGRES_INSTALL)
    else:  # pragma: no cover - TrueNorth runs on SQLite or PostgreSQL only
        raise RuntimeError(f"search: no full-text index for {connection.vendor}")


def drop(connection: Any) -> None:
    if connection.vendor == "sqlite":
        _run(connection, SQLITE_DROP)
    elif connection.vendor == "postgresql":
        _run(connection, POSTGRES_DROP)


def rebuild(connection: Any) -> None:
    """Make sure the index exists, and re-read every entry into it."""
    install(connection)
    if connection.vendor == "sqlite":
        _run(connection, ["INSERT INTO search_entry_fts(search_entry_fts) VALUES ('rebuild')"])
    # PostgreSQL: the generated column is always current; the GIN index follows it.
