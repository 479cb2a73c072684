"""Review: the DuckDB connector cannot read the worker's Python objects (replacement scans)."""

from __future__ import annotations

import pandas as pd
import pytest

from truenorth.engines.base import EngineError
from truenorth.engines.duckdb_engine import DuckDBConnector


class Unchecked(DuckDBConnector):
    """The connector without the read-only check, to prove the engine refuses on its own."""

    def check(self, sql: str) -> None:
        pass


@pytest.mark.parametrize("connector_class", [DuckDBConnector, Unchecked])
def test_a_query_cannot_read_a_python_variable_of_the_worker(connector_class: type[DuckDBConnector]) -> None:
    worker_secrets = pd.DataFrame({"secret": ["hunter2"]})
    assert len(worker_secrets) == 1
    with connector_class({}) as connector, pytest.raises(EngineError):
        connector.fetch("SELECT secret FROM worker_secrets")
    with connector_class({}) as connector:
        assert connector.fetch("SELECT current_setting('python_enable_replacements')") == [(False,)]
