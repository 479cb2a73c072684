"""Data source kind → connector class: the built-in connectors and third-party ones.

Built-in connectors register themselves (``@register``) when their module is imported; the registry
imports a built-in module only when its kind is asked for, so a missing optional driver (pyspark,
chdb) never breaks the others. A site plugs its own connector in through the ``truenorth.engines``
entry point group, the same interface the built-in ones use::

    # the plugin's pyproject.toml
    [project.entry-points."truenorth.engines"]
    duckdb_s3 = "acme_truenorth.engines:S3DuckDBConnector"

The entry point's name is the kind; its object a `Connector` subclass whose ``kind`` is that name.
Plugins load lazily (on first use of their kind); one that cannot be imported, or is not a connector,
is an `EngineError` naming it (field "kind"), never a crash. A plugin cannot replace a built-in kind.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from truenorth.engines.base import Connector, EngineError, Limits, first_line

GROUP = "truenorth.engines"

#: Built-in kinds and the module that registers each.
BUILTIN: dict[str, str] = {
    "duckdb": "truenorth.engines.duckdb_engine",
    "postgres": "truenorth.engines.postgres_engine",
    "spark": "truenorth.engines.spark_engine",
    "chdb": "truenorth.engines.clickhouse_engine",
    "clickhouse": "truenorth.engines.clickhouse_engine",
    "trino": "truenorth.engines.dbapi_engine",
    "bigquery": "truenorth.engines.dbapi_engine",
    "snowflake": "truenorth.engines.dbapi_engine",
}

_registered: dict[str, type[Connector]] = {}
_lock = threading.RLock()

C = TypeVar("C", bound=type[Connector])


def register(cls: C) -> C:
    """Class decorator: ``cls`` handles data sources of kind ``cls.kind``."""
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__} has no kind")
    if not isinstance(getattr(cls, "dialect", None), str):
        raise TypeError(f"{cls.__name__} has no SQLGlot dialect")
    with _lock:
        _registered[kind] = cls
    return cls


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def kinds() -> list[str]:
    """Every known kind: the built-in ones, registered ones and plugins (not loaded)."""
    with _lock:
        known = set(BUILTIN) | set(_registered)
    return sorted(known | set(_plugins()))


def _unknown(kind: str) -> EngineError:
    return EngineError(f"unknown engine kind {kind!r}; known kinds: {', '.join(kinds())}", field="kind")


def connector_class(kind: str) -> type[Connector]:
    """The connector class of ``kind`` (imported or loaded on first use)."""
    if not isinstance(kind, str) or not kind:
        raise _unknown(str(kind))
    with _lock:
        if kind in _registered:
            return _registered[kind]
        if kind in BUILTIN:
            module = BUILTIN[kind]
            try:
                importlib.import_module(module)
            except Exception as exc:
                raise EngineError(
                    f"the {kind} connector cannot be loaded ({module}): {first_line(exc)}; "
                    "install its driver (pip install 'truenorth[engines]')",
                    field="kind",
                ) from None
            if kind not in _registered:
                raise EngineError(f"the {kind} connector is not available in this version", field="kind")
            return _registered[kind]
        plugin = _plugins().get(kind)
        if plugin is None:
            raise _unknown(kind)
        try:
            loaded = plugin.load()
        except Exception as exc:
            raise EngineError(
                f"the connector plugin {kind!r} ({plugin.value}) cannot be loaded: {first_line(exc)}",
                field="kind",
            ) from None
        if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
            raise EngineError(
                f"the connector plugin {kind!r} ({plugin.value}) is not a truenorth Connector class",
                field="kind",
            )
        if getattr(loaded, "kind", None) != kind or not isinstance(getattr(loaded, "dialect", None), str):
            raise EngineError(
                f"the connector plugin {kind!r} ({plugin.value}) must set kind = {kind!r} and a dialect",
                field="kind",
            )
        _registered[kind] = loaded
        return loaded


def connect(kind: str, config: Mapping[str, Any], limits: Limits | None = None) -> Connector:
    """A connector for ``kind`` built from ``config``; not yet connected (``with connector: ...``)."""
    return connector_class(kind)(config, limits)
