"""Error reports: with SENTRY_DSN, an unhandled error in a view reaches Sentry (a real sentry_sdk transport
posting to a local HTTP server standing in for Sentry), without personal data; without it nothing is sent;
a DSN without the `truenorth[sentry]` extra is refused at start. Each case runs in a fresh process, since
Sentry is set up when the settings load."""

from __future__ import annotations

import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import live_server

PROBE = """
import json
import sentry_sdk
import django
django.setup()
from django.test.utils import override_settings
from wsgiref.util import setup_testing_defaults
from truenorth.wsgi import application

environ = {}
setup_testing_defaults(environ)
environ.update(
    PATH_INFO="/boom/42/", HTTP_COOKIE="sessionid=secret-session-cookie", REMOTE_ADDR="198.51.100.7"
)
answers = []
with override_settings(ROOT_URLCONF="truenorth.ops.tests.sentry_urls"):
    b"".join(application(environ, lambda status, headers, exc_info=None: answers.append((status, dict(headers)))))
status, headers = answers[0]
print(json.dumps({"status": status, "request_id": headers.get("X-Request-ID"),
                  "active": sentry_sdk.get_client().is_active()}))
sentry_sdk.flush(10)
"""


class FakeSentry:
    """An HTTP server that keeps every envelope posted to it (decompressed)."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str, bytes]] = []
        received = self.envelopes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while size := int(self.rfile.readline().strip() or b"0", 16):
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "br":
                    import brotli  # type: ignore[import-untyped]

                    body = brotli.decompress(body)
                received.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.dsn = f"http://public-key@127.0.0.1:{self.server.server_address[1]}/7"

    def events(self) -> list[dict[str, Any]]:
        """The error events of every envelope (an envelope: a header line, then item header and payload)."""
        found = []
        for _, body in self.envelopes:
            lines = body.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    fake = FakeSentry()
    yield fake
    fake.close()


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = live_server.server_env(tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    for name in ("SENTRY_DSN", "TRUENORTH_SENTRY_ENVIRONMENT", "TRUENORTH_SENTRY_TRACES_SAMPLE_RATE"):
        env.pop(name, None)
    env.update(settings)
    return env


def test_an_unhandled_view_error_is_reported_without_personal_data(
    tmp_path: Path, sentry: FakeSentry
) -> None:
    env = _env(tmp_path, SENTRY_DSN=sentry.dsn, TRUENORTH_SENTRY_ENVIRONMENT="ci-test")
    done = live_server.run_python(PROBE, env, timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"].startswith("500") and answer["active"] is True

    assert {path for path, _ in sentry.envelopes} == {"/api/7/envelope/"}
    [event] = sentry.events()
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == "kaboom from the test (thing 42)"
    assert event["environment"] == "ci-test"
    assert event["release"].startswith("truenorth@")
    assert event["tags"]["request_id"] == answer["request_id"]
    # Grouped by route, not by the raw address.
    assert "thing_id" in event["transaction"] and "42" not in event["transaction"]
    raw = b"".join(body for _, body in sentry.envelopes)
    assert b"secret-session-cookie" not in raw  # send_default_pii=False: no cookies
    assert b"198.51.100.7" not in raw  # nor the client's address


def test_without_a_dsn_nothing_is_sent(tmp_path: Path, sentry: FakeSentry) -> None:
    done = live_server.run_python(PROBE, _env(tmp_path), timeout=120)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"].startswith("500") and answer["active"] is False
    assert sentry.envelopes == []


def test_a_dsn_without_the_sentry_extra_is_refused_at_start_naming_it(tmp_path: Path) -> None:
    code = (
        "import sys\nsys.modules['sentry_sdk'] = None  # as if not installed\nimport django\ndjango.setup()\n"
    )
    done = live_server.run_python(code, _env(tmp_path, SENTRY_DSN="http://key@127.0.0.1:9/1"), timeout=120)
    assert done.returncode != 0
    assert "ConfigError: SENTRY_DSN is set but sentry-sdk is not installed" in done.stderr
    assert "pip install 'truenorth[sentry]'" in done.stderr


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"SENTRY_DSN": "not a dsn"}, "SENTRY_DSN: "),
        ({"SENTRY_DSN": "http://k@127.0.0.1:9/1", "TRUENORTH_SENTRY_TRACES_SAMPLE_RATE": "2"}, "from 0 to 1"),
    ],
)
def test_a_malformed_sentry_setting_is_refused_at_start(
    tmp_path: Path, environment: dict[str, str], message: str
) -> None:
    done = live_server.run_python(
        "import django\ndjango.setup()\n", _env(tmp_path, **environment), timeout=120
    )
    assert done.returncode != 0
    assert message in done.stderr


def test_check_reports_sentry_on_without_the_dsns_key(tmp_path: Path, sentry: FakeSentry) -> None:
    env = _env(tmp_path, SENTRY_DSN=sentry.dsn, TRUENORTH_SENTRY_TRACES_SAMPLE_RATE="0.25", COLUMNS="200")
    done = live_server.run(["check"], env, timeout=180)
    assert "error reports" in done.stdout
    assert "Sentry at 127.0.0.1, environment production, 0.25 of requests traced" in done.stdout
    assert "public-key" not in done.stdout
