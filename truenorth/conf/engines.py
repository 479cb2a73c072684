"""Settings: evidence and measure queries on distributed engines (issue 14; docs/operations.md).

Owner: the sources-wiring helper. Every setting here is read from the environment with a safe default.
The data source rules that use them live in `truenorth.measures.sources.config`.
"""

from __future__ import annotations

from truenorth.env import env_bool, env_int, env_list

# Local engines run inside TrueNorth's own worker process, on this server's CPUs and memory: Apache Spark
# in local mode ("master": "local[N]") and chDB (ClickHouse embedded). Off by default: on a shared
# server any organisation admin could otherwise start a JVM or a ClickHouse engine in the worker. When
# on, their tables are still only Parquet/CSV files inside the organisation's own directories (the
# TRUENORTH_DUCKDB_DIRS rules). Spark Connect and ClickHouse servers reached by URL need no switch.
TRUENORTH_ENGINES_LOCAL = env_bool("TRUENORTH_ENGINES_LOCAL", False)

# The most cores a local Spark session may ask for ("local[N]", N at most this; "local[*]" is refused).
TRUENORTH_ENGINES_LOCAL_MAX_CORES = env_int("TRUENORTH_ENGINES_LOCAL_MAX_CORES", 2, minimum=1)

# Seconds to open a connection or session to an engine (a Spark session's start included).
TRUENORTH_ENGINES_CONNECT_TIMEOUT = env_int("TRUENORTH_ENGINES_CONNECT_TIMEOUT", 30, minimum=1)

# The DB-API drivers an admin may pick for a Trino, BigQuery or Snowflake source, by name (comma-separated).
# A name must also be the kind's known driver (trino, bigquery, snowflake: their official packages, which
# the operator installs) or a driver the site installs as a `truenorth.engines.drivers` entry point. The
# admin only ever picks a name: what is imported is the operator's choice. Empty: those kinds are refused.
TRUENORTH_ENGINES_DRIVERS = [
    name.lower() for name in env_list("TRUENORTH_ENGINES_DRIVERS", ["trino", "bigquery", "snowflake"])
]
