"""Adversarial review (issue 14): data source settings a hostile organisation admin could bend."""

from __future__ import annotations

import pytest

from truenorth.core.errors import ValidationFailed
from truenorth.measures.sources.engine_config import clean_engine_config


@pytest.mark.parametrize(
    "account",
    [
        "evil.example/",  # https://evil.example/.snowflakecomputing.com:443/…
        "127.0.0.1:5432/x",
        "acme@169.254.169.254",
        "acme#",
        "acme?x=",
        "acme snowflake",
        "a\\b",
    ],
)
def test_snowflake_account_cannot_redirect_the_driver(settings, account: str) -> None:
    """The Snowflake driver builds its address from `account` ("<account>.snowflakecomputing.com"):
    one with '/', ':', '@', '#', '?' would send the login (and the password) to another host."""
    settings.TRUENORTH_ENGINES_DRIVERS = ["snowflake"]
    with pytest.raises(ValidationFailed) as refused:
        clean_engine_config("snowflake", {"driver": "snowflake", "params": {"account": account}}, 1)
    assert refused.value.field == "config.params.account"


@pytest.mark.parametrize("account", ["acme", "xy12345.us-east-1", "myorg-account_1", "xy12345.eu-west-1.aws"])
def test_snowflake_account_shapes_accepted(settings, account: str) -> None:
    settings.TRUENORTH_ENGINES_DRIVERS = ["snowflake"]
    cleaned = clean_engine_config("snowflake", {"driver": "snowflake", "params": {"account": account}}, 1)
    assert cleaned["params"]["account"] == account


def test_clickhouse_run_config_pins_the_checked_address(settings, monkeypatch) -> None:
    """Before a run the name is resolved and every address checked; the connector gets the checked
    address to connect to, so a second resolution (DNS rebinding) cannot lead it to 127.0.0.1."""
    from truenorth.measures.sources import config as source_config

    settings.TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS = False
    monkeypatch.setattr(source_config, "_resolve", lambda host, port: ["8.8.8.8"])
    stored = {"url": "https://ch.example.org:8443", "username": "reader", "password": "pw"}
    run = clean_engine_config("clickhouse", dict(stored), 1, run=True)
    assert run["address"] == "8.8.8.8"
    assert run["url"] == "https://ch.example.org:8443"
    saved = clean_engine_config("clickhouse", dict(stored), 1)
    assert "address" not in saved  # only pinned for the run, never stored


def test_spark_connect_run_config_pins_the_checked_address(settings, monkeypatch) -> None:
    from truenorth.measures.sources import config as source_config

    settings.TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS = False
    monkeypatch.setattr(source_config, "_resolve", lambda host, port: ["8.8.8.8"])
    stored = {"url": "sc://spark.example.org:15002/;token=t"}
    run = clean_engine_config("spark", dict(stored), 1, run=True)
    assert run["address"] == "8.8.8.8"
    assert run["url"] == "sc://spark.example.org:15002/;token=t"
    assert "address" not in clean_engine_config("spark", dict(stored), 1)


def test_trino_run_config_pins_the_checked_address(settings, monkeypatch) -> None:
    from truenorth.measures.sources import config as source_config

    settings.TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS = False
    settings.TRUENORTH_ENGINES_DRIVERS = ["trino"]
    monkeypatch.setattr(source_config, "_resolve", lambda host, port: ["8.8.8.8"])
    stored = {"driver": "trino", "params": {"host": "trino.example.org", "port": 443, "user": "u"}}
    run = clean_engine_config("trino", dict(stored), 1, run=True)
    assert run["address"] == "8.8.8.8"
    assert run["params"]["host"] == "trino.example.org"
    assert "address" not in clean_engine_config("trino", dict(stored), 1)
