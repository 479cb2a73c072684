"""Engines: where an organisation's events and measures live, behind one connector interface.

A `Connector` (``base``) connects with a timeout, runs one read-only query (checked before it is sent,
``readonly``), cancels it on the engine when the time is up, streams rows back under row and byte caps,
and translates the engine's errors into a message naming the table, column or setting to fix. The SQL
comes from `truenorth.evidence.compile` (or a measure's query) in the connector's SQLGlot ``dialect``.

Connectors, one module each: ``duckdb_engine`` and ``postgres_engine`` (tested on real engines), ``spark_engine`` (pyspark:
Spark Connect URL or a local session), ``clickhouse_engine`` (chDB embedded, or a server through
clickhouse-connect), and ``dbapi_engine`` (Trino, BigQuery, Snowflake: compiled dialects with golden SQL; a site
plugs its driver in). ``registry`` maps a data source's kind to its connector, including third-party
connectors registered under the ``truenorth.engines`` entry point group.

Pure: no Django. The web side (which kinds an organisation may use, address and directory checks,
encrypted settings) lives in `truenorth.measures.sources`.
"""
