"""What the web side knows of each data source kind: its SQL dialect, whether CI runs it on a real
engine, and whether it runs inside TrueNorth's own worker (a local engine, off unless the operator
enables TRUENORTH_ENGINES_LOCAL)."""

from __future__ import annotations

from dataclasses import dataclass

from truenorth.measures.models import DataSource, DataSourceKind


@dataclass(frozen=True)
class KindInfo:
    dialect: str  # the SQLGlot dialect compiled evidence SQL is written in
    tested: str  # "real": CI runs it on the real engine; "compiled": only its SQL is checked
    connector: bool  # runs through truenorth.engines (False: the DuckDB/PostgreSQL runners)


KINDS: dict[str, KindInfo] = {
    DataSourceKind.DUCKDB: KindInfo("duckdb", "real", False),
    DataSourceKind.POSTGRES: KindInfo("postgres", "real", False),
    DataSourceKind.SPARK: KindInfo("spark", "real", True),
    DataSourceKind.CHDB: KindInfo("clickhouse", "real", True),
    DataSourceKind.CLICKHOUSE: KindInfo("clickhouse", "compiled", True),
    DataSourceKind.TRINO: KindInfo("trino", "compiled", True),
    DataSourceKind.BIGQUERY: KindInfo("bigquery", "compiled", True),
    DataSourceKind.SNOWFLAKE: KindInfo("snowflake", "compiled", True),
}

#: The kinds whose settings name a DB-API driver the site installs.
DRIVER_KINDS = frozenset({DataSourceKind.TRINO, DataSourceKind.BIGQUERY, DataSourceKind.SNOWFLAKE})


def kind_info(kind: str) -> KindInfo:
    return KINDS.get(kind, KindInfo("duckdb", "compiled", True))


def dialect_of(source: DataSource | str) -> str:
    """The SQLGlot dialect of a source (or kind): what evidence SQL is compiled in for it."""
    return kind_info(source if isinstance(source, str) else source.kind).dialect


def tested_on_real_engine(kind: str) -> bool:
    return kind_info(kind).tested == "real"
