"""A small GitHub REST API on 127.0.0.1 for the fetch tests: a real HTTP server (ThreadingHTTPServer in a
thread) answering like GitHub Enterprise Server under `/api/v3` — paginated JSON with `Link` headers
(next links by repository id, as GitHub writes them), the `Authorization: Bearer` token checked, `since`
on issues, pull requests sorted by last update — and rate limits on demand."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

TOKEN = "github_pat_11ABCDEFG0secretTOKENvalue42xyz"
REPO = "octo-org/payments"
REPO_ID = 734512


def _user(login: str) -> dict[str, Any]:
    return {"login": login, "id": 58311, "type": "User", "site_admin": False}


def pull(
    number: int,
    title: str,
    created: str,
    updated: str,
    merged: str | None = None,
    merge_sha: str | None = None,
) -> dict[str, Any]:
    return {
        "url": f"https://github.example.com/api/v3/repos/{REPO}/pulls/{number}",
        "id": 1800000000 + number,
        "node_id": f"PR_kwDOK{number}",
        "number": number,
        "state": "closed" if merged else "open",
        "locked": False,
        "title": title,
        "user": _user("mona"),
        "body": "Fixes the rounding of refunds.",
        "labels": [],
        "created_at": created,
        "updated_at": updated,
        "closed_at": merged,
        "merged_at": merged,
        "merge_commit_sha": merge_sha or f"{number:04d}" + "e" * 36,
        "draft": False,
        "head": {"label": "octo-org:fix", "ref": f"fix-{number}", "sha": "c0ffee" + "0" * 34},
        "base": {"label": "octo-org:main", "ref": "main", "sha": "abad1dea" + "0" * 32},
        "author_association": "MEMBER",
    }


def commit(sha: str, authored: str) -> dict[str, Any]:
    return {
        "sha": sha,
        "node_id": f"C_{sha[:8]}",
        "commit": {
            "author": {"name": "Mona Lisa", "email": "mona@example.com", "date": authored},
            "committer": {"name": "Mona Lisa", "email": "mona@example.com", "date": authored},
            "message": "Round refunds half-even",
            "tree": {"sha": "7" * 40},
        },
        "author": _user("mona"),
        "parents": [{"sha": "6" * 40}],
    }


def release(
    tag: str, created: str, published: str | None, target: str = "main", draft: bool = False
) -> dict[str, Any]:
    return {
        "id": abs(hash(tag)) % 10**8,
        "tag_name": tag,
        "target_commitish": target,
        "name": f"Release {tag}",
        "draft": draft,
        "prerelease": False,
        "created_at": created,
        "published_at": published,
        "author": _user("release-bot"),
        "assets": [],
    }


def deployment(ident: int, sha: str, environment: str, created: str, service: str = "") -> dict[str, Any]:
    return {
        "url": f"https://github.example.com/api/v3/repos/{REPO}/deployments/{ident}",
        "id": ident,
        "node_id": f"DE_{ident}",
        "sha": sha,
        "ref": "main",
        "task": "deploy",
        "payload": {"service": service} if service else {},
        "original_environment": environment,
        "environment": environment,
        "description": None,
        "creator": _user("deploy-bot"),
        "created_at": created,
        "updated_at": created,
        "transient_environment": False,
        "production_environment": environment == "production",
    }


def status(ident: int, state: str, created: str) -> dict[str, Any]:
    return {
        "id": ident,
        "state": state,
        "environment": "production",
        "created_at": created,
        "updated_at": created,
    }


def issue(
    number: int,
    title: str,
    created: str,
    updated: str,
    closed: str | None = None,
    labels: tuple[str, ...] = (),
    is_pull: bool = False,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": 2100000000 + number,
        "number": number,
        "title": title,
        "user": _user("hubot"),
        "labels": [{"id": i, "name": name, "color": "d73a4a"} for i, name in enumerate(labels)],
        "state": "closed" if closed else "open",
        "created_at": created,
        "updated_at": updated,
        "closed_at": closed,
        "comments": 0,
    }
    if is_pull:
        data["pull_request"] = {"url": f"https://github.example.com/api/v3/repos/{REPO}/pulls/{number}"}
    return data


def sample_data() -> dict[str, Any]:
    """Three pull requests (one squash-merged with two commits, one merged, one open), a release and a
    draft, two production deployments (one failed), issues (a bug, a closed one, a pull request as
    listed among issues, and one without its number)."""
    return {
        "pulls": [
            pull(
                12,
                "Round refunds half-even",
                "2026-03-02T09:00:00Z",
                "2026-03-04T16:00:00Z",
                "2026-03-04T15:30:00Z",
                "a1" * 20,
            ),
            pull(
                13,
                "Retry card declines",
                "2026-03-03T10:00:00Z",
                "2026-03-05T12:00:00Z",
                "2026-03-05T11:00:00Z",
                "b2" * 20,
            ),
            pull(14, "Draft: new ledger", "2026-03-06T08:00:00Z", "2026-03-06T09:00:00Z"),
        ],
        "commits": {
            12: [commit("12" * 20, "2026-02-27T14:00:00Z"), commit("34" * 20, "2026-03-01T10:00:00Z")],
            13: [commit("56" * 20, "2026-03-03T09:30:00Z")],
        },
        "releases": [
            release("v2.4.0", "2026-03-05T17:00:00Z", "2026-03-05T17:05:00Z", "b2" * 20),
            release("v2.5.0-rc", "2026-03-06T10:00:00Z", None, draft=True),
        ],
        "deployments": [
            deployment(9001, "b2" * 20, "production", "2026-03-05T17:10:00Z", "payments"),
            deployment(9000, "a1" * 20, "production", "2026-03-04T16:00:00Z", "payments"),
        ],
        "statuses": {
            9001: [
                status(2, "failure", "2026-03-05T17:20:00Z"),
                status(1, "in_progress", "2026-03-05T17:11:00Z"),
            ],
            9000: [
                status(4, "success", "2026-03-04T16:09:00Z"),
                status(3, "in_progress", "2026-03-04T16:01:00Z"),
            ],
        },
        "issues": [
            issue(
                20,
                "Refund rounding is off by a cent",
                "2026-03-01T08:00:00Z",
                "2026-03-04T15:31:00Z",
                "2026-03-04T15:31:00Z",
                ("bug",),
            ),
            issue(
                12, "Round refunds half-even", "2026-03-02T09:00:00Z", "2026-03-04T16:00:00Z", is_pull=True
            ),
            {
                "title": "An issue without its number",
                "state": "open",
                "created_at": "2026-03-02T00:00:00Z",
                "updated_at": "2026-03-02T00:00:00Z",
            },
            issue(21, "Export the ledger as CSV", "2026-03-03T08:00:00Z", "2026-03-03T08:00:00Z"),
        ],
    }


class FakeGitHub:
    """The server and its state; `requests` lists (path with query, Authorization header)."""

    def __init__(self, page_size: int = 2) -> None:
        self.data = sample_data()
        self.page_size = page_size
        self.requests: list[tuple[str, str]] = []
        # path prefix → list of answers to give first: ("primary", seconds to reset) or ("secondary", s)
        self.limits: dict[str, list[tuple[str, int]]] = {}
        self.next_host: str | None = None  # write next links on another host (a hostile server)
        self.redirects: dict[str, str] = {}  # request path (with query) → Location of a 301
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.api_url = f"http://127.0.0.1:{self.port}/api/v3"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self, fragment: str) -> list[str]:
        return [p for p, _ in self.requests if fragment in p]

    # --- answering --------------------------------------------------------------------------------

    def _listing(self, route: str, query: dict[str, list[str]]) -> list[Any] | None:
        parts = route.strip("/").split("/")
        d = self.data
        if parts == ["pulls"]:
            return sorted(d["pulls"], key=lambda p: p["updated_at"], reverse=True)
        if len(parts) == 3 and parts[0] == "pulls" and parts[2] == "commits":
            return list(d["commits"].get(int(parts[1]), []))
        if parts == ["releases"]:
            return sorted(d["releases"], key=lambda r: r["created_at"], reverse=True)
        if parts == ["deployments"]:
            return sorted(d["deployments"], key=lambda r: r["created_at"], reverse=True)
        if len(parts) == 3 and parts[0] == "deployments" and parts[2] == "statuses":
            return list(d["statuses"].get(int(parts[1]), []))
        if parts == ["issues"]:
            since = query.get("since", [""])[0]
            rows = [i for i in d["issues"] if not since or i["updated_at"] >= since]
            return sorted(rows, key=lambda i: i["updated_at"])
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                with fake.lock:
                    fake.requests.append((self.path, self.headers.get("Authorization", "")))
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if self.path in fake.redirects:  # a renamed repository answers 301, before any token check
                    self._send(301, {"message": "Moved Permanently"}, {"Location": fake.redirects[self.path]})
                    return
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(
                        401,
                        {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
                    )
                    return
                path = parts.path.removeprefix("/api/v3")
                for prefix in (f"/repos/{REPO}", f"/repositories/{REPO_ID}"):
                    if path.startswith(prefix):
                        route = path[len(prefix) :]
                        break
                else:
                    self._send(404, {"message": "Not Found"})
                    return
                with fake.lock:
                    pending = next(
                        (fake.limits[k] for k in fake.limits if route.startswith(k) and fake.limits[k]), None
                    )
                    limit = pending.pop(0) if pending else None
                if limit is not None:
                    kind, seconds = limit
                    if kind == "primary":
                        self._send(
                            403,
                            {
                                "message": "API rate limit exceeded for user ID 58311.",
                                "documentation_url": "https://docs.github.com/rest/rate-limit",
                            },
                            {
                                "X-RateLimit-Limit": "5000",
                                "X-RateLimit-Remaining": "0",
                                "X-RateLimit-Used": "5000",
                                "X-RateLimit-Reset": str(int(time.time()) + seconds),
                                "X-RateLimit-Resource": "core",
                            },
                        )
                    else:
                        self._send(
                            429,
                            {
                                "message": "You have exceeded a secondary rate limit. Please wait a few minutes "
                                "before you try again.",
                                "documentation_url": "https://docs.github.com/rest",
                            },
                            {"Retry-After": str(seconds)},
                        )
                    return
                rows = fake._listing(route, query)
                if rows is None:
                    self._send(404, {"message": "Not Found"})
                    return
                size = min(fake.page_size, int(query.get("per_page", ["30"])[0]))
                page = int(query.get("page", ["1"])[0])
                last = max(1, -(-len(rows) // size))
                chunk = rows[(page - 1) * size : page * size]
                links = []
                host = fake.next_host or f"127.0.0.1:{fake.port}"
                base = f"http://{host}/api/v3/repositories/{REPO_ID}{route}"
                flat = {k: v[0] for k, v in query.items() if k != "page"}
                if page < last:
                    links.append(f'<{base}?{urlencode({**flat, "page": page + 1})}>; rel="next"')
                    links.append(f'<{base}?{urlencode({**flat, "page": last})}>; rel="last"')
                headers = {"X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": str(int(time.time()) + 3600)}
                if links:
                    headers["Link"] = ", ".join(links)
                self._send(200, chunk, headers)

        return Handler
