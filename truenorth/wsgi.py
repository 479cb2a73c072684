"""The WSGI application, and the gunicorn hooks `truenorth serve` installs.

A database connection must never cross a fork: two processes writing to one PostgreSQL socket get each
other's answers (a request answered as another user) or "lost synchronization with server". The master
opens none (`serve` migrates in a child process) and closes any it has before each fork; a worker
forgets, without closing, any connection it inherited anyway, since closing one would send PostgreSQL's
terminate message on the socket its parent and siblings share.

Behind a reverse proxy (TRUST_X_FORWARDED_PROTO), X-Forwarded-Proto is believed only from the trusted
proxies (TRUENORTH_FORWARDED_ALLOW_IPS, truenorth/conf/server.py): from any other address the header is
removed before Django reads it, whatever WSGI server runs the application.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "truenorth.settings")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def from_trusted_proxy(remote_addr: str, networks: list[Network]) -> bool:
    """Whether a peer may set forwarded headers: one of `networks`; a Unix socket (no IP address) is
    local, so trusted, as gunicorn treats it."""
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return True
    return any(address in network for network in networks)


def forwarded_proto_only_from_proxies(app: WSGIApp) -> WSGIApp:
    """Wrap `app` so the header named by SECURE_PROXY_SSL_HEADER reaches Django only from a trusted proxy
    (without SECURE_PROXY_SSL_HEADER Django ignores it anyway: `app` is returned as it is)."""
    from django.conf import settings

    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy_header:
        return app
    header = proxy_header[0]
    networks = [ipaddress.ip_network(item, strict=False) for item in settings.TRUENORTH_FORWARDED_ALLOW_IPS]

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if header in environ and not from_trusted_proxy(environ.get("REMOTE_ADDR", ""), networks):
            del environ[header]
        return app(environ, start_response)

    return guarded


application = forwarded_proto_only_from_proxies(get_wsgi_application())

# Inherited connection objects a worker dropped: kept referenced so they are never closed (and so never
# send anything on the socket they share with the parent).
_ABANDONED: list[Any] = []


def close_connections_before_fork(server: Any = None, worker: Any = None) -> None:
    """gunicorn `pre_fork` (in the master): close every database connection before forking a worker."""
    from django.db import connections

    connections.close_all()


def forget_inherited_connections(server: Any = None, worker: Any = None) -> None:
    """gunicorn `post_fork` (in the new worker): drop any connection inherited from the master, unused;
    the worker opens its own on its first query."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None:
            _ABANDONED.append(conn.connection)
            conn.connection = None


# --- OBSERVABILITY hooks (issue 13) -----------------------------------------------------------------
# Prometheus in multiprocess mode: every worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR;
# the master empties the directory once at start (stale files from a previous run would be summed in)
# and marks each exited worker dead (its live gauges drop out). Nothing happens without the variable.


def on_starting(server: Any = None) -> None:
    """gunicorn `on_starting` (the master, once, before any worker): empty the metrics directory."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any = None, worker: Any = None) -> None:
    """gunicorn `child_exit` (the master, after a worker exited): drop its live gauges."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR") or worker is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def close_connections_after(limit: int) -> Callable[[Any, Any], None]:
    """A gunicorn `pre_request` hook: the `limit`-th request on a connection (0: none) is answered with
    `Connection: close` (TRUENORTH_WEB_KEEPALIVE_REQUESTS), so clients reconnect to whichever worker
    accepts first, the least busy."""

    def pre_request(worker: Any, req: Any) -> None:
        if limit and getattr(req, "req_number", 1) >= limit:
            req.must_close = True

    return pre_request


# Every hook `truenorth serve` installs, by gunicorn's name for it.
GUNICORN_HOOKS: dict[str, Callable[..., None]] = {
    "on_starting": on_starting,
    "pre_fork": close_connections_before_fork,
    "post_fork": forget_inherited_connections,
    "child_exit": child_exit,
}
