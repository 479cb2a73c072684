"""The production web server: gunicorn's configuration for `truenorth serve`, and the static files' storage.

`gunicorn_options` turns the settings (truenorth/conf/server.py) and the command line's overrides into
gunicorn's settings, refusing nonsense with one clear message (`ServeOptionError`, naming the option or
setting). The gunicorn hooks themselves live in truenorth/wsgi.py.
"""

from __future__ import annotations

import gzip
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from whitenoise.compress import Compressor  # type: ignore[import-untyped]
from whitenoise.storage import CompressedManifestStaticFilesStorage  # type: ignore[import-untyped]


class _Compressor(Compressor):
    """WhiteNoise's compressor with Brotli at quality 9 instead of 11: on the vendored files (9 MB, the
    charting library most of it) 1.6 s of CPU instead of 24 s, for copies 9 % larger (still 8 % smaller
    than gzip's). Every fresh `collectstatic` (a new data directory, an upgrade) pays it at start."""

    @staticmethod
    def compress_brotli(data: bytes) -> bytes:
        import brotli  # type: ignore[import-untyped]

        return bytes(brotli.compress(data, quality=9))


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """Hashed names (WhiteNoise serves them with a year's `Cache-Control: immutable`) and gzip/Brotli
    copies, written by `collectstatic`. A name the manifest does not hold (no `collectstatic` yet: the
    test suite, a development checkout; or a file added since) is served under its plain name, which
    WhiteNoise caches for a minute only, instead of failing the page."""

    manifest_strict = True

    def stored_name(self, name: str) -> str:
        try:
            return str(super().stored_name(name))
        except ValueError:
            return name

    def create_compressor(self, **kwargs: Any) -> Compressor:
        return _Compressor(**kwargs)

    def compress_files(self, paths: Any) -> Any:
        """WhiteNoise's gzip and Brotli copies, made once per hashed name: a hashed name is its content, so
        a copy already there (the previous start's `collectstatic`) is still right. Restarts then cost
        no compression (Brotli's best quality takes seconds of CPU for the charting library alone)."""
        todo = [path for path in paths if not self._compressed_copies_intact(path)]
        return super().compress_files(todo)

    def _compressed_copies_intact(self, path: str) -> bool:
        """Whether `path.gz` (written last) and `path.br` (if any) decompress to `path` (a start killed
        while writing them leaves a truncated copy, which would otherwise be served for a year)."""
        if not self.exists(f"{path}.gz"):
            return False
        try:
            original = Path(self.path(path)).read_bytes()
            if gzip.decompress(Path(self.path(f"{path}.gz")).read_bytes()) != original:
                return False
            if self.exists(f"{path}.br"):
                import brotli

                return bool(brotli.decompress(Path(self.path(f"{path}.br")).read_bytes()) == original)
        except Exception:  # unreadable or corrupt (OSError, EOFError, brotli.error...): made again
            return False
        return True

    def url_converter(self, name: str, hashed_files: dict[str, str], template: str | None = None) -> Any:
        """Django's rewriting of the references inside CSS and JavaScript to hashed names, except that a
        source map the vendored file names but does not ship (`//# sourceMappingURL=x.min.js.map`) is
        left as written, instead of failing `collectstatic`; any other missing file still fails it."""
        convert = super().url_converter(name, hashed_files, template)

        def tolerant(matchobj: re.Match[str]) -> str:
            try:
                return str(convert(matchobj))
            except ValueError:
                if matchobj.groupdict().get("url", "").split("#")[0].endswith(".map"):
                    return matchobj.group("matched")
                raise

        return tolerant


class ServeOptionError(ValueError):
    """An option or setting of `truenorth serve` is out of range or inconsistent."""


@dataclass(frozen=True)
class ServeOverrides:
    """What the command line gave (None: use the setting)."""

    bind: str | None = None
    host: str | None = None
    port: int | None = None
    workers: int | None = None
    threads: int | None = None
    timeout: int | None = None
    graceful_timeout: int | None = None
    keep_alive: int | None = None
    keep_alive_requests: int | None = None
    max_requests: int | None = None
    max_requests_jitter: int | None = None


def _split_bind(value: str, source: str) -> tuple[str, int | None]:
    """("unix:/path", None) or (host, port) from HOST:PORT / [v6]:PORT; ServeOptionError otherwise."""
    if value.startswith("unix:"):
        if len(value) <= len("unix:"):
            raise ServeOptionError(
                f"{source}: 'unix:' needs a socket path, e.g. unix:/run/truenorth/web.sock"
            )
        return value, None
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ServeOptionError(f"{source}: '{value}' is not HOST:PORT (e.g. 127.0.0.1:8000) or unix:PATH")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ServeOptionError(f"{source}: port {port} is not between 1 and 65535")
    return host, port


