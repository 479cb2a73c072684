"""Adversarial review (issue 14): a ClickHouse server URL must not become a way into the private network.

The data source wiring refuses private addresses in the URL, but a hostile public "ClickHouse" can answer
with an HTTP redirect to one (http://127.0.0.1:…, the metadata service, TrueNorth's own hosts):
the connector must not follow it.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from truenorth.engines.base import EngineError, Limits
from truenorth.engines.clickhouse_engine import ClickHouseConnector

pytestmark = pytest.mark.clickhouse


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"1\n")


@pytest.fixture
def redirecting() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Target", (_Recorder,), {"hits": hits}))
    location = f"http://127.0.0.1:{target.server_address[1]}"

    class Hostile(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(307)
            self.send_header("Location", location + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

    hostile = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    servers = (target, hostile)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{hostile.server_address[1]}", hits
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_server_redirect_is_not_followed(redirecting: tuple[str, list[str]]) -> None:
    url, hits = redirecting
    connector = ClickHouseConnector({"url": url}, Limits(connect_timeout_seconds=5, timeout_seconds=5))
    with pytest.raises(EngineError):
        with connector:
            connector.fetch("SELECT 1")
    assert hits == []  # nothing reached the address the redirect pointed at


def test_server_connects_to_the_pinned_address() -> None:
    """DNS rebinding: the caller checked the name's addresses (not private); ``address`` pins the one
    checked, so the client never resolves the name again (it could answer 127.0.0.1 the second time)."""
    from truenorth.engines.tests.test_clickhouse import _StandIn

    stand_in = _StandIn()
    try:
        port = urlsplit(stand_in.url).port
        config = {"url": f"http://clickhouse.invalid:{port}", "address": "127.0.0.1"}
        with ClickHouseConnector(config, Limits(connect_timeout_seconds=5)) as connector:
            assert connector.fetch("SELECT 2 AS two") == [(2,)]
        assert "clickhouse.invalid" in connector._where()  # messages still name the URL
    finally:
        stand_in.close()


def test_pinned_address_must_be_an_ip_address() -> None:
    with pytest.raises(EngineError) as refused:
        ClickHouseConnector({"url": "http://example.org:8123", "address": "evil.example"})
    assert refused.value.field == "url"
