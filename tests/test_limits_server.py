"""Rate and size limits through the real server (`truenorth serve`, gunicorn, 2 worker processes) on a
database of its own (PostgreSQL when DATABASE_URL is, else a SQLite file), with the default shared cache.

- The per-token limit counts exactly across the workers: N concurrent requests over a limit L get
  exactly L answers 200 and N - L answers 429 (Django's DatabaseCache incr, a get then a set, let more in).
- Bodies: a declared or chunked body over the limit is 413 naming `body` (API JSON, web page), a chunked
  body under it is read (Django alone would see it empty), an upload over the import limit is 413 naming
  `file`, malformed JSON is 422 naming `body`, too many form fields is 413 naming `body`, never a 500.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import live_server
from tests.live_server import server_database_url

pytestmark = pytest.mark.server

__all__ = ["server_database_url"]  # a fixture: imported so pytest finds it here
STARTUP_TIMEOUT = 240.0  # a loaded CI machine starts gunicorn slowly
TOKEN_LIMIT = 40
REQUESTS = 100
BODY_LIMIT = 2**20  # TRUENORTH_MAX_JSON_BODY_MB=1
FILE_LIMIT = 200_000
SETUP = """
import json
import django
django.setup()
from truenorth.accounts.models import User
from truenorth.accounts.services import create_token
from truenorth.orgs.services import create_organisation
user = User.objects.create_user(email="limits@serve.example", password="not-used-here-123")
create_organisation(user, "Limits Org", "limits")
hammer = create_token(user, "hammer", "read")[1]
print(json.dumps({"token": create_token(user, "limits", "read-write")[1], "hammer": hammer}))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """The server's base URL, a read-write token of the owner of organisation `limits`, and another
    token of theirs (for the rate-limit test, which spends it)."""
    tmp_path = tmp_path_factory.mktemp("limits")
    with live_server.fresh_database_url(tmp_path, "limits") as database_url:
        env = live_server.server_env(
            tmp_path / "data",
            database_url,
            TRUENORTH_API_RATE_PER_TOKEN=f"{TOKEN_LIMIT}/hour",
            TRUENORTH_API_RATE_PER_ADDRESS="0",
            TRUENORTH_MAX_JSON_BODY_MB="1",
            TRUENORTH_IMPORT_MAX_FILE_BYTES=str(FILE_LIMIT),
        )
        migrate = live_server.run(["migrate"], env, timeout=300)
        assert migrate.returncode == 0, migrate.stderr
        setup = live_server.run_python(SETUP, env, timeout=120)
        assert setup.returncode == 0, setup.stderr
        tokens = json.loads(setup.stdout)
        port = live_server.free_port()
        log_path = tmp_path / "server.log"
        proc = live_server.start_server(port, 2, env, tmp_path, log_path)
        try:
            base_url = f"http://{live_server.HOST}:{port}"
            live_server.wait_until_healthy(base_url, [proc], STARTUP_TIMEOUT, log_path.read_text)
            yield base_url, tokens["token"], tokens["hammer"]
        finally:
            live_server.stop(proc)


