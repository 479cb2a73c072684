"""Read-only checks before a query is sent to any engine (SQLGlot parse in the engine's dialect).

``check_read_only(sql, dialect)`` returns None for exactly one query — SELECT, WITH … SELECT, or a
UNION / INTERSECT / EXCEPT of them, a trailing ``;`` allowed — and raises `NotReadOnly` (field
``query``) for anything else:

- text SQLGlot cannot read in the dialect (the message names the line and column), and nested
  comments (engines disagree on where they end);
- more than one statement, or a root that is not a query (EXPLAIN, SHOW, SET, CALL, COPY, ATTACH, …);
- anywhere in the tree: DML and DDL (a PostgreSQL data-modifying CTE ``WITH x AS (DELETE … RETURNING *)``
  included), statements SQLGlot keeps as an opaque ``Command``, ``SELECT … INTO``, locking reads
  (``FOR UPDATE`` / ``FOR SHARE``), Spark's ``TRANSFORM … USING 'script'``, ClickHouse's per-query
  ``SETTINGS`` and ``FORMAT`` clauses;
- functions and table functions that read files or URLs, reach other databases, run code or a query
  given as a string, read secrets or change the session (per dialect, `DENIED`), also when quoted,
  schema-qualified or in any letter case — checked on the parsed tree *and* on the token stream, so a
  function SQLGlot maps to another name is still seen;
- tables that are really files: DuckDB's ``FROM 'x.csv'`` replacement scans, Spark's ``parquet.`/path```,
  Snowflake stages (``@stage``), and on every dialect a table name holding a path or URL.

Sleep functions (``pg_sleep``, ClickHouse ``sleep``) are allowed: the connector's timeout cancels the
query on the engine, and the tests use them to prove it.

This is one layer: connectors also open read-only sessions where the engine has them (PostgreSQL
``default_transaction_read_only``, ClickHouse ``readonly=1``, Trino/BigQuery/Snowflake roles), because a
view or a user-defined function can still hide a write or a file read behind a harmless name.

``allowed_functions`` re-allows denied names for a connector that restricts them by other means (a
DuckDB source reading its own Parquet files through ``read_parquet``); ``allowed_paths``, when given,
further requires every call of a re-allowed function to name only those paths as string literals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from truenorth.engines.base import NotReadOnly

FIELD = "query"

#: Node types refused anywhere in the tree, with the statement kind the message names.
_REFUSED_NODES: tuple[tuple[str, str], ...] = (
    ("Insert", "INSERT"),
    ("Update", "UPDATE"),
    ("Delete", "DELETE"),
    ("Merge", "MERGE"),
    ("Copy", "COPY"),
    ("Create", "CREATE"),
    ("Drop", "DROP"),
    ("Alter", "ALTER"),
    ("AlterColumn", "ALTER"),
    ("RenameTable", "RENAME"),
    ("TruncateTable", "TRUNCATE"),
    ("Command", "a command"),
    ("Set", "SET"),
    ("SetItem", "SET"),
    ("Pragma", "PRAGMA"),
    ("Use", "USE"),
    ("Attach", "ATTACH"),
    ("Detach", "DETACH"),
    ("Install", "INSTALL"),
    ("Grant", "GRANT"),
    ("Revoke", "REVOKE"),
    ("Into", "SELECT … INTO"),
    ("Lock", "a locking read (FOR UPDATE / FOR SHARE)"),
    ("LoadData", "LOAD DATA"),
    ("Cache", "CACHE"),
    ("Uncache", "UNCACHE"),
    ("Refresh", "REFRESH"),
    ("Transaction", "a transaction statement"),
    ("Commit", "COMMIT"),
    ("Rollback", "ROLLBACK"),
    ("Analyze", "ANALYZE"),
    ("Export", "EXPORT"),
    ("Kill", "KILL"),
    ("Execute", "EXECUTE"),
    ("ExecuteSql", "EXECUTE"),
    ("Declare", "DECLARE"),
    ("Comment", "COMMENT ON"),
    ("Put", "PUT"),
    ("Get", "GET"),
    ("QueryTransform", "TRANSFORM … USING (runs a script)"),
    ("Describe", "DESCRIBE"),
    ("Show", "SHOW"),
    ("Summarize", "SUMMARIZE"),
    ("Block", "a script block"),
    ("IfBlock", "a script block"),
    ("WhileBlock", "a script block"),
    ("StoredProcedure", "a stored procedure"),
    ("Return", "RETURN"),
    ("ListStage", "LIST"),
    ("DML", "a write"),
    ("DDL", "a definition (DDL)"),
)
_REFUSED: tuple[tuple[type[exp.Expression], str], ...] = tuple(
    (getattr(exp, name), label)
    for name, label in _REFUSED_NODES
    if isinstance(getattr(exp, name, None), type)
)
_REFUSED_TYPES: tuple[type[exp.Expression], ...] = tuple(cls for cls, _ in _REFUSED)

# -- per-dialect deny lists -------------------------------------------------------------------------
# Exact names (lower case) and prefixes ending in "_" / "." / "$". A qualified call is also checked by
# its dotted name (``ml.generate_text``, ``snowflake.cortex.complete``).

_DUCKDB = frozenset(
    {
        "glob",
        "sniff_csv",
        "query",
        "query_table",
        "getenv",
        "duckdb_secrets",
        "which_secret",
        "load_aws_credentials",
        "arrow_scan",
        "arrow_scan_dumb",
        "pandas_scan",
        "python_map_function",
        "excel",
        "shapefile",
        "read_",
        "parquet_",
        "iceberg_",
        "delta_",
        "sqlite_",
        "postgres_",
        "mysql_",
        "st_read",
        "st_readosm",
        "st_readshp",
        "st_read_meta",
        "http_",
        "ducklake_",
        "json_execute_serialized_sql",
        "from_substrait",
        "from_substrait_json",
        "checkpoint",
        "force_checkpoint",
    }
)
_POSTGRES = frozenset(
    {
        "pg_read_file",
        "pg_read_binary_file",
        "pg_stat_file",
        "pg_ls_",
        "pg_file_",
        "pg_logdir_ls",
        "pg_current_logfile",
        "lo_",
        "loread",
        "lowrite",
        "dblink",
        "dblink_",
        "set_config",
        "nextval",
        "setval",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_start_backup",
        "pg_stop_backup",
        "pg_advisory_",
        "pg_try_advisory_",
        "pg_notify",
        "pg_create_",
        "pg_drop_replication_slot",
        "pg_replication_",
        "pg_logical_",
        "pg_wal_replay_",
        "pg_import_system_collations",
        "pg_log_backend_memory_contexts",
        "query_to_xml",
        "query_to_xml_and_xmlschema",
        "query_to_xmlschema",
        "cursor_to_xml",
        "cursor_to_xmlschema",
        "txid_current",
        "pg_current_xact_id",
        "pg_stat_reset",
        "pg_stat_reset_",
        "pg_prewarm",
    }
)
_SPARK = frozenset(
    {
        "reflect",
        "java_method",
        "try_reflect",
        "read_files",
        "read_kafka",
        "read_kinesis",
        "read_pubsub",
        "read_pulsar",
        "read_statestore",
        "read_state_metadata",
        "cloud_files_state",
        "secret",
        "http_request",
        "remote_query",
        "ai_",
        "vector_search",
    }
)
_CLICKHOUSE = frozenset(
    {
        "file",
        "filecluster",
        "url",
        "urlcluster",
        "s3",
        "s3cluster",
        "s3queue",
        "gcs",
        "gcscluster",
        "oss",
        "cosn",
        "azureblobstorage",
        "azureblobstoragecluster",
        "hdfs",
        "hdfscluster",
        "hive",
        "remote",
        "remotesecure",
        "cluster",
        "clusterallreplicas",
        "mysql",
        "postgresql",
        "mongodb",
        "redis",
        "sqlite",
        "jdbc",
        "odbc",
        "executable",
        "executablepool",
        "input",
        "deltalake",
        "deltalakecluster",
        "deltalakes3",
        "deltalakeazure",
        "deltalakelocal",
        "iceberg",
        "icebergs3",
        "icebergazure",
        "iceberghdfs",
        "iceberglocal",
        "icebergcluster",
        "icebergs3cluster",
        "icebergazurecluster",
        "iceberghdfscluster",
        "hudi",
        "hudicluster",
        "paimon",
        "arrowflight",
        "ytsaurus",
        "prometheusquery",
        "prometheusqueryrange",
        "catboostevaluate",
        "kafka",
        "nats",
        "rabbitmq",
        "dictionary",
    }
)
_TRINO = frozenset({"query", "raw_query", "system.query"})
_BIGQUERY = frozenset({"external_query", "external_object_transform", "ml.", "ai.", "obj.", "vector_search"})
_SNOWFLAKE = frozenset(
    {
        "system$",
        "result_scan",
        "infer_schema",
        "generate_column_description",
        "get_presigned_url",
        "build_scoped_file_url",
        "build_stage_file_url",
        "get_stage_location",
        "get_absolute_path",
        "get_relative_path",
        "directory",
        "to_file",
        "fl_",
        "parse_document",
        "validate",
        "validate_pipe_load",
        "snowflake.cortex.",
        "snowflake.ml.",
        "ai_",
    }
)
_SQLITE = frozenset({"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"})

#: Denied function names per SQLGlot dialect (exact names, and prefixes ending in ``_``, ``.`` or ``$``).
DENIED: dict[str, frozenset[str]] = {
    "duckdb": _DUCKDB,
    "postgres": _POSTGRES,
    "spark": _SPARK,
    "spark2": _SPARK,
    "databricks": _SPARK,
    "hive": _SPARK,
    "clickhouse": _CLICKHOUSE,
    "trino": _TRINO,
    "presto": _TRINO,
    "athena": _TRINO,
    "bigquery": _BIGQUERY,
    "snowflake": _SNOWFLAKE,
    "sqlite": _SQLITE,
}
#: Any other dialect gets every list (refusing too much is the safe side).
DENIED_ANY: frozenset[str] = frozenset().union(*DENIED.values())

#: Spark/Hive read files through ``format.`path```.
_SPARK_FILE_FORMATS = frozenset(
    {"parquet", "csv", "json", "orc", "text", "avro", "binaryfile", "delta", "jdbc", "libsvm", "image", "xml"}
)
_PATHLIKE = re.compile(r"[/\\]|://|^~|^@")
_DUCKDB_FILELIKE = re.compile(r"[./\\:~]")


def check_read_only(
    sql: str,
    dialect: str,
    *,
    allowed_functions: frozenset[str] = frozenset(),
    allowed_paths: frozenset[str] | None = None,
) -> None:
    """Refuse anything but one read-only query in ``dialect`` (see the module docstring)."""
    if not isinstance(sql, str) or not sql.strip():
        raise NotReadOnly("the query is empty", field=FIELD)
    try:
        dialect_obj = Dialect.get_or_raise(dialect)
    except (SqlglotError, ValueError):
        raise NotReadOnly(f"unknown SQL dialect {dialect!r}", field=FIELD) from None
    denied = DENIED.get(dialect, DENIED_ANY)
    allowed = frozenset(name.lower() for name in allowed_functions)

    try:
        tokens = dialect_obj.tokenize(sql)
    except TokenError as e:
        raise NotReadOnly(_token_error(sql, e), field=FIELD) from None
    if any("/*" in comment for token in tokens for comment in token.comments):
        # Engines disagree on nesting (PostgreSQL, DuckDB, Spark and ClickHouse nest, others do not):
        # text one reads as a comment another could run.
        raise NotReadOnly("nested comments (/* inside a comment) are refused", field=FIELD)
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except TokenError as e:
        raise NotReadOnly(_token_error(sql, e), field=FIELD) from None
    except ParseError as e:
        raise NotReadOnly(_parse_error(e), field=FIELD) from None
    except (SqlglotError, ValueError, RecursionError) as e:
        raise NotReadOnly(f"cannot read the query as {dialect} SQL: {str(e)[:200]}", field=FIELD) from None
    statements = [s for s in statements if not isinstance(s, exp.Semicolon)]
    if not statements:
        raise NotReadOnly("the query is empty (only comments)", field=FIELD)
    if len(statements) > 1:
        raise NotReadOnly(
            f"only one statement can run; this query has {len(statements)} separated by ';'", field=FIELD
        )
    root = statements[0]
    inner = root.unnest() if isinstance(root, exp.Subquery) else root
    if not isinstance(inner, exp.Select | exp.SetOperation):
        raise NotReadOnly(
            f"only a query (SELECT, WITH … SELECT, UNION) can run; {_kind(inner)} is refused", field=FIELD
        )

    for node in root.walk():
        if isinstance(node, _REFUSED_TYPES):
            raise NotReadOnly(f"only a read-only query can run; {_kind(node)} is refused", field=FIELD)
        if isinstance(node, exp.Select):
            for arg, label in (("settings", "a SETTINGS clause"), ("format", "a FORMAT clause")):
                if node.args.get(arg):
                    raise NotReadOnly(f"{label} is refused (the source's settings apply)", field=FIELD)
        if isinstance(node, exp.Func):
            for name in _function_names(node):
                if _denied(name, denied) and name not in allowed:
                    raise NotReadOnly(_function_message(name, dialect), field=FIELD)
            if allowed_paths is not None and any(n in allowed for n in _function_names(node)):
                _check_paths(node, allowed_paths)
        if isinstance(node, exp.Table):
            _check_table(node, dialect)
        if _is_dynamic_identifier(node):
            _check_dynamic_identifier(node, dialect)

    for name in _called_names(tokens):
        if _denied(name, denied) and name not in allowed:
            raise NotReadOnly(_function_message(name, dialect), field=FIELD)


# -- helpers ----------------------------------------------------------------------------------------


def _kind(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper() or "a command"
    for cls, label in _REFUSED:
        if isinstance(node, cls):
            return label
    return type(node).__name__.upper()


def _denied(name: str, denied: Iterable[str]) -> bool:
    for entry in denied:
        if entry.endswith(("_", ".", "$")):
            if name.startswith(entry):
                return True
        elif name == entry or name.endswith("." + entry):
            return True
    return False


def _function_message(name: str, dialect: str) -> str:
    return (
        f"the function {name}() is refused on {dialect}: it can read files or URLs, reach other "
        f"databases, run code or change the session"
    )


def _qualifier(node: exp.Expression) -> str:
    """``a.b`` for the identifiers of a Dot/Column/Identifier chain (lower case, unquoted)."""
    if isinstance(node, exp.Identifier | exp.Var):
        return str(node.name).lower()
    if isinstance(node, exp.Column):
        return ".".join(part.name.lower() for part in node.parts)
    if isinstance(node, exp.Dot):
        left, right = _qualifier(node.this), _qualifier(node.expression)
        return f"{left}.{right}" if left and right else left or right
    return ""


def _function_names(node: exp.Func) -> list[str]:
    names: list[str] = []
    if isinstance(node, exp.Anonymous):
        names.append(str(node.name).lower())
    else:
        names.extend(n.lower() for n in node.sql_names())
        names.append(node.key.lower())
    parent = node.parent
    qualifier = ""
    if isinstance(parent, exp.Dot) and parent.expression is node:
        qualifier = _qualifier(parent.this)
    elif isinstance(parent, exp.Table) and parent.this is node:
        qualifier = ".".join(p.name.lower() for p in (parent.args.get("catalog"), parent.args.get("db")) if p)
    if qualifier:
        names = [f"{qualifier}.{n}" for n in names] + names
    return list(dict.fromkeys(n for n in names if n))


def _called_names(tokens: list[Token]) -> Iterable[str]:
    """Every ``name(`` / ``a.b.name(`` on the token stream (strings and comments are not names)."""
    text_types = {TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.HEREDOC_STRING}
    for i in range(1, len(tokens)):
        if tokens[i].token_type != TokenType.L_PAREN:
            continue
        head = tokens[i - 1]
        if head.token_type in text_types or not head.text:
            continue
        parts = [head.text.lower()]
        j = i - 2
        while j >= 1 and tokens[j].token_type == TokenType.DOT and tokens[j - 1].token_type not in text_types:
            parts.insert(0, tokens[j - 1].text.lower())
            j -= 2
        yield parts[-1]
        if len(parts) > 1:
            yield ".".join(parts)


def _check_table(node: exp.Table, dialect: str) -> None:
    parts = [p for p in (node.args.get("catalog"), node.args.get("db"), node.this) if p is not None]
    names = [str(p.name) for p in parts if isinstance(p, exp.Identifier | exp.Var | exp.Literal)]
    for name in names:
        if _PATHLIKE.search(name) or (dialect == "duckdb" and _DUCKDB_FILELIKE.search(name)):
            raise NotReadOnly(
                f"the table {name[:80]!r} names a file, path, URL or stage; name a table (files are "
                f"registered by the data source)",
                field=FIELD,
            )
    db = node.args.get("db")
    if dialect in ("spark", "spark2", "databricks", "hive") and db is not None:
        if str(db.name).lower() in _SPARK_FILE_FORMATS and node.args.get("catalog") is None:
            raise NotReadOnly(
                f"{db.name}.`…` reads a file directly; name a table (files are registered by the data source)",
                field=FIELD,
            )


def _is_dynamic_identifier(node: exp.Expr) -> bool:
    dynamic = getattr(exp, "DynamicIdentifier", None)
    if isinstance(dynamic, type) and isinstance(node, dynamic):
        return True
    return isinstance(node, exp.Anonymous) and str(node.name).lower() == "identifier"


def _check_dynamic_identifier(node: exp.Expr, dialect: str) -> None:
    """``IDENTIFIER('name')`` (Spark, Snowflake): the name is a string, so check what it names."""
    args = list(node.iter_expressions())
    literal = args[0] if len(args) == 1 else None
    if not (isinstance(literal, exp.Literal) and literal.is_string):
        raise NotReadOnly("IDENTIFIER() must name a table as one string literal", field=FIELD)
    try:
        table = exp.to_table(str(literal.this), dialect=dialect)
    except (SqlglotError, ValueError):
        raise NotReadOnly(
            f"IDENTIFIER({literal.sql(dialect)[:80]}) does not name a table", field=FIELD
        ) from None
    if not isinstance(table, exp.Table):
        raise NotReadOnly(f"IDENTIFIER({literal.sql(dialect)[:80]}) does not name a table", field=FIELD)
    _check_table(table, dialect)


def _check_paths(node: exp.Func, allowed_paths: frozenset[str]) -> None:
    args = [a for a in node.iter_expressions() if not isinstance(a, exp.EQ | exp.PropertyEQ | exp.Kwarg)]
    if not args:
        raise NotReadOnly(f"{_first_name(node)}() must name one of the source's files", field=FIELD)
    first = args[0]
    literals = first.expressions if isinstance(first, exp.Array) else [first]
    for lit in literals:
        if not (isinstance(lit, exp.Literal) and lit.is_string and lit.this in allowed_paths):
            raise NotReadOnly(
                f"{_first_name(node)}() may only read the source's own files; {lit.sql()[:80]} is not one of them",
                field=FIELD,
            )


def _first_name(node: exp.Func) -> str:
    return str(node.name).lower() if isinstance(node, exp.Anonymous) else node.sql_name().lower()


def _parse_error(e: ParseError) -> str:
    if e.errors:
        err = e.errors[0]
        near = f"{err.get('start_context', '')[-30:]}{err.get('highlight', '')}".strip()
        description = str(err.get("description", "")).split(" <Token")[0].split(". Line")[0]
        if description.endswith(" got") and err.get("highlight"):
            description = f"{description} {err.get('highlight')!r}"
        return (
            f"cannot read the query: {description[:120]} at line {err.get('line')}, "
            f"column {err.get('col')} (near {near!r})"
        )
    return f"cannot read the query: {str(e)[:200]}"


def _token_error(sql: str, e: TokenError) -> str:
    start = e.start or 0
    pos = min(start + 50, len(sql)) if start else (e.end or len(sql))
    line = sql.count("\n", 0, pos) + 1
    col = pos - (sql.rfind("\n", 0, pos) + 1) + 1
    near = sql[max(pos - 30, 0) : pos]
    return (
        f"cannot read the query: an unterminated string, quoted name or comment at line {line}, "
        f"column {col} (near {near!r})"
    )
