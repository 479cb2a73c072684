"""`truenorth check` says which engines this server can run and which data sources it cannot."""

from __future__ import annotations

import pytest

from truenorth.measures import sources
from truenorth.measures.engines_health import engines_check
from truenorth.measures.models import DataSource, DataSourceKind


def _lines() -> dict[str, tuple[str, str]]:
    return {r.name: (r.status, r.detail) for r in engines_check()}


@pytest.mark.django_db
def test_local_engines_are_reported_off_by_default(settings) -> None:
    settings.TRUENORTH_ENGINES_LOCAL = False
    assert _lines()["local engines"][0] == "ok"
    assert "off" in _lines()["local engines"][1]


@pytest.mark.django_db
def test_local_engines_on_without_java_is_a_warning(settings, monkeypatch) -> None:
    settings.TRUENORTH_ENGINES_LOCAL = True
    monkeypatch.setenv("PATH", "/nonexistent")  # no `java` to be found
    status, detail = _lines()["local engines"]
    assert status == "warning"
    assert "Java" in detail or "pyspark" in detail


@pytest.mark.django_db
def test_the_offered_drivers_say_whether_they_are_installed(settings) -> None:
    settings.TRUENORTH_ENGINES_DRIVERS = ["trino"]
    status, detail = _lines()["engine drivers"]
    assert status == "ok"
    assert detail.startswith("offered: trino (")


@pytest.mark.django_db
def test_a_source_whose_engine_is_not_installed_is_a_warning(org_a) -> None:
    # A Trino source saved while its driver is missing on this server (the trino package is not a
    # dependency): the check names the kind and the package.
    DataSource.objects.create(
        organisation=org_a,
        name="Lake",
        kind=DataSourceKind.TRINO,
        config_encrypted=sources.encrypt_config({}),
    )
    status, detail = _lines()["engines in use"]
    assert status == "warning"
    assert "1 trino source(s): the trino package is not installed" in detail
