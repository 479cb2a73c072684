"""Counters the lower floors bump for the Prometheus metrics (exported by truenorth/ops/metrics.py), and the
multiprocess set-up that lets one scrape see every process.

`truenorth serve` runs several gunicorn workers and `truenorth worker` runs the jobs in another process, so
the metrics use prometheus_client's multiprocess mode: each process writes its values to files under
`$TRUENORTH_DATA_DIR/metrics/<kind>/` and a scrape merges the files of every kind (`web`, `worker`).
`prepare_multiprocess(kind)` is called by those commands in the parent process, before any worker starts;
without it (tests, runserver, one-off commands) the values live in the process's default registry.

Metric objects are created on first use (once per multiprocess directory), never at import, so that a
process that imported this module before `prepare_multiprocess` still writes to the files.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Counter

PROCESS_KINDS = ("web", "worker")
SIGN_IN_METHODS = ("password", "totp", "recovery", "oidc")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_directory() -> Path:
    """Where the processes' metric files live: `$TRUENORTH_DATA_DIR/metrics/` (private to the account)."""
    from django.conf import settings

    return Path(settings.DATA_DIR) / "metrics"


def prepare_multiprocess(kind: str) -> Path:
    """Switch this process (and the ones it forks) to multiprocess metrics under `metrics/<kind>/`,
    emptied first: `serve` calls it with "web" before gunicorn forks, `worker` with "worker". Returns the
    directory. Counters restart at zero, which Prometheus reads as a restart."""
    if kind not in PROCESS_KINDS:
        raise ValueError(f"unknown process kind {kind!r}")
    root = metrics_directory()
    directory = root / kind
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    root.chmod(0o700)  # the files name routes and counts: nobody else's business
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(mode=0o700)
    os.environ[MULTIPROC_ENV] = str(directory)
    from prometheus_client import values

    # prometheus_client picks its value class when imported; it may have been imported before this call.
    values.ValueClass = values.get_value_class()
    return directory


def multiprocess() -> bool:
    """Whether this process writes its metrics to files (`prepare_multiprocess` ran here or in a parent)."""
    return bool(os.environ.get(MULTIPROC_ENV))


# Metric objects are made once per process: two made at once by two threads of a threaded worker would,
# in multiprocess mode, each keep their own copy of the same file entry and overwrite each other's counts.
CREATION_LOCK = threading.RLock()


def _counters() -> dict[str, Counter]:
    with CREATION_LOCK:
        return _counters_for(os.environ.get(MULTIPROC_ENV))


@functools.cache
def _counters_for(multiprocess_dir: str | None) -> dict[str, Counter]:
    # Created on first use (per multiprocess directory), in no registry: truenorth.ops.metrics collects
    # them (from this process, or from every process's files).
    from prometheus_client import Counter

    made = {
        "sign_in": Counter(
            "truenorth_sign_in_failures",
            "Failed sign-ins (a wrong password or code, or a refused attempt), by method.",
            ["method"],
            registry=None,
        ),
        "webhook": Counter(
            "truenorth_webhook_delivery_failures", "Webhook delivery attempts that failed.", registry=None
        ),
        "refresh": Counter(
            "truenorth_refresh_failures", "Measure refreshes (SQL or computed) that failed.", registry=None
        ),
    }
    for method in (*SIGN_IN_METHODS, "other"):  # every series exists from the start, at 0, for alerts
        made["sign_in"].labels(method)
    return made


def counters() -> list[Counter]:
    """This process's counters (what a scrape shows when the process is not in multiprocess mode)."""
    return list(_counters().values())


def sign_in_failed(method: str) -> None:
    """A failed sign-in: `method` is "password", "totp", "recovery" or "oidc" (anything else counts as
    "other", so the label stays bounded)."""
    _counters()["sign_in"].labels(method if method in SIGN_IN_METHODS else "other").inc()


def webhook_failed() -> None:
    """A webhook delivery attempt failed."""
    _counters()["webhook"].inc()


def refresh_failed() -> None:
    """A measure refresh failed."""
    _counters()["refresh"].inc()
