"""Apache Spark: a Spark Connect URL (a cluster) or a local session in this process, one code path.

Config (a plain dict, checked and decrypted by the caller):

- ``{"url": "sc://host:15002"}`` (optionally ``sc://host:15002/;token=…;use_ssl=true``): a Spark
  Connect server; the cluster does the work and only the summary rows come back over gRPC.
- ``{"master": "local[2]"}``: a local Spark in this process (one JVM per process, started lazily on the
  first query and reused; each connector gets its own session of it: own temp views, own settings).
- both: ``"tables": {view_name: parquet_path}`` registered as session-scoped temp views (a ``.parquet``
  file, a directory of Parquet parts, or a ``.csv`` file with a header row), and ``"database"``
  (optional, ``[catalog.]schema``) made the current one.

Every query runs through the SparkSession API (``spark.sql(sql)``, limited to ``max_rows + 1`` rows and
streamed back with ``toLocalIterator``). Each query carries a unique tag so the timeout stops it on the
engine: a Spark Connect operation tag (``interruptTag``), or a job tag of the local SparkContext
(``cancelJobsWithTag``). Spark SQL has no
read-only session: the query is checked before it is sent (`truenorth.engines.readonly`) and
``spark.sql.runSQLOnFiles`` is off so ``parquet.`/path``` cannot read arbitrary files.

pyspark (and Java, for the local mode) are optional: they are imported when a connector connects.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from truenorth.engines.base import Connector, EngineError, EngineUnavailable, Limits
from truenorth.engines.registry import register

#: Settings every session gets (a Spark Connect session and each session of the local Spark).
SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
    # `SELECT * FROM parquet.`/any/path`` would read any file the engine can: off.
    "spark.sql.runSQLOnFiles": "false",
}

#: Settings of the process's local Spark (static ones: fixed when its JVM starts).
LOCAL_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.maxResultSize": "64m",
    "spark.sql.catalogImplementation": "in-memory",
    "spark.sql.warehouse.dir": str(Path(tempfile.gettempdir()) / "truenorth-spark-warehouse"),
    **SESSION_CONF,
}

_URL = re.compile(
    r"^sc://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]{1,253}):(?P<port>[0-9]{1,5})(?P<params>/;[^\s]*)?/?$"
)
_URL_PARAMS = frozenset({"token", "use_ssl", "user_id", "user_agent", "grpc_max_message_size"})
_MASTER = re.compile(r"^local(\[(?P<threads>[1-9][0-9]{0,2}|\*)\])?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$")
_REMOTE_PATH = re.compile(r"^([a-z][a-z0-9+.\-]*://[^\s]+|/[^\s\x00]*)$")
_SUFFIXES = (".parquet", ".csv")

#: How long the watchdog keeps interrupting a timed-out query that is still running.
CANCEL_PERSIST_SECONDS = 120.0

_local_lock = threading.Lock()
_local: Any = None


def _pyspark() -> Any:
    """Import pyspark (an optional dependency) or say how to install it."""
    try:
        import pyspark
        from pyspark.logger import PySparkLogger
    except ImportError:
        raise EngineUnavailable(
            "Spark needs the pyspark package on the TrueNorth server (pip install 'truenorth[spark]')",
            field="kind",
        ) from None
    # pyspark logs every failed query with the full JVM trace on its own handlers; the error is
    # translated and reported to the caller instead.
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("py4j").setLevel(logging.WARNING)  # one INFO line per gateway call otherwise
    return pyspark


def local_session(master: str = "local[2]", conf: Mapping[str, str] | None = None) -> Any:
    """The process's local SparkSession (started on first use with `LOCAL_CONF` and ``conf``; later
    calls return the same session whatever they ask: one SparkContext per process)."""
    global _local
    with _local_lock:
        if _local is not None and _local.sparkContext._jsc is not None:
            return _local
        match = _MASTER.match(master)
        if match is None:
            raise EngineError(
                f"{master[:40]!r} is not a local master (local, local[N] or local[*])", field="master"
            )
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise EngineUnavailable(
                "Spark's local mode needs Java 17 on the TrueNorth server (no `java` on PATH, no JAVA_HOME)",
                field="master",
            )
        _pyspark()
        from pyspark.sql import SparkSession

        threads = match.group("threads")
        if threads is None:
            cores = 1
        elif threads == "*":
            cores = os.cpu_count() or 2
        else:
            cores = int(threads)
        settings = {
            "spark.sql.shuffle.partitions": str(max(2, 2 * cores)),
            # The driver's heap is fixed when its JVM starts: read when the local Spark starts.
            "spark.driver.memory": os.environ.get("TRUENORTH_SPARK_DRIVER_MEMORY", "1g"),
            **LOCAL_CONF,
            **(conf or {}),
        }
        builder = SparkSession.builder.master(master).appName("truenorth")
        for key, value in settings.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        _local = session
        return session


def _check_path(name: str, path: object, *, local: bool) -> str:
    field = f"tables.{name}"
    if not isinstance(path, str) or not path:
        raise EngineError(f"table {name!r}: give the path of its Parquet data", field=field)
    if not local:
        # A path on the cluster's storage (s3a://…, hdfs://…, /mnt/…): Spark reports a missing one.
        if not _REMOTE_PATH.match(path):
            raise EngineError(
                f"table {name!r}: {path[:80]!r} is not an absolute path or URI on the cluster", field=field
            )
        return path
    p = Path(path)
    if not p.is_absolute():
        raise EngineError(f"table {name!r}: {path[:80]!r} is not an absolute path", field=field)
    if p.is_file():
        if p.suffix.lower() not in _SUFFIXES:
            raise EngineError(f"table {name!r}: {p.name[:80]!r} is not a .parquet or .csv file", field=field)
    elif p.is_dir():
        if next(p.rglob("*.parquet"), None) is None:
            raise EngineError(
                f"table {name!r}: the directory {path[:80]!r} has no Parquet files", field=field
            )
    else:
        raise EngineError(f"table {name!r}: {path[:80]!r} does not exist", field=field)
    return str(p)


def _parse_url(url: str) -> tuple[str, int]:
    match = _URL.match(url)
    if match is None:
        raise EngineError(
            "the Spark Connect URL must look like sc://host:15002 (optionally /;token=…;use_ssl=true)",
            field="url",
        )
    port = int(match.group("port"))
    if not 0 < port < 65536:
        raise EngineError(f"port {port} of the Spark Connect URL is out of range", field="url")
    for param in (match.group("params") or "/;")[2:].split(";"):
        key = unquote(param.partition("=")[0])
        if param and key not in _URL_PARAMS:
            raise EngineError(
                f"unknown Spark Connect URL parameter {key[:40]!r} (allowed: {', '.join(sorted(_URL_PARAMS))})",
                field="url",
            )
    return match.group("host").strip("[]"), port


def _condition(exc: BaseException) -> str:
    for method in ("getCondition", "getErrorClass"):
        get = getattr(exc, method, None)
        if callable(get):
            try:
                value = get()
            except Exception:  # noqa: S112 - older/newer pyspark without it
                continue
            if value:
                return str(value)
    return ""


def _parameters(exc: BaseException) -> dict[str, str]:
    get = getattr(exc, "getMessageParameters", None)
    try:
        params = get() if callable(get) else None
    except Exception:
        params = None
    return {str(k): str(v) for k, v in (params or {}).items()}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line[:300]


def _unquote(name: str) -> str:
    return name.replace("`", "")


@register
class SparkConnector(Connector):
    """Apache Spark through a Spark Connect URL or the process's local Spark."""

    kind = "spark"
    dialect = "spark"
    tested = "real"
    label = "Apache Spark (Spark Connect or local)"

    def __init__(self, config: Mapping[str, Any], limits: Limits | None = None) -> None:
        super().__init__(config, limits)
        url, master = self.config.get("url"), self.config.get("master")
        if bool(url) == bool(master):
            raise EngineError(
                "give either a Spark Connect URL (url: sc://host:15002) or a local master (master: local[2])",
                field="url",
            )
        self.url: str | None = None
        self.master: str | None = None
        self.address = ""
        if url:
            if not isinstance(url, str):
                raise EngineError("the Spark Connect URL must be a string", field="url")
            self.host, self.port = _parse_url(url)
            self.url = url
            # The address to connect to, checked by the caller (DNS rebinding: the name is not resolved
            # again); the channel's authority and TLS name stay the URL's host.
            address = str(self.config.get("address") or "")
            if address:
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise EngineError(f"{address[:60]!r} is not an IP address", field="url") from None
            self.address = address
        else:
            if not isinstance(master, str) or not _MASTER.match(master):
                raise EngineError(
                    f"{str(master)[:40]!r} is not a local master (local, local[N] or local[*]); "
                    "reach a cluster through its Spark Connect URL",
                    field="master",
                )
            self.master = master
        tables = self.config.get("tables") or {}
        if not isinstance(tables, Mapping):
            raise EngineError("tables must map view names to Parquet paths", field="tables")
        self.tables: dict[str, str] = {}
        for name, path in tables.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise EngineError(
                    f"{str(name)[:40]!r} is not a table name (letters, digits and _)", field="tables"
                )
            self.tables[name] = _check_path(name, path, local=self.master is not None)
        database = self.config.get("database") or None
        if database is not None and (not isinstance(database, str) or not _DATABASE.match(database)):
            raise EngineError(f"{str(database)[:40]!r} is not a [catalog.]schema name", field="database")
        self.database: str | None = database
        self.spark: Any = None
        self._tag: str | None = None

    # -- connection ----------------------------------------------------------------------------
    def _connect(self) -> None:
        if self.url is not None:
            self.spark = self._remote_session()
        else:
            assert self.master is not None
            self.spark = local_session(self.master).newSession()
        try:
            for key, value in SESSION_CONF.items():
                self.spark.conf.set(key, value)
            if self.database:
                catalog, _, schema = self.database.rpartition(".")
                if catalog:
                    self.spark.catalog.setCurrentCatalog(catalog)
                self.spark.catalog.setCurrentDatabase(schema)
            for name, path in self.tables.items():
                self._register(name, path)
        except Exception:
            self._close()
            raise

    def _remote_session(self) -> Any:
        timeout = self.limits.connect_timeout_seconds
        try:
            socket.create_connection((self.address or self.host, self.port), timeout=timeout).close()
        except OSError as exc:
            raise EngineUnavailable(
                f"cannot reach the Spark Connect server at {self.host}:{self.port} within {timeout:g} s "
                f"({exc.strerror or type(exc).__name__}); check the url and that the server is running",
                field="url",
            ) from None
        _pyspark()
        from pyspark.sql.connect.client.retries import DefaultPolicy
        from pyspark.sql.connect.session import SparkSession as RemoteSession

        assert self.url is not None
        # The Connect builder (not pyspark.sql's): it does not switch the whole process to Connect mode.
        if self.address:
            from pyspark.sql.connect.client.core import DefaultChannelBuilder

            netloc = f"[{self.address}]" if ":" in self.address else self.address
            pinned = re.sub(r"^sc://(\[[^\]]*\]|[^:/]+)", f"sc://{netloc}", self.url, count=1)
            channel = DefaultChannelBuilder(
                pinned,
                channelOptions=[
                    ("grpc.default_authority", f"{self.host}:{self.port}"),
                    ("grpc.ssl_target_name_override", self.host),
                ],
            )
            spark = RemoteSession.builder.channelBuilder(channel).create()
        else:
            spark = RemoteSession.builder.remote(self.url).create()
        # A few quick retries, not the default ten minutes of them, when the server goes away.
        spark.client.set_retry_policies(
            [DefaultPolicy(max_retries=3, initial_backoff=100, max_backoff=int(timeout * 1000))]
        )
        return spark

    def _register(self, name: str, path: str) -> None:
        reader = self.spark.read
        if path.lower().endswith(".csv"):
            frame = reader.option("header", "true").option("inferSchema", "true").csv(path)
        else:
            frame = reader.parquet(path)
        frame.createOrReplaceTempView(name)

    def _close(self) -> None:
        spark, self.spark = self.spark, None
        if spark is None:
            return
        if self.url is not None:
            spark.stop()  # releases this session on the server; the server keeps running
            return
        for name in self.tables:
            try:
                spark.catalog.dropTempView(name)
            except Exception:  # noqa: S110 - best effort; the session is dropped anyway
                pass

    # -- queries -------------------------------------------------------------------------------
    def _execute(self, sql: str) -> Iterator[tuple[Any, ...]]:
        spark = self.spark
        tag = f"truenorth-{uuid.uuid4().hex}"
        self._tag = tag
        self._add_tag(tag)
        finished = False
        try:
            frame = spark.sql(sql).limit(self.limits.max_rows + 1)
            schema = frame.schema
            self.columns = [f.name for f in schema.fields]
            convert = self._converters(schema)
            for row in frame.toLocalIterator():
                yield tuple(f(v) for f, v in zip(convert, row, strict=True))
            finished = True
        finally:
            self._tag = None
            if not finished:  # the caller stopped early (caps) or the query failed: stop what runs
                try:
                    self._interrupt(tag)
                except Exception:  # noqa: S110 - nothing left to stop
                    pass
            self._remove_tag(tag)

    # Spark Connect: the session's operation tags (server side). The classic local session: the
    # SparkContext's job tags (thread-local, inherited by the threads the query's jobs run in); the
    # classic session's own tags do not reach the jobs toLocalIterator starts.
    def _add_tag(self, tag: str) -> None:
        if self.url is not None:
            self.spark.addTag(tag)
        else:
            sc = self.spark.sparkContext
            sc.setInterruptOnCancel(True)
            sc.addJobTag(tag)

    def _remove_tag(self, tag: str) -> None:
        if self.url is not None:
            self.spark.removeTag(tag)
        else:
            self.spark.sparkContext.removeJobTag(tag)

    def _interrupt(self, tag: str) -> None:
        if self.url is not None:
            self.spark.interruptTag(tag)
        else:
            self.spark.sparkContext.cancelJobsWithTag(tag)

    @staticmethod
    def _converters(schema: Any) -> list[Any]:
        """Per column, a function normalising its Python value: pyspark gives TIMESTAMP (an instant)
        as a naive datetime in the *Python process's* local time zone; return it as an aware UTC
        datetime instead (TIMESTAMP_NTZ stays naive, as stored)."""
        from pyspark.sql.types import TimestampType

        def same(value: Any) -> Any:
            return value

        def instant(value: Any) -> Any:
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                return value.astimezone(dt.UTC)
            return value

        return [instant if isinstance(f.dataType, TimestampType) else same for f in schema.fields]

    def _cancel(self) -> None:
        """Interrupt the query's operations until it has stopped: the timeout may fire while Spark is
        still planning, before the first job exists, and a query may start several jobs in turn."""
        tag, spark = self._tag, self.spark
        if tag is None or spark is None:
            return
        deadline = time.monotonic() + CANCEL_PERSIST_SECONDS
        while self._tag == tag and time.monotonic() < deadline:
            self._interrupt(tag)
            time.sleep(0.2)

    # -- errors --------------------------------------------------------------------------------
    def translate(self, exc: BaseException) -> EngineError:
        if isinstance(exc, EngineError):
            return exc
        condition = _condition(exc)
        params = _parameters(exc)
        base = condition.split(".")[0]
        # Never the URL itself: it may carry the token.
        where = f"{self.host}:{self.port}" if self.url is not None else f"the local Spark ({self.master})"
        if base in ("TABLE_OR_VIEW_NOT_FOUND", "VIEW_NOT_FOUND", "TABLE_NOT_FOUND"):
            table = _unquote(params.get("relationName", "")) or "?"
            short = table.rsplit(".", 1)[-1]
            hint = (
                f"check tables.{short}"
                if short in self.tables or self.master is not None
                else "check the table name and the database setting"
            )
            return EngineError(f"table `{table}` not found on Spark: {hint}", field="tables")
        if base in ("UNRESOLVED_COLUMN", "UNRESOLVED_FIELD", "UNRESOLVED_MAP_KEY"):
            column = _unquote(params.get("objectName", params.get("fieldName", ""))) or "?"
            proposal = params.get("proposal", "")
            hint = f" (did you mean {_unquote(proposal)}?)" if proposal else ""
            return EngineError(
                f"column `{column}` not found on Spark{hint}: check the column mapping", field="query"
            )
        if base in ("UNRESOLVED_ROUTINE", "ROUTINE_NOT_FOUND"):
            routine = _unquote(params.get("routineName", "")) or "?"
            return EngineError(f"function `{routine}` does not exist on Spark", field="query")
        if base in ("PATH_NOT_FOUND", "UNABLE_TO_INFER_SCHEMA"):
            path = params.get("path", "") or params.get("format", "")
            return EngineError(
                f"Spark cannot read the data at {path}: check the tables setting", field="tables"
            )
        if base in ("SCHEMA_NOT_FOUND", "CATALOG_NOT_FOUND", "REQUIRES_SINGLE_PART_NAMESPACE"):
            return EngineError(
                f"Spark has no such database or catalog: check the database setting ({self.database})",
                field="database",
            )
        if base in ("CANNOT_MODIFY_CONFIG", "CANNOT_MODIFY_STATIC_CONFIG"):
            key = params.get("key", "") or ", ".join(SESSION_CONF)
            return EngineUnavailable(
                f"the Spark server at {where} does not let TrueNorth set {key}, which a source needs "
                "(SQL must not read files by path): allow it for the Spark Connect user",
                field="url",
            )
        if base in ("PARSE_SYNTAX_ERROR", "PARSE_EMPTY_STATEMENT"):
            return EngineError(f"Spark cannot parse the query: {_first_line(exc)}", field="query")
        if base in ("DIVIDE_BY_ZERO", "CAST_INVALID_INPUT", "ARITHMETIC_OVERFLOW", "CAST_OVERFLOW"):
            return EngineError(f"Spark could not compute the query: {_first_line(exc)}", field="query")
        if base in ("JAVA_GATEWAY_EXITED", "CONTEXT_UNAVAILABLE_FOR_REMOTE_CLIENT") or isinstance(
            exc, FileNotFoundError
        ):
            return EngineUnavailable(
                "cannot start the local Spark: Java 17 must be installed on the TrueNorth server "
                f"({_first_line(exc)})",
                field="master",
            )
        text = str(exc)
        if self.url is not None and (
            "UNAVAILABLE" in text or "failed to connect" in text.lower() or "Connection refused" in text
        ):
            return EngineUnavailable(
                f"cannot reach the Spark Connect server at {self.host}:{self.port}: check the url",
                field="url",
            )
        if self.url is not None and ("UNAUTHENTICATED" in text or "PERMISSION_DENIED" in text):
            return EngineUnavailable(
                "the Spark Connect server refused the credentials: check the token in the url", field="url"
            )
        if condition:
            return EngineError(f"Spark refused the query on {where}: {_first_line(exc)}", field="query")
        return EngineError(f"Spark failed on {where}: {_first_line(exc)}", field="query")
