"""Shared by the data source modules: limits, the errors a query raises, encryption at rest."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet

from truenorth.core import crypto
from truenorth.core.errors import ValidationFailed
from truenorth.engines.base import MAX_ROWS, EngineError, EngineTimeout, EngineUnavailable, ResultTooLarge
from truenorth.measures.models import DataSource

# History records these; never the configuration (it holds credentials).
SOURCE_FIELDS = ("name", "kind", "timeout_seconds")
MASK = "********"
MAX_QUERY_LENGTH = 20_000
MAX_TIMEOUT_SECONDS = 600
MAX_ERROR_LENGTH = 500
DEFAULT_LIMIT = 100_000
DUCKDB_MEMORY_LIMIT = "1GB"
_KDF_INFO = b"truenorth data source credentials v1"
ORG_DIRECTORY_PREFIX = "org-"
# Roles whose members can read or write the server's files, run programs or stop other sessions.
DANGEROUS_ROLES = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
)

logger = logging.getLogger("truenorth.measures.sources")


class QueryFailed(ValidationFailed):
    """A data source query that could not run or returned the wrong thing (field "query")."""

    def __init__(self, message: str, field: str = "query") -> None:
        super().__init__(message, field=field)


class SourceUnavailable(QueryFailed):
    """The data source cannot be reached or opened (field "config")."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="config")


class QueryTimeout(QueryFailed):
    """The query ran longer than the source's time limit and was stopped."""


# --- encryption -----------------------------------------------------------------------------------


def _fernet() -> MultiFernet:
    """A MultiFernet over the configured keys (the first encrypts; all decrypt, for rotation)."""
    return crypto.fernet(_KDF_INFO)


def encrypt_config(config: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(config, sort_keys=True).encode()).decode()


def decrypt_config(source: DataSource) -> dict[str, Any]:
    """The source's settings in clear. Internal use only: never return it through an API or page."""
    try:
        data = json.loads(_fernet().decrypt(source.config_encrypted.encode()))
    except (InvalidToken, ValueError):
        raise SourceUnavailable(
            f"The settings of data source “{source.name}” cannot be decrypted: the encryption key "
            "(TRUENORTH_ENCRYPTION_KEY or the data directory's encryption_key file) has changed. "
            "Restore the old key, or enter the settings again."
        ) from None
    if not isinstance(data, dict):
        raise SourceUnavailable(f"The settings of data source “{source.name}” are damaged.")
    return data


def rotate_encryption(source: DataSource) -> None:
    """Re-encrypt with the first (current) key, after adding a new key in front of the old one."""
    source.config_encrypted = _fernet().rotate(source.config_encrypted.encode()).decode()
    source.save(update_fields=["config_encrypted"])


def seal(data: Any) -> str:
    """JSON-able data encrypted with the settings key, for rows a job keeps for the admin who asked
    (a job's result is readable by every member through the jobs API)."""
    return _fernet().encrypt(json.dumps(data).encode()).decode()


def unseal(token: Any) -> Any:
    """What `seal` encrypted, or None when it cannot be read (another key, damaged)."""
    try:
        return json.loads(_fernet().decrypt(str(token).encode()))
    except (InvalidToken, ValueError):
        return None


def engine_failure(exc: EngineError, limit: int) -> QueryFailed:
    """A connector's error (`truenorth.engines`) in the data sources' terms: a timeout, an unreachable or
    unknown engine, or a query failure. A result stopped by the engines' row ceiling (below ``limit + 1``
    for the default limit) reads as the caller's own "more than N rows", whichever cap stopped it."""
    if isinstance(exc, ResultTooLarge) and exc.cap != "bytes":
        return QueryFailed(
            f"The query returned more than {min(limit, MAX_ROWS):,} rows; aggregate or filter it "
            "(e.g. one row per day)."
        )
    if isinstance(exc, EngineTimeout):
        return QueryTimeout(exc.message)
    if isinstance(exc, EngineUnavailable) or exc.field == "kind":
        return SourceUnavailable(exc.message)
    return QueryFailed(exc.message)


@dataclass(frozen=True)
class _Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def _short(exc: BaseException) -> str:
    """A driver's message, first lines only (DuckDB lists every candidate function otherwise)."""
    lines = [" ".join(line.split()) for line in str(exc).splitlines() if line.strip().strip("^")]
    message = " ".join(lines[:3]) if lines else exc.__class__.__name__
    return message if len(message) <= MAX_ERROR_LENGTH else message[: MAX_ERROR_LENGTH - 1] + "…"
