"""Settings: the web server (issue 13): `truenorth serve` (gunicorn), static files, HTTPS behind a proxy.

Read from the environment with truenorth.env helpers; `truenorth serve` options override each value
(truenorth/ops/serving.py builds gunicorn's configuration from them). docs/operations.md, "Running in
production", says how they fit together.
"""

from __future__ import annotations

import os

from truenorth.env import ConfigError, env_int, env_list, env_str

# Hard ceilings, for the settings and the `serve` options alike: past them a typo, not a choice.
MAX_WEB_WORKERS = 64
MAX_WEB_THREADS = 64
DEFAULT_WORKERS_CAP = 8
DEFAULT_THREADS = 8


def _default_workers() -> int:
    """One worker process per core (at least 2, so one can restart while the other serves; at most
    DEFAULT_WORKERS_CAP: each holds a whole Django), each with DEFAULT_THREADS threads.

    Measured (benchmarks/load.py: 100 clients keeping their connections, 2 cores): 2 workers x 8
    threads served as many requests per second as 5 x 4 (gunicorn's 2 x cores + 1) with a p99 of
    0.24-0.49 s instead of 0.8-1.8 s: each worker keeps the connections it accepted, and with more
    processes than cores some of them wait for the CPU while holding their clients' requests."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(max(cores, 2), DEFAULT_WORKERS_CAP)


def _at_most(name: str, value: int, ceiling: int) -> int:
    if value > ceiling:
        raise ConfigError(f"{name}: must be at most {ceiling}, got {value}")
    return value


# Worker processes; threads per worker (more than 1, the default, uses gunicorn's threaded worker, which
# keeps connections alive; 1 is the plain synchronous worker, which kills a request slower than the
# timeout with its worker).
TRUENORTH_WEB_WORKERS = _at_most(
    "TRUENORTH_WEB_WORKERS", env_int("TRUENORTH_WEB_WORKERS", _default_workers(), minimum=1), MAX_WEB_WORKERS
)
TRUENORTH_WEB_THREADS = _at_most(
    "TRUENORTH_WEB_THREADS", env_int("TRUENORTH_WEB_THREADS", DEFAULT_THREADS, minimum=1), MAX_WEB_THREADS
)
# Seconds: a worker silent this long is killed and replaced (with one thread: a request this slow);
# on restart or stop, workers get this long to finish their requests; an idle kept-alive connection
# stays open this long (threaded workers only).
TRUENORTH_WEB_TIMEOUT = env_int("TRUENORTH_WEB_TIMEOUT", 60, minimum=1)
TRUENORTH_WEB_GRACEFUL_TIMEOUT = env_int("TRUENORTH_WEB_GRACEFUL_TIMEOUT", 30, minimum=1)
TRUENORTH_WEB_KEEPALIVE = env_int("TRUENORTH_WEB_KEEPALIVE", 5, minimum=0)
# A kept-alive connection is closed (`Connection: close` on its answer) after this many requests (0: never),
# so that clients reconnect now and then and their connections spread over the workers again: each
# worker keeps the connections it accepted, so after a worker is replaced the others would hold every
# client until the client itself reconnected, and the new worker would sit idle.
TRUENORTH_WEB_KEEPALIVE_REQUESTS = env_int("TRUENORTH_WEB_KEEPALIVE_REQUESTS", 100, minimum=0)
# A worker is replaced after this many requests (0: never), plus a random 0..jitter so they do not all
# restart at once; bounds the memory a slow leak can take.
TRUENORTH_WEB_MAX_REQUESTS = env_int("TRUENORTH_WEB_MAX_REQUESTS", 50000, minimum=0)
TRUENORTH_WEB_MAX_REQUESTS_JITTER = env_int("TRUENORTH_WEB_MAX_REQUESTS_JITTER", 5000, minimum=0)
# Where to listen: HOST:PORT (`[::1]:8000` for IPv6) or unix:/path/to/socket.
TRUENORTH_WEB_BIND = env_str("TRUENORTH_WEB_BIND", "127.0.0.1:8000").strip()

# Addresses whose X-Forwarded-Proto is believed (with TRUST_X_FORWARDED_PROTO): the trusted reverse
# proxies (TRUENORTH_TRUSTED_PROXIES, validated in settings.py), else the loopback addresses (a proxy on
# the same machine). From any other address the header is removed before Django sees it
# (truenorth/wsgi.py), and gunicorn gets the same list as its forwarded_allow_ips.
TRUENORTH_FORWARDED_ALLOW_IPS = env_list("TRUENORTH_TRUSTED_PROXIES", []) or ["127.0.0.1", "::1"]

# With SECURE_SSL_REDIRECT, health checks of load balancers and orchestrators still get their answer
# over plain HTTP instead of a redirect.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# Static files: hashed names (cached for a year, immutable), gzip and Brotli copies made by
# `collectstatic` (which `truenorth serve` runs), served by WhiteNoise. Before any `collectstatic` (the
# test suite, a development checkout) the storage falls back to the plain names (truenorth/ops/serving.py).
# Only the hashed copies stay in STATIC_ROOT (and only they are compressed): pages name nothing else.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "truenorth.ops.serving.StaticFilesStorage"},
}