def _exchange(base_url: str, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send a raw HTTP/1.1 request (`head` without the Host line, then `body`); the status, headers, body."""
    port = int(base_url.rsplit(":", 1)[1])
    with socket.create_connection((live_server.HOST, port), timeout=30) as sock:
        sock.sendall(f"{head}\r\nHost: {live_server.HOST}\r\nConnection: close\r\n\r\n".encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    header_block, _, content = answer.partition(b"\r\n\r\n")
    lines = header_block.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding") == "chunked":
        content = _unchunk(content)
    return int(lines[0].split()[1]), headers, content


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + rest[:size], rest[size + 2 :]
    return out


def _chunked(body: bytes, piece: int = 65536) -> bytes:
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + piece]), body[i : i + piece]) for i in range(0, len(body), piece)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


def test_the_token_limit_counts_exactly_across_server_processes(server: tuple[str, str, str]) -> None:
    base_url, _, token = server
    if 3600 - time.time() % 3600 < 30:  # not across the turn of the hour (the window)
        time.sleep(3600 - time.time() % 3600 + 1)

    def me(_: int) -> tuple[int, dict[str, str]]:
        status, headers, _body = _exchange(
            base_url, f"GET /api/v1/me HTTP/1.1\r\nAuthorization: Bearer {token}"
        )
        return status, headers

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(me, range(REQUESTS)))
    statuses = [status for status, _ in answers]
    assert statuses.count(200) == TOKEN_LIMIT, statuses
    assert statuses.count(429) == REQUESTS - TOKEN_LIMIT
    refused = [headers for status, headers in answers if status == 429]
    assert all(1 <= int(h["retry-after"]) <= 3600 and h["ratelimit-remaining"] == "0" for h in refused)


def test_a_declared_body_over_the_limit_is_413_naming_body(server: tuple[str, str, str]) -> None:
    base_url, _, _ = server
    status, _, content = _exchange(
        base_url,
        f"POST /api/v1/orgs HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {BODY_LIMIT + 1}",
    )
    assert status == 413
    assert json.loads(content)["errors"][0]["field"] == "body"


def test_a_chunked_body_is_read_up_to_the_limit(server: tuple[str, str, str]) -> None:
    base_url, _, _ = server
    # Created through the API below with a chunked body, by a token of its own (the limit above is spent).
    head = "POST /api/v1/orgs HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked"
    over = json.dumps({"name": "x" * (BODY_LIMIT + 1000)}).encode()
    status, headers, content = _exchange(base_url, head, _chunked(over))
    assert status == 413, content[:300]
    assert json.loads(content)["errors"][0]["field"] == "body"
    # A web form too: the 413 page, not a 500.
    form = "POST /accounts/login/ HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked"
    status, headers, content = _exchange(base_url, form, _chunked(b"email=" + b"x" * (BODY_LIMIT + 1000)))
    assert status == 413 and headers["content-type"].startswith("text/html")
    assert b"larger than the 1 MB" in content


def test_a_chunked_body_under_the_limit_reaches_the_view(server: tuple[str, str, str]) -> None:
    base_url, token, _ = server
    head = (
        "POST /api/v1/orgs HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        f"Authorization: Bearer {token}"
    )
    body = json.dumps({"name": "Chunked Org", "slug": "chunked"}).encode()
    status, _, content = _exchange(base_url, head, _chunked(body, piece=7))
    # Read whole (Django alone would see an empty body and answer 422 "name: field required").
    assert status == 201, content[:300]
    assert json.loads(content)["slug"] == "chunked"


def test_malformed_json_is_422_naming_body(server: tuple[str, str, str]) -> None:
    base_url, token, _ = server
    body = b'{"name": "Broken",'
    head = (
        "POST /api/v1/orgs HTTP/1.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}"
    )
    status, _, content = _exchange(base_url, head, body)
    assert status == 422, content[:300]
    answer = json.loads(content)
    assert [e["field"] for e in answer["errors"]] == ["body"], answer


def test_an_upload_over_the_import_limit_is_413_naming_file(server: tuple[str, str, str]) -> None:
    base_url, token, _ = server
    head = (
        "POST /api/v1/orgs/limits/observations/import HTTP/1.1\r\n"
        "Content-Type: multipart/form-data; boundary=XyZ\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {BODY_LIMIT + FILE_LIMIT + 1}"
    )
    status, _, content = _exchange(base_url, head)
    assert status == 413, content[:300]
    assert json.loads(content)["errors"][0]["field"] == "body"


def test_too_many_form_fields_is_413_naming_body(server: tuple[str, str, str]) -> None:
    base_url, token, _ = server
    body = "&".join(f"f{i}=1" for i in range(1500)).encode()
    head = (
        "POST /api/v1/orgs/limits/observations/import HTTP/1.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}"
    )
    status, _, content = _exchange(base_url, head, body)
    assert status == 413, content[:500]
    assert "1000 form fields" in json.loads(content)["errors"][0]["message"]
