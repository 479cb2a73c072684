"""Structured logs: TRUENORTH_LOG_FORMAT=json writes one JSON object per line (time, level, logger, message,
request id, exception, extra fields), for the application and for gunicorn's access log."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import Client
from gunicorn.config import Config

from tests import live_server
from truenorth.core.jsonlog import GunicornJsonLogger, JsonFormatter, request_id


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the "django.request" logger writes, through the JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("django.request")
    log.addHandler(handler)
    try:
        yield stream
    finally:
        log.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_is_one_json_line_with_its_fields_and_traceback() -> None:
    log = logging.getLogger("truenorth.example")
    try:
        raise ValueError("bad value\non two lines")
    except ValueError:
        record = log.makeRecord(
            log.name,
            logging.ERROR,
            __file__,
            1,
            "refresh %s failed",
            (7,),
            sys.exc_info(),
            extra={"measure_id": 7},
        )
    token = request_id.set("req-123")
    try:
        text = JsonFormatter().format(record)
    finally:
        request_id.reset(token)

    assert "\n" not in text
    entry = json.loads(text)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "truenorth.example"
    assert entry["message"] == "refresh 7 failed"
    assert entry["request_id"] == "req-123"
    assert entry["measure_id"] == 7
    assert "ValueError: bad value\non two lines" in entry["exception"]
    assert dt.datetime.fromisoformat(entry["time"]).utcoffset() == dt.timedelta(0)


def test_a_line_written_while_serving_a_request_names_its_request_id(db, captured: io.StringIO) -> None:
    response = Client().get("/no/such/page/")
    assert response.status_code == 404
    [entry] = [e for e in lines(captured) if e["message"] == "Not Found: /no/such/page/"]
    assert entry["level"] == "WARNING" and entry["logger"] == "django.request"
    assert entry["request_id"] == response["X-Request-ID"]
    assert entry["status_code"] == 404  # Django's own extra field


def test_outside_a_request_there_is_no_request_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "plain", None, None)
    assert "request_id" not in json.loads(JsonFormatter().format(record))


def test_gunicorns_access_line_is_json_with_the_fields_and_no_query_string() -> None:
    cfg = Config()
    cfg.set("accesslog", "-")
    logger = GunicornJsonLogger(cfg)
    stream = io.StringIO()
    for handler in logger.access_log.handlers:
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
    response = SimpleNamespace(
        status="302 Found", headers=[("Location", "/"), ("X-Request-ID", "abc123")], sent=17
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/s/share/",
        "QUERY_STRING": "token=secret-share-token",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_USER_AGENT": "curl/8",
    }
    logger.access(response, SimpleNamespace(headers=[]), environ, dt.timedelta(milliseconds=12.5))

    [entry] = lines(stream)
    assert entry["logger"] == "gunicorn.access" and entry["level"] == "INFO"
    assert entry["message"] == "GET /s/share/ 302"
    assert {k: entry[k] for k in ("method", "path", "status", "bytes", "remote_addr", "user_agent")} == {
        "method": "GET",
        "path": "/s/share/",
        "status": 302,
        "bytes": 17,
        "remote_addr": "203.0.113.9",
        "user_agent": "curl/8",
    }
    assert entry["duration_ms"] == 12.5 and entry["request_id"] == "abc123"
    assert "secret-share-token" not in stream.getvalue()


CONFIGURED = """
import logging
import django
django.setup()
logging.getLogger("truenorth.probe").warning("probe %s", "one", extra={"answer": 42})
try:
    1 / 0
except ZeroDivisionError:
    logging.getLogger("truenorth.probe").exception("it broke")
"""


def _run(tmp_path: Path, **settings: str) -> tuple[int, str]:
    env = live_server.server_env(tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    env.pop("TRUENORTH_LOG_FORMAT", None)
    env.update(settings)
    done = live_server.run_python(CONFIGURED, env, timeout=120)
    return done.returncode, done.stderr


def test_the_json_setting_makes_every_log_line_a_json_object(tmp_path: Path) -> None:
    code, stderr = _run(tmp_path, TRUENORTH_LOG_FORMAT="json")
    assert code == 0, stderr
    entries = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    probe = [e for e in entries if e["logger"] == "truenorth.probe"]
    assert [e["message"] for e in probe] == ["probe one", "it broke"]
    assert probe[0]["answer"] == 42 and probe[0]["level"] == "WARNING"
    assert "ZeroDivisionError" in probe[1]["exception"]


def test_text_stays_the_default(tmp_path: Path) -> None:
    code, stderr = _run(tmp_path)
    assert code == 0, stderr
    assert "WARNING truenorth.probe: probe one" in stderr
    assert not stderr.lstrip().startswith("{")


def test_an_unknown_log_format_is_refused_at_start_naming_the_setting(tmp_path: Path) -> None:
    code, stderr = _run(tmp_path, TRUENORTH_LOG_FORMAT="xml")
    assert code != 0
    assert "TRUENORTH_LOG_FORMAT: expected text or json, got 'xml'" in stderr
