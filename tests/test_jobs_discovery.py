"""The worker finds every job runner: a runner registered in a module that no app's `jobs` module
imports would be known to the web process (which imported it on the way) but not to the worker,
whose jobs would then fail with "no runner"."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import truenorth
from truenorth.jobs import services as jobs

FRESH_WORKER = """
import json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "truenorth.settings")
import django
django.setup()
from truenorth.jobs import services
services.discover()
print(json.dumps(sorted(services._RUNNERS)))
"""


def _every_module() -> None:
    importlib.import_module("truenorth.urls")  # registers the URL converters the apps' URLconfs use
    for info in pkgutil.walk_packages(truenorth.__path__, "truenorth."):
        if ".tests" in info.name or ".migrations" in info.name or info.name.endswith(".wsgi"):
            continue
        importlib.import_module(info.name)


def test_a_fresh_worker_knows_every_registered_job_kind() -> None:
    _every_module()
    # Runners that tests register for themselves (in this process, under xdist) are not the worker's.
    registered = {kind for kind, fn in jobs._RUNNERS.items() if ".tests." not in fn.__module__}
    assert "delivery.metrics" in registered and "delivery.import" in registered
    out = subprocess.run(
        [sys.executable, "-c", FRESH_WORKER], capture_output=True, text=True, check=True, timeout=120
    )
    discovered = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert registered <= discovered, f"the worker would not know {sorted(registered - discovered)}"
