"""Review (finding 5): the Trino connector's HTTP session never follows a redirect, and a run connects
to the address checked before it (DNS rebinding) with the configured name as Host and TLS name."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from truenorth.engines.base import EngineError
from truenorth.engines.dbapi_engine import TrinoConnector


class Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, str | None]]
    location = ""

    def _answer(self) -> None:
        self.seen.append((self.command, self.path, self.headers.get("Host")))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.location:
            self.send_response(307)
            self.send_header("Location", self.location)
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


def _serve(location: str = "") -> tuple[ThreadingHTTPServer, list[tuple[str, str, str | None]]]:
    seen: list[tuple[str, str, str | None]] = []
    handler = type("Handler", (Recorder,), {"seen": seen, "location": location})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.fixture
def servers() -> Iterator[tuple[Any, list[Any], Any, list[Any]]]:
    target, target_seen = _serve()
    private = f"http://127.0.0.1:{target.server_address[1]}/internal"
    redirecting, redirect_seen = _serve(location=private)
    yield redirecting, redirect_seen, target, target_seen
    for server in (redirecting, target):
        server.shutdown()
        server.server_close()


def test_a_redirect_from_the_coordinator_is_not_followed(servers: Any) -> None:
    redirecting, redirect_seen, _target, target_seen = servers
    port = redirecting.server_address[1]
    connector = TrinoConnector(
        {"driver": "trino", "params": {"host": "127.0.0.1", "port": port, "user": "u"}}
    )
    kwargs = connector.connect_kwargs()
    session = kwargs["http_session"]
    assert isinstance(session, requests.Session)
    with pytest.raises(requests.TooManyRedirects):
        session.post(f"http://127.0.0.1:{port}/v1/statement", data="SELECT 1")
    assert [s[0] for s in redirect_seen] == ["POST"]
    assert target_seen == []  # the query (and credentials) never reached the private address


def test_a_run_connects_to_the_pinned_address_with_the_name_as_host() -> None:
    target, seen = _serve()
    try:
        port = target.server_address[1]
        config = {
            "driver": "trino",
            "params": {"host": "trino.example.org", "port": port, "user": "u", "http_scheme": "http"},
            "address": "127.0.0.1",
        }
        kwargs = TrinoConnector(config).connect_kwargs()
        assert kwargs["host"] == "127.0.0.1"
        assert kwargs["port"] == port
        kwargs["http_session"].get(f"http://{kwargs['host']}:{port}/v1/info")
        assert seen == [("GET", "/v1/info", f"trino.example.org:{port}")]
        adapter = kwargs["http_session"].get_adapter("https://127.0.0.1/")
        assert adapter.poolmanager.connection_pool_kw["server_hostname"] == "trino.example.org"
        assert adapter.poolmanager.connection_pool_kw["assert_hostname"] == "trino.example.org"
    finally:
        target.shutdown()
        target.server_close()


def test_the_pinned_address_must_be_an_ip_address() -> None:
    config = {"driver": "trino", "params": {"host": "trino.example.org"}, "address": "evil.example"}
    with pytest.raises(EngineError) as refused:
        TrinoConnector(config).connect_kwargs()
    assert refused.value.field == "params.host"


def test_without_a_pinned_address_the_host_is_the_name() -> None:
    kwargs = TrinoConnector({"driver": "trino", "params": {"host": "trino.example.org"}}).connect_kwargs()
    assert kwargs["host"] == "trino.example.org"
    assert kwargs["http_session"].max_redirects == 0


def test_the_session_only_talks_to_the_coordinator() -> None:
    """The client follows the coordinator's `nextUri`: a hostile coordinator answering
    http://127.0.0.1:<port>/… must not get the client (and its credentials) there."""
    target, seen = _serve()
    try:
        port = target.server_address[1]
        config = {"driver": "trino", "params": {"host": "trino.example.org", "port": 8080, "user": "u"}}
        session = TrinoConnector(config).connect_kwargs()["http_session"]
        for url in (
            f"http://127.0.0.1:{port}/v1/statement/x",
            f"http://trino.example.org:{port}/v1/statement/x",  # another port
            "https://trino.example.org:8080/v1/statement/x",  # another scheme
        ):
            with pytest.raises(requests.exceptions.InvalidURL):
                session.get(url)
        assert seen == []
    finally:
        target.shutdown()
        target.server_close()


def test_next_uris_on_the_name_go_to_the_pinned_address() -> None:
    target, seen = _serve()
    try:
        port = target.server_address[1]
        config = {
            "driver": "trino",
            "params": {"host": "trino.example.org", "port": port, "user": "u", "http_scheme": "http"},
            "address": "127.0.0.1",
        }
        session = TrinoConnector(config).connect_kwargs()["http_session"]
        session.get(f"http://trino.example.org:{port}/v1/statement/next")  # never resolved again
        assert seen == [("GET", "/v1/statement/next", f"trino.example.org:{port}")]
    finally:
        target.shutdown()
        target.server_close()