def _bind_address(host: str, port: int) -> str:
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False  # a host name
    return f"[{host}]:{port}" if is_v6 else f"{host}:{port}"


def resolve_bind(overrides: ServeOverrides) -> str:
    """--bind, else TRUENORTH_WEB_BIND with --host/--port replacing its parts."""
    if overrides.port is not None and not 1 <= overrides.port <= 65535:
        # Checked before anything else: port 0 would otherwise read as "not given" below and serve on 8000.
        raise ServeOptionError(f"--port: {overrides.port} is not between 1 and 65535")
    if overrides.bind is not None:
        if overrides.host is not None or overrides.port is not None:
            raise ServeOptionError("--bind: give either --bind or --host/--port, not both")
        host, port = _split_bind(overrides.bind.strip(), "--bind")
        return host if port is None else _bind_address(host, port)
    host, port = _split_bind(settings.TRUENORTH_WEB_BIND, "TRUENORTH_WEB_BIND")
    if port is None:  # a Unix socket in the settings
        if overrides.host is None and overrides.port is None:
            return host
        host, port = "127.0.0.1", 8000
    return _bind_address(overrides.host or host, overrides.port if overrides.port is not None else port)


def _pick(option: str, given: int | None, setting: str, low: int, high: int | None = None) -> int:
    value = given if given is not None else int(getattr(settings, setting))
    source = option if given is not None else setting
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ServeOptionError(f"{source}: must be {bounds}, got {value}")
    return value


def requests_per_connection(overrides: ServeOverrides) -> int:
    """Requests a kept-alive connection serves before it is closed (0: no limit); truenorth/wsgi.py's
    `close_connections_after` applies it."""
    return _pick(
        "--keep-alive-requests", overrides.keep_alive_requests, "TRUENORTH_WEB_KEEPALIVE_REQUESTS", 0
    )


def gunicorn_options(overrides: ServeOverrides) -> dict[str, Any]:
    """gunicorn's settings for `truenorth serve` (values only; truenorth/wsgi.py adds the hooks)."""
    workers = _pick("--workers", overrides.workers, "TRUENORTH_WEB_WORKERS", 1, settings.MAX_WEB_WORKERS)
    threads = _pick("--threads", overrides.threads, "TRUENORTH_WEB_THREADS", 1, settings.MAX_WEB_THREADS)
    timeout = _pick("--timeout", overrides.timeout, "TRUENORTH_WEB_TIMEOUT", 1)
    graceful = _pick("--graceful-timeout", overrides.graceful_timeout, "TRUENORTH_WEB_GRACEFUL_TIMEOUT", 1)
    keepalive = _pick("--keep-alive", overrides.keep_alive, "TRUENORTH_WEB_KEEPALIVE", 0)
    max_requests = _pick("--max-requests", overrides.max_requests, "TRUENORTH_WEB_MAX_REQUESTS", 0)
    jitter = _pick(
        "--max-requests-jitter", overrides.max_requests_jitter, "TRUENORTH_WEB_MAX_REQUESTS_JITTER", 0
    )
    if max_requests and jitter >= max_requests:
        raise ServeOptionError(
            f"--max-requests-jitter: must be below --max-requests ({max_requests}), got {jitter}"
        )
    trust_proto = getattr(settings, "SECURE_PROXY_SSL_HEADER", None) is not None
    return {
        "bind": [resolve_bind(overrides)],
        "workers": workers,
        "threads": threads,
        # One thread: the synchronous worker (a request slower than the timeout is killed with it).
        # More: the threaded worker, which also keeps idle connections open for `keepalive` seconds.
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,
        "graceful_timeout": graceful,
        "keepalive": keepalive,
        "max_requests": max_requests,
        "max_requests_jitter": jitter if max_requests else 0,
        # X-Forwarded-Proto is believed only from the trusted proxies, and only when TRUST_X_FORWARDED_PROTO
        # is on; the other secure-scheme headers gunicorn knows (X-Forwarded-Ssl...) never.
        "forwarded_allow_ips": ",".join(settings.TRUENORTH_FORWARDED_ALLOW_IPS),
        "secure_scheme_headers": {"X-FORWARDED-PROTO": "https"} if trust_proto else {},
        "accesslog": "-",
        # The access log in the format of the application's (TRUENORTH_LOG_FORMAT); the prometheus hooks are
        # in truenorth/wsgi.py.
        "logger_class": (
            "truenorth.core.jsonlog.GunicornJsonLogger"
            if settings.TRUENORTH_LOG_FORMAT == "json"
            else "gunicorn.glogging.Logger"
        ),
    }
