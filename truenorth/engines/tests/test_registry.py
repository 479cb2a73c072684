"""The registry: built-in kinds, unknown kinds, and plugins through a real entry point (a
distribution's metadata written to a directory on sys.path)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from truenorth.engines import registry
from truenorth.engines.base import Connector, EngineError


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake installed distribution `acme-engines` with three entry points in truenorth.engines."""
    (tmp_path / "acme_engines.py").write_text(
        textwrap.dedent(
            """
            from truenorth.engines.base import Connector, EngineError

            class Acme(Connector):
                kind = "acme"
                dialect = "trino"

                def _connect(self): pass
                def _execute(self, sql): yield (42,)
                def _cancel(self): pass
                def translate(self, exc): return EngineError(str(exc), field="query")

            class NotAConnector:
                pass
            """
        )
    )
    info = tmp_path / "acme_engines-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-engines\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[truenorth.engines]\n"
        "acme = acme_engines:Acme\n"
        "broken = acme_engines_missing:Nope\n"
        "odd = acme_engines:NotAConnector\n"
        "duckdb = acme_engines:Acme\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for kind in ("acme", "broken", "odd"):
        registry._registered.pop(kind, None)
    sys.modules.pop("acme_engines", None)


def test_unknown_kind_names_the_kind_field():
    with pytest.raises(EngineError) as caught:
        registry.connector_class("oracle")
    assert caught.value.field == "kind" and "'oracle'" in caught.value.message
    assert "duckdb" in caught.value.message


def test_builtin_kinds_are_listed_and_load():
    assert {"duckdb", "postgres", "spark", "chdb", "clickhouse", "trino"} <= set(registry.kinds())
    duck = registry.connector_class("duckdb")
    assert issubclass(duck, Connector) and duck.kind == "duckdb" and duck.dialect == "duckdb"
    pg = registry.connect("postgres", {"dsn": "postgres://x@127.0.0.1/db"})
    assert pg.kind == "postgres" and not pg.connected


def test_a_plugin_entry_point_is_listed_then_loaded_on_use(plugin_dir):
    assert {"acme", "broken", "odd"} <= set(registry.kinds())
    assert "acme" not in registry._registered  # listed, not imported
    with registry.connect("acme", {}) as connector:
        assert connector.fetch("SELECT 42") == [(42,)]
        assert connector.label == "acme" and connector.tested == "compiled"


def test_a_broken_plugin_is_a_clear_error_not_a_crash(plugin_dir):
    with pytest.raises(EngineError) as caught:
        registry.connector_class("broken")
    assert caught.value.field == "kind"
    assert "plugin 'broken' (acme_engines_missing:Nope) cannot be loaded" in caught.value.message
    with pytest.raises(EngineError, match="not a truenorth Connector"):
        registry.connector_class("odd")


def test_a_plugin_cannot_replace_a_builtin_kind(plugin_dir):
    assert registry.connector_class("duckdb").__module__ == "truenorth.engines.duckdb_engine"
