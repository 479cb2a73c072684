"""Personas shared by every test: owner, admin, member, stakeholder of organisation A, and an outsider
who owns organisation B and belongs to nothing in A."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client

from truenorth.accounts.models import User
from truenorth.accounts.services import create_token
from truenorth.orgs.models import Membership, Organisation, Role
from truenorth.orgs.services import create_organisation

PASSWORD = "correct-horse-battery-staple"


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Still Argon2 (tests check the algorithm), with the cheapest parameters so fixtures are fast."""

    time_cost = 1
    memory_cost = 8
    parallelism = 1


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["conftest.FastArgon2PasswordHasher"]


@pytest.fixture(autouse=True)
def _jobs_run_inline() -> Iterator[None]:
    """Background jobs run at once in tests (no worker, no queue file, no Redis)."""
    from huey.contrib.djhuey import HUEY

    before = HUEY.immediate
    HUEY.immediate = True
    yield
    HUEY.immediate = before


@pytest.fixture(autouse=True)
def _local_cache_and_no_api_rate_limits(settings) -> Iterator[None]:
    """Tests keep the cache in their process (truenorth/conf/limits.py's shared cache is the database or
    Redis), emptied before each test, and the API rate limits off, so tests making many requests and the
    pinned query counts do not depend on them; truenorth/ops/tests switch both back on."""
    from django.core.cache import cache

    from truenorth.core import counters

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    settings.TRUENORTH_API_RATE_PER_TOKEN = None
    settings.TRUENORTH_API_RATE_PER_ADDRESS = None
    settings.TRUENORTH_API_RATE_AUTH_FAILURES = None
    cache.clear()
    counters.clear_memory()
    yield
    counters.clear_memory()


@pytest.fixture(scope="session", autouse=True)
def _flush_may_empty_append_only_tables() -> Iterator[None]:
    """Transactional tests end with a flush; only it may empty the append-only (trigger-protected) tables."""
    from truenorth.core.append_only import flush_may_purge

    with flush_may_purge():
        yield


@pytest.fixture(scope="session")
def _duckdb_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("duckdb"))


@pytest.fixture(autouse=True)
def _duckdb_files_in_a_temporary_directory(settings, _duckdb_dir: str) -> None:
    """DuckDB data sources (and the demo's event file) live in a temporary directory, never the real one."""
    settings.TRUENORTH_DUCKDB_DIRS = [Path(_duckdb_dir)]


@dataclass
class Persona:
    user: User
    membership: Membership | None
    client: Client
    token: str  # read-write API token
    read_token: str

    def api(self) -> Client:
        """A client whose requests carry this persona's read-write API token."""
        return Client(HTTP_AUTHORIZATION=f"Bearer {self.token}")

    def api_read(self) -> Client:
        return Client(HTTP_AUTHORIZATION=f"Bearer {self.read_token}")


def _persona(email: str, name: str, org: Organisation | None, role: str | None) -> Persona:
    user = User.objects.create_user(email=email, password=PASSWORD, name=name)
    membership = None
    if org is not None and role is not None:
        membership = Membership.objects.create(organisation=org, user=user, role=role)
    client = Client()
    client.force_login(user)
    _, raw = create_token(user, "tests", "read-write")
    _, raw_read = create_token(user, "tests-read", "read")
    return Persona(user, membership, client, raw, raw_read)


@pytest.fixture
def org_a(db) -> Organisation:
    founder = User.objects.create_user(email="founder@a.example", password=PASSWORD, name="Founder A")
    return create_organisation(founder, "Alpha Org", "alpha")


@pytest.fixture
def owner(org_a) -> Persona:
    return _persona("owner@a.example", "Owner A", org_a, Role.OWNER)


@pytest.fixture
def admin(org_a) -> Persona:
    return _persona("admin@a.example", "Admin A", org_a, Role.ADMIN)


@pytest.fixture
def member(org_a) -> Persona:
    return _persona("member@a.example", "Member A", org_a, Role.MEMBER)


@pytest.fixture
def stakeholder(org_a) -> Persona:
    return _persona("stakeholder@a.example", "Stakeholder A", org_a, Role.STAKEHOLDER)


@pytest.fixture
def org_b(db) -> Organisation:
    founder = User.objects.create_user(email="founder@b.example", password=PASSWORD, name="Founder B")
    return create_organisation(founder, "Bravo Secret Org", "bravo-secret")


@pytest.fixture
def outsider(org_b) -> Persona:
    """Owns organisation B; must never see anything of organisation A."""
    return _persona("outsider@b.example", "Outsider B", org_b, Role.OWNER)


def _engine_missing(marker: str) -> str | None:
    """Why a `spark`/`clickhouse` test cannot run here (None when it can)."""
    import importlib.util
    import shutil

    if marker == "spark":
        if importlib.util.find_spec("pyspark") is None:
            return "pyspark is not installed (pip install -e '.[spark]')"
        if shutil.which("java") is None:
            return "Spark's local mode needs Java 17 (apt-get install openjdk-17-jre-headless)"
    if marker == "clickhouse" and importlib.util.find_spec("chdb") is None:
        return "chdb is not installed (pip install -e '.[clickhouse]')"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A developer without Java or the engines skips the real-engine tests; CI (CI=true) never does:
    there a missing engine fails the test instead of hiding it."""
    import os

    if os.environ.get("CI") == "true":
        return
    for marker in ("spark", "clickhouse"):
        reason = _engine_missing(marker)
        if reason is None:
            continue
        for item in items:
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_configure(config: pytest.Config) -> None:
    """Every local Spark a test process starts also serves Spark Connect on a loopback port, so the
    Spark Connect tests (truenorth/engines/tests/test_spark.py) run whichever test module started the
    process's Spark first (one SparkContext per process; its plugins are fixed when it starts)."""
    import importlib.util
    import socket

    if importlib.util.find_spec("pyspark") is None:
        return
    from truenorth.engines import spark_engine

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    spark_engine.LOCAL_CONF.update(
        {
            "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(port),
        }
    )
