"""Reading the GitHub REST API page by page, within limits (no Django: the service gives the settings).

- Every request goes through `truenorth.core.outbound.get`: the host is resolved and checked (no
  private, loopback or link-local address unless allowed), the connection pinned to the checked
  address, each redirect checked the same way, `Authorization` never sent to another host.
- Pagination follows the `Link: <…>; rel="next"` header, and only to the configured API's own host and
  path (a next link elsewhere stops the fetch).
- Limits: at most `max_pages` requests in all (list pages, each merged pull request's commits, each
  deployment's statuses), `timeout` seconds per request, `max_seconds` for the whole fetch, responses
  of at most `max_bytes`.
- Rate limits: a 403 or 429 with `X-RateLimit-Remaining: 0` waits until `X-RateLimit-Reset`; one with
  `Retry-After` (a secondary limit) waits that long; a secondary limit without either waits a minute.
  When the wait is at most `max_wait` seconds (and the time budget allows it) the client sleeps and
  asks again; otherwise `FetchStopped` says when to try again.
- A 401 stops the fetch (the token is refused); a 403/404 on one listing is `EndpointUnavailable` (the
  token may not read deployments, say): the caller reports it and goes on with the next listing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from truenorth.core import outbound

PRIVATE_SETTING = "TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS"
API_VERSION = "2022-11-28"
MAX_RATE_LIMIT_WAITS = 3
SECONDARY_WAIT = 60.0
_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^",;]+)"?')


@dataclass(frozen=True)
class Limits:
    max_pages: int = 200
    timeout: float = 30.0
    max_seconds: float = 1800.0
    max_wait: float = 60.0
    max_bytes: int = 32 * 1024 * 1024
    allow_private: bool = False


class FetchStopped(Exception):
    """The fetch cannot go on; the message is for people. `location` says where (`pulls page 3`)."""

    def __init__(self, message: str, *, location: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.location = location


class EndpointUnavailable(Exception):
    """One listing cannot be read (403/404/410): reported, and the fetch goes on with the next one."""

    def __init__(self, message: str, *, location: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.location = location


@dataclass
class Page:
    items: list[Any]
    number: int
    last: int | None = None  # the last page's number, from the Link header, when GitHub gives it


def parse_links(header: str) -> dict[str, str]:
    """`<url>; rel="next", <url>; rel="last"` → {"next": url, "last": url}."""
    return {rel.strip(): url.strip() for url, rel in _LINK.findall(header or "")}


def _page_number(url: str) -> int | None:
    values = parse_qs(urlsplit(url).query).get("page")
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


def _clock_text(moment: float) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _message(body: bytes) -> str:
    """GitHub's own `message` from an error body (short), or ""."""
    try:
        data = json.loads(body.decode("utf-8", errors="replace"))
    except ValueError:
        return ""
    text = str(data.get("message") or "") if isinstance(data, dict) else ""
    return " ".join(text.split())[:200]


