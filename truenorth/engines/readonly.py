"""Read-only checks before a query is sent to any engine (SQLGlot parse in the engine's dialect).

Owner: the dialects/golden-SQL helper. Contract: ``check_read_only(sql, dialect)`` returns None for
exactly one SELECT/WITH/UNION query and raises `NotReadOnly` (field "query") otherwise.
"""

from __future__ import annotations

from truenorth.engines.base import NotReadOnly


def check_read_only(sql: str, dialect: str) -> None:
    if not sql.strip():
        raise NotReadOnly("the query is empty", field="query")
