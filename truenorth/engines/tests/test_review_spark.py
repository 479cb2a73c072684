"""Adversarial review (issue 14): a Spark Connect URL must not become a way into the private network.

The data source wiring resolves the URL's name and refuses private addresses; a name whose second answer
is 127.0.0.1 (DNS rebinding) would then lead the gRPC channel to the TrueNorth host. ``address`` pins the
checked address: the connector never resolves the name again.
"""

from __future__ import annotations

import pytest

from truenorth.engines.base import EngineError, Limits
from truenorth.engines.tests.test_spark import connect_url, spark  # noqa: F401 - the shared fixtures

pytestmark = pytest.mark.spark


def test_spark_connect_connects_to_the_pinned_address(connect_url: str) -> None:  # noqa: F811
    from truenorth.engines.spark_engine import SparkConnector

    port = connect_url.rsplit(":", 1)[1]
    config = {"url": f"sc://spark.invalid:{port}", "address": "127.0.0.1"}
    with SparkConnector(config, Limits(connect_timeout_seconds=10)) as connector:
        assert connector.fetch("SELECT 2 AS two") == [(2,)]


def test_pinned_address_must_be_an_ip_address() -> None:
    from truenorth.engines.spark_engine import SparkConnector

    with pytest.raises(EngineError) as refused:
        SparkConnector({"url": "sc://example.org:15002", "address": "evil.example"})
    assert refused.value.field == "url"