@dataclass
class GitHubClient:
    api_url: str
    token: str
    limits: Limits = field(default_factory=Limits)
    resolver: outbound.Resolver | None = None
    context: ssl.SSLContext | None = None
    on_page: Callable[[int, int], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    pages_fetched: int = 0
    waited: float = 0.0
    _started: float = 0.0

    def __post_init__(self) -> None:
        self.api_url = self.api_url.rstrip("/")
        parts = urlsplit(self.api_url)
        self._origin = (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)
        self._base_path = parts.path.rstrip("/")
        self._started = self.monotonic()

    # --- one request ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {self.token}",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "TrueNorth delivery fetch",
        }

    def _remaining(self) -> float:
        return self.limits.max_seconds - (self.monotonic() - self._started)

    def _rate_wait(self, answer: outbound.Response) -> float | None:
        """Seconds to wait when the answer is a rate limit, else None."""
        headers = answer.headers
        retry_after = headers.get("retry-after", "").strip()
        if retry_after.isdigit():
            return float(retry_after)
        if headers.get("x-ratelimit-remaining", "").strip() == "0":
            reset = headers.get("x-ratelimit-reset", "").strip()
            if reset.isdigit():
                return max(1.0, float(reset) - self.clock() + 0.5)
            return SECONDARY_WAIT
        if "rate limit" in _message(answer.body).lower():
            return SECONDARY_WAIT
        return None

    def get(self, url: str, location: str) -> outbound.Response:
        """One page (200), after waiting out short rate limits; FetchStopped or EndpointUnavailable."""
        for _ in range(MAX_RATE_LIMIT_WAITS + 1):
            if self.pages_fetched >= self.limits.max_pages:
                raise FetchStopped(
                    f"Stopped after {self.limits.max_pages} pages (TRUENORTH_GITHUB_MAX_PAGES); what was "
                    "fetched is stored. Fetch again to go on (pull requests already stored are not asked "
                    "for their commits again), or raise the limit.",
                    location=location,
                )
            remaining = self._remaining()
            if remaining <= 0:
                raise FetchStopped(
                    f"Stopped after {self.limits.max_seconds:g} s (TRUENORTH_GITHUB_FETCH_MAX_SECONDS); what "
                    "was fetched is stored. Fetch again to go on.",
                    location=location,
                )
            answer = outbound.get(
                url,
                self._headers(),
                timeout=max(1.0, min(self.limits.timeout, remaining)),
                allow_private=self.limits.allow_private,
                setting=PRIVATE_SETTING,
                max_bytes=self.limits.max_bytes,
                resolver=self.resolver,
                context=self.context,
            )
            if answer.code is None or answer.error:
                raise FetchStopped(f"GitHub could not be reached: {answer.error}", location=location)
            code = answer.code
            if code in (403, 429):
                wait = self._rate_wait(answer)
                if wait is not None:
                    if wait <= self.limits.max_wait and wait < self._remaining():
                        self.sleep(wait)
                        self.waited += wait
                        continue
                    when = _clock_text(self.clock() + wait)
                    span = f"{wait:.0f} s" if wait < 120 else f"{wait / 60:.0f} min"
                    raise FetchStopped(
                        f"GitHub's rate limit is used up until {when} (in {span}, longer than the "
                        f"{self.limits.max_wait:g} s TrueNorth waits); what was fetched is stored. "
                        f"Fetch again after {when}.",
                        location=location,
                    )
            detail = _message(answer.body)
            said = f" ({detail})" if detail else ""
            if code == 401:
                raise FetchStopped(
                    f"GitHub refused the token (401{said}): check that it is valid and not expired, and "
                    "connect again with a new one.",
                    location=location,
                )
            if code in (403, 404, 410):
                raise EndpointUnavailable(
                    f"GitHub answered {code}{said}: the repository does not exist or the token cannot "
                    "read this.",
                    location=location,
                )
            if code != 200:
                raise FetchStopped(f"GitHub answered {code}{said}; try again later.", location=location)
            self.pages_fetched += 1
            return answer
        raise FetchStopped(
            f"GitHub kept answering with its rate limit after {MAX_RATE_LIMIT_WAITS} waits; fetch again later.",
            location=location,
        )

    # --- a listing, page by page ------------------------------------------------------------------

    def url(self, path: str, params: dict[str, str] | None = None) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.api_url}{path}{query}"

    def _ours(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)
        return origin == self._origin and (parts.path + "/").startswith(self._base_path + "/")

    def pages(self, path: str, params: dict[str, str], name: str) -> Iterator[Page]:
        """Each page of a listing (a JSON list), following `rel="next"` links on the API's own host."""
        url: str | None = self.url(path, params)
        number = 1
        while url is not None:
            location = f"{name} page {number}"
            answer = self.get(url, location)
            try:
                items = json.loads(answer.body.decode("utf-8"))
            except ValueError:
                raise FetchStopped("GitHub's answer is not JSON.", location=location) from None
            if not isinstance(items, list):
                raise FetchStopped("GitHub's answer is not a list.", location=location)
            links = parse_links(answer.headers.get("link", ""))
            last = _page_number(links["last"]) if "last" in links else None
            if self.on_page is not None:
                ahead = max(0, (last or number) - number)
                self.on_page(self.pages_fetched, self.pages_fetched + ahead)
            yield Page(items, number, last)
            url = links.get("next")
            if url is not None and not self._ours(url):
                raise FetchStopped(
                    f"GitHub's next page is on another address ({url[:200]}); not followed.",
                    location=location,
                )
            number += 1
