"""Outbound HTTP that a hostile organisation admin must not turn against internal addresses (SSRF): the
webhook sender (`post`) and the GitHub fetch (`get`) both go through here. No Django: plain `http.client`.

SSRF rules (docs/engagement.md, "Webhooks"; docs/delivery.md, "GitHub API"):
- A URL is http or https, has a host, no user name or password, and is at most MAX_URL_LENGTH long.
- Before every request (the first and each redirect) the host is resolved and *every* address must be a
  public one: loopback, private, link-local (169.254.0.0/16, the cloud metadata address), unspecified,
  multicast, reserved, shared (CGNAT 100.64.0.0/10), documentation and benchmarking ranges are refused,
  also when an IPv6 address carries one of them (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible, 6to4,
  Teredo, NAT64 64:ff9b::/96), unless `allow_private` (TRUENORTH_WEBHOOKS_ALLOW_PRIVATE_NETWORKS for
  webhooks, TRUENORTH_GITHUB_ALLOW_PRIVATE_NETWORKS for GitHub; the caller names its setting).
- The connection goes to the address that was checked (pinned: a second DNS answer cannot move it to
  another host), while TLS still checks the certificate against the host name (SNI included).
- Redirects are followed here, at most MAX_REDIRECTS, each target checked the same way; `get` drops
  the credentials (`Authorization`) when a redirect leaves the first host.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

MAX_URL_LENGTH = 2000
MAX_REDIRECTS = 3
READ_LIMIT = 64 * 1024
EXCERPT_LENGTH = 1000
REDIRECT_CODES = (301, 302, 303, 307, 308)

Resolver = Callable[[str, int], list[str]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPAT = ipaddress.ip_network("::/96")


class UrlRefused(Exception):
    """A URL or address that may not be used; the message says why, for people."""


class UnknownHost(UrlRefused):
    """A name that does not resolve now (may be temporary: retried)."""


def check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of a well-formed webhook URL, or UrlRefused."""
    if not url or not url.strip():
        raise UrlRefused("Give the receiver's URL.")
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise UrlRefused("The URL must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"The URL is not valid: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("The URL must start with https:// or http://.")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlRefused("The URL must not contain a user name or password; use the signing secret.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlRefused("The URL has no host name.")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return scheme, host, port or (443 if scheme == "https" else 80), path


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, IPv4-compatible, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _COMPAT or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _kind(address: Address) -> str | None:
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


def address_problem(text: str) -> str | None:
    """Why an address may not receive webhooks ("a private address"), or None for a public one."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv6Address) and not (address.is_loopback or address.is_unspecified):
        inner = _embedded_ipv4(address)
        if inner is not None:
            problem = _kind(inner)
            if problem is not None:
                return f"{problem} inside an IPv6 address ({inner})"
    return _kind(address)


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


WEBHOOKS_SETTING = "TRUENORTH_WEBHOOKS_ALLOW_PRIVATE_NETWORKS"


def pick_address(
    host: str,
    port: int,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    setting: str = WEBHOOKS_SETTING,
) -> str:
    """The checked address to connect to for `host`: every address it resolves to must be public
    (unless allow_private); UrlRefused names the first one that is not."""
    try:
        literal: str | None = str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = (resolver or system_resolver)(host, port)
        except (OSError, UnicodeError, ValueError):
            addresses = []
        if not addresses:
            raise UnknownHost(f"The host name {host} does not resolve (DNS).")
    if not allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                subject = f"The address {address}" if literal else f"{host} resolves to {address}"
                raise UrlRefused(f"{subject}, {problem}: refused ({setting} is off).")
    return addresses[0]


@dataclass
class Response:
    code: int | None = None
    excerpt: str = ""
    error: str = ""
    duration_ms: int = 0
    url: str = ""
    # False when trying again cannot help (a refused address or URL).
    retry: bool = True
    # The final answer's headers (names in lower case) and body (`get` only; `post` keeps the excerpt).
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300 and not self.error


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # SNI and certificate checks against the host name, not the pinned address.
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def _read_capped(response: http.client.HTTPResponse, deadline: float, limit: int = READ_LIMIT) -> bytes:
    """At most `limit` bytes of the body, read until the deadline."""
    chunks: list[bytes] = []
    size = 0
    while size < limit and time.monotonic() < deadline:
        chunk = response.read(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    allow_private: bool,
    resolver: Resolver | None = None,
    context: ssl.SSLContext | None = None,
) -> Response:
    """POST `body` to `url` by the SSRF rules above; never raises for network trouble (see Response)."""
    return _exchange(
        "POST",
        url,
        body,
        headers,
        timeout=timeout,
        allow_private=allow_private,
        resolver=resolver,
        context=context,
        read_limit=READ_LIMIT,
        setting=WEBHOOKS_SETTING,
        keep_body=False,
        credentials=(),
    )


def get(
    url: str,
    headers: dict[str, str],
    *,
    timeout: float,
    allow_private: bool,
    setting: str,
    max_bytes: int,
    resolver: Resolver | None = None,
    context: ssl.SSLContext | None = None,
) -> Response:
    """GET `url` by the SSRF rules above (each redirect checked and pinned the same way; `Authorization`
    is not sent to another host). The answer's headers and body (at most `max_bytes`: a longer body is an
    error) are in the Response; never raises for network trouble. `setting` names the switch that allows
    private addresses, for the refusal's message."""
    return _exchange(
        "GET",
        url,
        None,
        headers,
        timeout=timeout,
        allow_private=allow_private,
        resolver=resolver,
        context=context,
        read_limit=max_bytes,
        setting=setting,
        keep_body=True,
        credentials=("authorization",),
    )


def _exchange(
    method: str,
    url: str,
    payload: bytes | None,
    headers: dict[str, str],
    *,
    timeout: float,
    allow_private: bool,
    resolver: Resolver | None,
    context: ssl.SSLContext | None,
    read_limit: int,
    setting: str,
    keep_body: bool,
    credentials: tuple[str, ...],
) -> Response:
    started = time.monotonic()
    deadline = started + timeout
    current = url
    first_host: str | None = None
    result = Response(url=url)
    for hop in range(MAX_REDIRECTS + 1):
        result.url = current
        try:
            scheme, host, port, path = check_url(current)
            address = pick_address(
                host, port, allow_private=allow_private, resolver=resolver, setting=setting
            )
        except UnknownHost as exc:
            result.error = str(exc)
            break
        except UrlRefused as exc:
            result.error = str(exc) if hop == 0 else f"Redirected to {current[:200]}: {exc}"
            result.retry = False
            break
        if first_host is None:
            first_host = f"{scheme}://{host.lower()}:{port}"
        remaining = max(0.5, deadline - time.monotonic())
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = _PinnedHTTPS(host, address, port, remaining, context or ssl.create_default_context())
        else:
            connection = _PinnedHTTP(host, address, port, remaining)
        try:
            sent = (
                dict(headers)
                if payload is not None
                else {k: v for k, v in headers.items() if k.lower() != "content-type"}
            )
            if credentials and f"{scheme}://{host.lower()}:{port}" != first_host:
                sent = {k: v for k, v in sent.items() if k.lower() not in credentials}
            connection.request(method, path, body=payload, headers=sent)
            response = connection.getresponse()
            data = _read_capped(response, deadline, read_limit + 1 if keep_body else read_limit)
            result.code = response.status
            result.headers = {k.lower(): v for k, v in response.getheaders()}
            location = response.getheader("Location")
            if keep_body and len(data) > read_limit:
                result.error = f"The answer is larger than {read_limit:,} bytes."
                break
            if keep_body and not response.isclosed():  # the deadline came before the end
                result.error = f"No complete answer within {timeout:g} s."
                break
        except ssl.SSLError as exc:
            result.error = f"TLS failed: {exc.reason or exc}"[:500]
            break
        except TimeoutError:
            result.error = f"No answer within {timeout:g} s."
            break
        except (OSError, http.client.HTTPException) as exc:
            result.error = f"Connection failed: {exc or exc.__class__.__name__}"[:500]
            break
        finally:
            connection.close()
        if result.code in REDIRECT_CODES and location:
            if hop == MAX_REDIRECTS:
                result.error = f"More than {MAX_REDIRECTS} redirects."
                result.excerpt = _excerpt(data)
                break
            current = urljoin(current, location)
            if result.code not in (307, 308):
                method, payload = "GET", None
            continue
        result.excerpt = _excerpt(data)
        if keep_body:
            result.body = data
        break
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def check_redirect(location: str, base: str, *, allow_private: bool, resolver: Resolver | None = None) -> str:
    """The absolute URL a redirect leads to, checked like the first one (UrlRefused otherwise)."""
    target = urljoin(base, location)
    _, host, port, _ = check_url(target)
    pick_address(host, port, allow_private=allow_private, resolver=resolver)
    return target
