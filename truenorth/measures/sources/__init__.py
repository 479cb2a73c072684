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
  read (docs/security.md, "Data sources"); TrueNorth enforces read-only anyway and refuses superusers and members
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

One module per part: `services` (add, change, delete, test a source), `config` (settings, directories,
addresses), `duckdb_runner` and `postgres_runner` (running a query safely), `queries` (checks, limits,
shape, preview), `_common` (errors, limits, encryption). Callers import from this package.
"""

from __future__ import annotations

from truenorth.measures.sources._common import (
    DANGEROUS_ROLES,
    DEFAULT_LIMIT,
    DUCKDB_MEMORY_LIMIT,
    MASK,
    MAX_ERROR_LENGTH,
    MAX_QUERY_LENGTH,
    MAX_TIMEOUT_SECONDS,
    ORG_DIRECTORY_PREFIX,
    SOURCE_FIELDS,
    QueryFailed,
    QueryTimeout,
    SourceUnavailable,
    decrypt_config,
    encrypt_config,
    rotate_encryption,
    seal,
    unseal,
)
from truenorth.measures.sources.config import (
    allowed_path,
    clean_config,
    mask_dsn,
    organisation_directories,
    organisation_directory,
    public_config,
)
from truenorth.measures.sources.duckdb_runner import (
    MAX_SCANNED_ENTRIES,
)
from truenorth.measures.sources.kinds import (
    DRIVER_KINDS,
    KINDS,
    dialect_of,
    kind_info,
    tested_on_real_engine,
)
from truenorth.measures.sources.postgres_runner import (
    _Identity,
    _identity,
)
from truenorth.measures.sources.queries import (
    PREVIEW_ROWS,
    check_query,
    execute,
    preview_query,
    run_query,
    shape,
    text_cell,
)
from truenorth.measures.sources.services import (
    create_data_source,
    data_sources_of,
    delete_data_source,
    describe,
    get_data_source,
    mark_checked,
    test_data_source,
    update_data_source,
)

__all__ = [
    "DANGEROUS_ROLES",
    "DEFAULT_LIMIT",
    "DRIVER_KINDS",
    "DUCKDB_MEMORY_LIMIT",
    "KINDS",
    "MASK",
    "MAX_ERROR_LENGTH",
    "MAX_QUERY_LENGTH",
    "MAX_SCANNED_ENTRIES",
    "MAX_TIMEOUT_SECONDS",
    "ORG_DIRECTORY_PREFIX",
    "PREVIEW_ROWS",
    "SOURCE_FIELDS",
    "QueryFailed",
    "QueryTimeout",
    "SourceUnavailable",
    "_Identity",
    "_identity",
    "allowed_path",
    "check_query",
    "clean_config",
    "create_data_source",
    "data_sources_of",
    "decrypt_config",
    "delete_data_source",
    "describe",
    "dialect_of",
    "encrypt_config",
    "execute",
    "get_data_source",
    "kind_info",
    "mark_checked",
    "mask_dsn",
    "organisation_directories",
    "organisation_directory",
    "preview_query",
    "public_config",
    "rotate_encryption",
    "run_query",
    "seal",
    "shape",
    "test_data_source",
    "tested_on_real_engine",
    "text_cell",
    "unseal",
    "update_data_source",
]
