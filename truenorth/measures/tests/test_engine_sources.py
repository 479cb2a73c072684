"""Data sources on the engines of issue 14 (Spark, chDB, ClickHouse, Trino, BigQuery, Snowflake): every
kind added and edited through the API and the form, and the bad input a hostile organisation admin
could try: private addresses, local engines the operator did not allow, drivers that are not offered,
table paths outside the organisation's directory, secrets read back, another organisation's source."""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pytest
from django.test import Client
from django.urls import reverse

from truenorth.core.errors import ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.measures import sources
from truenorth.measures.models import DataSource, Measure
from truenorth.measures.sources import MASK

BASE = "/api/v1/orgs/alpha"
SECRET = "Hunter2-Secret-Value"
PUBLIC_IP = "8.8.8.8"  # a global address, never connected to by these tests


def _post(client: Client, path: str, data: Any) -> Any:
    return client.post(path, json.dumps(data), content_type="application/json")


def _patch(client: Client, path: str, data: Any) -> Any:
    return client.patch(path, json.dumps(data), content_type="application/json")


def _u(name: str, **kwargs: int) -> str:
    return reverse(f"measures:{name}", kwargs={"org_slug": "alpha", **kwargs})


def _field(response: Any) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


@pytest.fixture
def folder(tmp_path, settings, org_a):
    """Organisation A's directory with an events Parquet file (and a CSV)."""
    settings.TRUENORTH_DUCKDB_DIRS = [tmp_path / "dirs"]
    directory = sources.organisation_directory(org_a)
    conn = duckdb.connect()
    try:
        conn.execute(
            "COPY (SELECT DATE '2026-01-01' + INTERVAL (i) DAY AS day, (i + 1) * 10 AS n FROM range(3) t(i)) "
            f"TO '{directory / 'events.parquet'}' (FORMAT parquet)"
        )
    finally:
        conn.close()
    (directory / "scores.csv").write_text("day,score\n2026-01-01,3\n")
    return directory


@pytest.fixture
def local_on(settings):
    settings.TRUENORTH_ENGINES_LOCAL = True


def _configs(folder) -> dict[str, dict[str, Any]]:
    return {
        "spark": {"url": f"sc://{PUBLIC_IP}:15002/;token={SECRET}", "tables": {"events": "events.parquet"}},
        "chdb": {"tables": {"events": "events.parquet", "scores": str(folder / "scores.csv")}},
        "clickhouse": {"url": f"https://{PUBLIC_IP}:8443", "username": "reader", "password": SECRET},
        "trino": {"driver": "trino", "params": {"host": PUBLIC_IP, "user": "reader", "password": SECRET}},
        "bigquery": {
            "driver": "bigquery",
            "params": {"project": "acme", "credentials_info": {"private_key": SECRET}},
        },
        "snowflake": {
            "driver": "snowflake",
            "params": {"account": "acme-eu", "user": "reader", "password": SECRET, "warehouse": "wh"},
        },
    }


def _create(admin: Any, kind: str, config: dict[str, Any], name: str | None = None) -> Any:
    return _post(admin.api(), f"{BASE}/data-sources", {"name": name or kind, "kind": kind, "config": config})


# --- every kind through the API ------------------------------------------------------------------


def test_every_kind_is_created_through_the_api_its_secret_encrypted_and_never_returned(
    admin, member, folder, local_on
):
    for kind, config in _configs(folder).items():
        created = _create(admin, kind, config)
        assert created.status_code == 201, (kind, created.content)
        body = created.json()
        assert body["kind"] == kind and SECRET not in created.content.decode()
        assert body["tested_on_real_engine"] is (kind in ("spark", "chdb"))
        assert body["dialect"] == {"chdb": "clickhouse"}.get(kind, kind)
        stored = DataSource.objects.get(pk=body["id"])
        assert SECRET not in stored.config_encrypted  # encrypted at rest
        if kind != "chdb":
            assert SECRET in json.dumps(sources.decrypt_config(stored))  # ... but kept
    shown = {row["kind"]: row["config"] for row in admin.api().get(f"{BASE}/data-sources").json()}
    assert shown["spark"]["url"] == f"sc://{PUBLIC_IP}:15002/;token={MASK}"
    assert shown["spark"]["tables"] == {"events": str(folder / "events.parquet")}
    assert shown["chdb"]["tables"]["scores"] == str(folder / "scores.csv")
    assert shown["clickhouse"] == {
        "url": f"https://{PUBLIC_IP}:8443", "username": "reader", "password": MASK, "database": "default"
    }  # fmt: skip
    assert shown["trino"]["params"] == {"host": PUBLIC_IP, "user": "reader", "password": MASK}
    assert shown["bigquery"]["params"]["credentials_info"] == MASK
    assert shown["snowflake"]["params"]["password"] == MASK
    listed = member.api().get(f"{BASE}/data-sources")
    assert SECRET not in listed.content.decode() and all(row["config"] == {} for row in listed.json())
    history = json.dumps(list(HistoryEntry.objects.values_list("changes", flat=True)), default=str)
    assert SECRET not in history


def test_a_local_spark_session_is_created_when_local_engines_are_on(admin, folder, local_on, settings):
    config = {"master": "local[2]", "tables": {"events": "events.parquet"}, "database": "analytics"}
    created = _create(admin, "spark", config)
    assert created.status_code == 201, created.content
    assert created.json()["config"]["master"] == "local[2]"
    for master in ("local[*]", "local[3]", "yarn", "spark://10.0.0.1:7077"):
        refused = _create(admin, "spark", {**config, "master": master}, name=master)
        assert refused.status_code == 422 and _field(refused) == ["config.master"], master


def test_editing_keeps_masked_secrets_unless_they_would_go_elsewhere(admin, folder, local_on):
    made = {kind: _create(admin, kind, config).json() for kind, config in _configs(folder).items()}
    for kind in ("spark", "clickhouse", "trino", "snowflake"):
        source = made[kind]
        url = f"{BASE}/data-sources/{source['id']}"
        kept = _patch(admin.api(), url, {"version": source["version"], "config": source["config"]})
        assert kept.status_code == 200, (kind, kept.content)
        assert SECRET in json.dumps(sources.decrypt_config(DataSource.objects.get(pk=source["id"]))), kind
        assert SECRET not in kept.content.decode()
        stale = _patch(admin.api(), url, {"version": source["version"], "timeout_seconds": 9})
        assert stale.status_code == 409, kind
    # Moving a kept secret to another host needs it typed again.
    ch = made["clickhouse"]
    moved = _patch(
        admin.api(),
        f"{BASE}/data-sources/{ch['id']}",
        {"version": 2, "config": {**ch["config"], "url": "https://1.1.1.1:8443"}},
    )
    assert moved.status_code == 422 and _field(moved) == ["config.password"]
    spark = made["spark"]
    moved = _patch(
        admin.api(),
        f"{BASE}/data-sources/{spark['id']}",
        {"version": 2, "config": {**spark["config"], "url": f"sc://1.1.1.1:15002/;token={MASK}"}},
    )
    assert moved.status_code == 422 and _field(moved) == ["config.url"]
    trino = made["trino"]
    params = {**trino["config"]["params"], "host": "1.1.1.1"}
    moved = _patch(
        admin.api(),
        f"{BASE}/data-sources/{trino['id']}",
        {"version": 2, "config": {"driver": "trino", "params": params}},
    )
    assert moved.status_code == 422 and _field(moved) == ["config.params.password"]
    changes = HistoryEntry.objects.filter(object_id=ch["id"], action=HistoryEntry.Action.UPDATED).first()
    assert changes is not None and changes.changes["config"] == {"old": "(hidden)", "new": "(changed)"}


# --- bad input and security ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("spark", {"url": "sc://127.0.0.1:15002"}, "config.url"),
        ("spark", {"url": "sc://10.1.2.3:15002"}, "config.url"),
        ("spark", {"url": "sc://localhost:15002"}, "config.url"),
        ("spark", {"url": "sc://[::ffff:192.168.0.1]:15002"}, "config.url"),
        ("clickhouse", {"url": "http://169.254.169.254:8123"}, "config.url"),
        ("clickhouse", {"url": "http://[::1]:8123"}, "config.url"),
        ("clickhouse", {"url": "http://0.0.0.0:8123"}, "config.url"),
        ("clickhouse", {"url": "http://2130706433:8123"}, "config.url"),  # 127.0.0.1 as a number
        ("clickhouse", {"url": "http://0x7f.1:8123"}, "config.url"),
        ("trino", {"driver": "trino", "params": {"host": "[::1]"}}, "config.params.host"),
        ("trino", {"driver": "trino", "params": {"host": "192.168.1.10"}}, "config.params.host"),
    ],
)
def test_a_private_or_loopback_address_is_refused(admin, folder, kind, config, field):
    refused = _create(admin, kind, config)
    assert refused.status_code == 422 and _field(refused) == [field], refused.content
    assert "TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS" in refused.content.decode()


def test_private_addresses_are_accepted_when_the_operator_allows_them(admin, folder, settings):
    settings.TRUENORTH_SOURCES_ALLOW_PRIVATE_NETWORKS = True
    assert _create(admin, "clickhouse", {"url": "http://127.0.0.1:8123"}).status_code == 201


@pytest.mark.parametrize(
    "config",
    [
        {"url": "ftp://8.8.8.8"},
        {"url": f"https://user:pw@{PUBLIC_IP}:8443"},
        {"url": f"https://{PUBLIC_IP}:8443/?database=system"},
        {"url": f"https://{PUBLIC_IP}:99999"},
    ],
)
def test_a_malformed_clickhouse_address_names_the_field(admin, folder, config):
    refused = _create(admin, "clickhouse", config)
    assert refused.status_code == 422 and _field(refused) == ["config.url"]


def test_local_engines_are_refused_while_the_setting_is_off(admin, folder, settings):
    settings.TRUENORTH_ENGINES_LOCAL = False
    spark = _create(admin, "spark", {"master": "local[1]", "tables": {"events": "events.parquet"}})
    assert spark.status_code == 422 and _field(spark) == ["config.master"]
    assert "TRUENORTH_ENGINES_LOCAL" in spark.content.decode()
    chdb = _create(admin, "chdb", {"tables": {"events": "events.parquet"}})
    assert chdb.status_code == 422 and _field(chdb) == ["kind"]


def test_a_source_saved_while_allowed_is_checked_again_before_each_run(admin, folder, settings, local_on):
    created = _create(admin, "chdb", {"tables": {"events": "events.parquet"}})
    source = DataSource.objects.get(pk=created.json()["id"])
    settings.TRUENORTH_ENGINES_LOCAL = False
    with pytest.raises(ValidationFailed) as refused:
        sources.execute(source, "SELECT day, n FROM events", 10)
    assert "TRUENORTH_ENGINES_LOCAL" in refused.value.message
    tested = _post(admin.api(), f"{BASE}/data-sources/{source.pk}/test", {})
    assert tested.status_code == 200 and tested.json()["ok"] is False
    source.refresh_from_db()
    assert "TRUENORTH_ENGINES_LOCAL" in source.last_error
    # A table file replaced by a link out of the directory after saving is refused too.
    settings.TRUENORTH_ENGINES_LOCAL = True
    (folder / "events.parquet").unlink()
    (folder / "events.parquet").symlink_to("/etc/passwd")
    with pytest.raises(ValidationFailed) as refused:
        sources.execute(source, "SELECT day, n FROM events", 10)
    assert refused.value.field == "config.tables.events"


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"driver": "subprocess:run", "params": {}}, "config.driver"),
        ({"driver": "trino.dbapi:connect", "params": {}}, "config.driver"),
        ({"driver": "os", "params": {}}, "config.driver"),
        ({"driver": "snowflake", "params": {}}, "config.driver"),  # not a Trino driver
        ({"driver": "trino", "params": {"host": PUBLIC_IP, "keyring": "x"}}, "config.params.keyring"),
        (
            {"driver": "trino", "params": {"host": PUBLIC_IP, "verify": "/etc/ssl/x.pem"}},
            "config.params.verify",
        ),
        ({"driver": "trino", "params": {"user": {"nested": 1}}}, "config.params.user"),
        ({"driver": "trino", "params": {"host": PUBLIC_IP}, "module": "os"}, "config.module"),
    ],
)
def test_a_driver_not_offered_or_a_parameter_not_allowed_is_refused(admin, folder, config, field):
    refused = _create(admin, "trino", config)
    assert refused.status_code == 422 and _field(refused) == [field], refused.content


def test_no_driver_kind_is_usable_when_the_operator_offers_none(admin, folder, settings):
    settings.TRUENORTH_ENGINES_DRIVERS = []
    refused = _create(admin, "snowflake", {"driver": "snowflake", "params": {"account": "acme"}})
    assert refused.status_code == 422 and _field(refused) == ["config.driver"]
    assert "TRUENORTH_ENGINES_DRIVERS" in refused.content.decode()


def test_a_table_outside_the_organisation_directory_is_refused(admin, folder, org_b, local_on, tmp_path):
    other = sources.organisation_directory(org_b)
    (other / "theirs.parquet").write_bytes(b"PAR1")
    outside = tmp_path / "outside.parquet"
    outside.write_bytes(b"PAR1")
    (folder / "link.parquet").symlink_to(outside)
    (folder / "dirlink").symlink_to(other)
    for path in (
        "/etc/passwd",
        str(outside),
        f"../org-{org_b.pk}/theirs.parquet",
        str(other / "theirs.parquet"),
        "link.parquet",
        "dirlink/theirs.parquet",
        "events.parquet/../../../outside.parquet",
    ):
        for kind, config in (
            ("chdb", {"tables": {"events": path}}),
            ("spark", {"url": f"sc://{PUBLIC_IP}:15002", "tables": {"events": path}}),
        ):
            refused = _create(admin, kind, config)
            assert refused.status_code == 422, (kind, path, refused.content)
            assert _field(refused) == ["config.tables.events"], (kind, path)
            assert str(outside) not in refused.content.decode() or path == str(outside)
    bad_name = _create(admin, "chdb", {"tables": {"events; DROP": "events.parquet"}})
    assert bad_name.status_code == 422 and _field(bad_name) == ["config.tables"]
    not_data = _create(admin, "chdb", {"tables": {"events": "notes.txt"}})
    assert not_data.status_code == 422 and _field(not_data) == ["config.tables.events"]


def test_another_organisation_cannot_see_or_use_the_source(admin, outsider, folder, local_on, org_b):
    source = _create(admin, "clickhouse", _configs(folder)["clickhouse"]).json()
    other = "/api/v1/orgs/bravo-secret"
    assert outsider.api().get(f"{other}/data-sources").json() == []
    for response in (
        _patch(outsider.api(), f"{other}/data-sources/{source['id']}", {"version": 1, "name": "x"}),
        _post(outsider.api(), f"{other}/data-sources/{source['id']}/test", {}),
        outsider.api().delete(f"{other}/data-sources/{source['id']}"),
        _patch(outsider.api(), f"{BASE}/data-sources/{source['id']}", {"version": 1, "name": "x"}),
    ):
        assert response.status_code in (403, 404), response.content
        assert SECRET not in response.content.decode()
    measure = _post(
        outsider.api(),
        f"{other}/measures",
        {
            "name": "Stolen",
            "kva": "current_value",
            "source": "sql",
            "data_source": source["id"],
            "query": "SELECT 1, 2",
        },
    )
    assert measure.status_code in (404, 422) and not Measure.objects.filter(name="Stolen").exists()
    page = outsider.client.get(
        reverse("measures:source", kwargs={"org_slug": "alpha", "source_id": source["id"]})
    )
    assert page.status_code in (403, 404)


# --- the web form --------------------------------------------------------------------------------


def _form(kind: str, name: str, **settings_: str) -> dict[str, str]:
    return {"name": name, "kind": kind, "timeout_seconds": "30", **settings_}


def test_every_kind_is_added_and_edited_through_the_form(admin, folder, local_on):
    forms = {
        "spark": {"url": f"sc://{PUBLIC_IP}:15002/;token={SECRET}", "tables": "events = events.parquet"},
        "chdb": {"tables": "events = events.parquet\nscores = scores.csv"},
        "clickhouse": {"url": f"https://{PUBLIC_IP}:8443", "username": "reader", "password": SECRET},
        "trino": {"driver": "trino", "params": f"host = {PUBLIC_IP}\nport = 443\npassword = {SECRET}"},
        "bigquery": {
            "driver": "bigquery",
            "params": f'project = acme\ncredentials_info = {{"private_key": "{SECRET}"}}',
        },
        "snowflake": {"driver": "snowflake", "params": f"account = acme\nuser = r\npassword = {SECRET}"},
    }
    for kind, fields in forms.items():
        added = admin.client.post(_u("sources"), _form(kind, f"Form {kind}", **fields))
        assert added.status_code == 302, (kind, added.content.decode()[:3000])
        source = DataSource.objects.get(name=f"Form {kind}")
        assert source.kind == kind and SECRET not in source.config_encrypted
        page = admin.client.get(_u("source", source_id=source.pk))
        text = page.content.decode()
        assert page.status_code == 200 and SECRET not in text
        assert ("tested on the real engine" in text) is (kind in ("spark", "chdb")), kind
        assert ("compiled only" in text) is (kind not in ("spark", "chdb")), kind
        # An edit with the write-only fields as shown keeps the stored secret.
        initial = page.context["form"].initial
        edit = {k: str(v) for k, v in initial.items() if v is not None}
        edit.update(name=f"Form {kind} 2", version=str(source.version))
        saved = admin.client.post(_u("source", source_id=source.pk), edit)
        assert saved.status_code == 302, (kind, saved.content.decode()[:3000])
        source.refresh_from_db()
        assert source.name == f"Form {kind} 2"
        if kind != "chdb":
            assert SECRET in json.dumps(sources.decrypt_config(source)), kind
    listing = admin.client.get(_u("sources")).content.decode()
    assert SECRET not in listing and "Form chdb 2" in listing


def test_an_unchanged_edit_of_every_kind_changes_nothing(admin, folder, local_on):
    """The edit form, submitted as shown (secrets masked, params as text), keeps every setting as it was
    (ints, booleans and secrets included) and records no change."""
    configs = _configs(folder)
    configs["trino"]["params"].update(port=443, http_scheme="https")
    for kind, config in configs.items():
        created = _create(admin, kind, config, name=f"Same {kind}")
        assert created.status_code == 201, (kind, created.content)
        source = DataSource.objects.get(pk=created.json()["id"])
        before = (sources.decrypt_config(source), source.version, HistoryEntry.objects.count())
        initial = admin.client.get(_u("source", source_id=source.pk)).context["form"].initial
        edit = {k: str(v) for k, v in initial.items() if v is not None}
        edit["version"] = str(source.version)
        saved = admin.client.post(_u("source", source_id=source.pk), edit)
        assert saved.status_code == 302, (kind, saved.content.decode()[:2000])
        source.refresh_from_db()
        assert (sources.decrypt_config(source), source.version, HistoryEntry.objects.count()) == before, kind


def test_form_errors_land_on_the_kind_fields(admin, folder, settings):
    private = admin.client.post(_u("sources"), _form("clickhouse", "Private", url="http://10.0.0.5:8123"))
    assert private.status_code == 422 and "loopback, private" in str(private.context["form"].errors["url"])
    local = admin.client.post(
        _u("sources"), _form("spark", "Local", master="local[1]", tables="e = events.parquet")
    )
    assert local.status_code == 422 and "TRUENORTH_ENGINES_LOCAL" in str(
        local.context["form"].errors["master"]
    )
    settings.TRUENORTH_ENGINES_LOCAL = True
    outside = admin.client.post(_u("sources"), _form("chdb", "Outside", tables="events = ../../x.parquet"))
    assert outside.status_code == 422 and "outside this organisation" in str(
        outside.context["form"].errors["tables"]
    )
    garbled = admin.client.post(_u("sources"), _form("chdb", "Garbled", tables="events events.parquet"))
    assert garbled.status_code == 422 and "tables" in garbled.context["form"].errors
    driver = admin.client.post(_u("sources"), _form("trino", "Driver", driver="subprocess:run", params=""))
    assert driver.status_code == 422 and "driver" in driver.context["form"].errors
    assert not DataSource.objects.exists()


# --- end to end on a real engine -----------------------------------------------------------------


@pytest.mark.clickhouse
def test_a_sql_measure_on_a_chdb_source_refreshes_through_the_connector(admin, owner, folder, local_on):
    from truenorth.measures import refresh
    from truenorth.measures.models import Observation
    from truenorth.strategy import services as strategy

    source = sources.create_data_source(
        admin.membership,
        admin.user,
        name="Events",
        kind="chdb",
        config={"tables": {"events": "events.parquet"}},
    )
    assert "chDB" in sources.test_data_source(admin.membership, source.pk)
    product = strategy.create_product(owner.membership, owner.user, name="Shop")
    from truenorth.measures import services

    measure = services.create_measure(
        admin.membership,
        admin.user,
        name="Daily events",
        kva="current_value",
        product_id=product.pk,
        source="sql",
        data_source_id=source.pk,
        query="SELECT day, n FROM events ORDER BY day",
    )
    result = refresh.refresh_measure(measure, actor=admin.user)
    assert result.ok, result.error
    assert sorted(Observation.objects.filter(measure=measure).values_list("value", flat=True)) == [10, 20, 30]
    preview = sources.preview_query(source, "SELECT day, n FROM events", limit=2)
    assert preview["more"] and len(preview["rows"]) == 2
    with pytest.raises(ValidationFailed) as refused:
        sources.execute(source, "SELECT * FROM file('/etc/passwd', 'CSV')", 10)
    assert refused.value.field == "query"


@pytest.mark.clickhouse
def test_more_rows_than_the_ceiling_is_the_usual_message_not_a_cap_error(admin, folder, local_on):
    """The engines' row ceiling (100,000) sits below limit + 1 for the default limit: the caller's own
    wording comes back, naming the number of rows, whatever cap stopped the engine."""
    source = sources.create_data_source(
        admin.membership,
        admin.user,
        name="Events",
        kind="chdb",
        config={"tables": {"events": "events.parquet"}},
    )
    with pytest.raises(sources.QueryFailed) as refused:
        sources.execute(source, "SELECT now() AS at, number AS n FROM numbers(150000)", sources.DEFAULT_LIMIT)
    assert "more than 100,000 rows" in refused.value.message
    assert (
        len(
            sources.execute(
                source, "SELECT now() AS at, number AS n FROM numbers(99999)", sources.DEFAULT_LIMIT
            ).rows
        )
        == 99_999
    )


def test_experiment_evidence_is_compiled_in_the_source_kinds_dialect(admin, folder, local_on):
    from truenorth.hypotheses.results import SourceEngine

    expected = {"spark": "spark", "chdb": "clickhouse", "clickhouse": "clickhouse", "trino": "trino"}
    for kind, dialect in expected.items():
        source = DataSource(organisation_id=admin.membership.organisation_id, name=kind, kind=kind)
        assert SourceEngine(source).dialect == dialect


@pytest.mark.spark
def test_a_sql_measure_on_a_local_spark_source_refreshes_through_the_connector(
    admin, owner, folder, local_on
):
    from truenorth.measures import refresh, services
    from truenorth.measures.models import Observation
    from truenorth.strategy import services as strategy

    source = sources.create_data_source(
        admin.membership,
        admin.user,
        name="Spark",
        kind="spark",
        config={"master": "local[1]", "tables": {"events": "events.parquet"}},
        timeout_seconds=120,
    )
    product = strategy.create_product(owner.membership, owner.user, name="Shop")
    measure = services.create_measure(
        admin.membership,
        admin.user,
        name="Daily events on Spark",
        kva="current_value",
        product_id=product.pk,
        source="sql",
        data_source_id=source.pk,
        query="SELECT day, n FROM events",
    )
    result = refresh.refresh_measure(measure, actor=admin.user)
    assert result.ok, result.error
    assert sorted(Observation.objects.filter(measure=measure).values_list("value", flat=True)) == [10, 20, 30]
    with pytest.raises(ValidationFailed) as refused:
        sources.execute(source, "SELECT java_method('java.lang.System', 'exit', 1)", 10)
    assert refused.value.field == "query"


def test_a_host_name_is_resolved_and_each_address_checked(admin, folder):
    import socket

    name = socket.gethostname()  # resolves (hosts file) to this machine's own, non-public address
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(name, 8123)}
    except OSError:
        addresses = set()
    if not addresses or any(sources.config._public_address(a) for a in addresses):
        pytest.skip("this machine's name does not resolve to a private address here")
    refused = _create(admin, "clickhouse", {"url": f"http://{name}:8123"})
    assert refused.status_code == 422 and _field(refused) == ["config.url"]


@pytest.mark.clickhouse
def test_experiment_evidence_on_a_chdb_source_matches_duckdb(admin, folder, local_on):
    """SourceEngine (the experiments' engine over a data source) on chDB: the same sums and counts as on a
    DuckDB source reading the same planted-effect files."""
    from truenorth.evidence import synthetic
    from truenorth.evidence.compile import Tables
    from truenorth.evidence.run import run_experiment
    from truenorth.hypotheses.results import SourceEngine

    synthetic.write_parquet(folder / "synthetic", 3_000, seed=3)
    tables = {"assignments": "synthetic/assignments.parquet", "events": "synthetic/events.parquet"}
    chdb = sources.create_data_source(
        admin.membership, admin.user, name="Synthetic chDB", kind="chdb", config={"tables": tables}
    )
    duck = sources.create_data_source(
        admin.membership,
        admin.user,
        name="Synthetic DuckDB",
        kind="duckdb",
        config={"path": "", "files": list(tables.values())},
    )
    metrics = synthetic.standard_metrics()
    on_chdb = run_experiment(SourceEngine(chdb), synthetic.EXPERIMENT, metrics)
    files = [str(folder / p) for p in tables.values()]
    duck_tables = Tables(assignments=files[0], events=files[1])
    on_duckdb = run_experiment(SourceEngine(duck, files), synthetic.EXPERIMENT, metrics, tables=duck_tables)
    assert on_chdb.units == on_duckdb.units and len(on_chdb.units) >= 2
    assert on_chdb.excluded_units == on_duckdb.excluded_units
    assert on_chdb.metrics.keys() == on_duckdb.metrics.keys()
    for name, by_variation in on_duckdb.metrics.items():
        for variation, stats in by_variation.items():
            assert _close(on_chdb.metrics[name][variation], stats), (name, variation)


def _close(a: Any, b: Any) -> bool:
    """Statistics equal: counts exactly (they are whole numbers), floating sums to 1e-9 relative."""
    import dataclasses

    import numpy as np

    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(
            _close(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
        )
    if a is None or isinstance(a, bool | str):
        return bool(a == b)
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return x.shape == y.shape and bool(np.allclose(x, y, rtol=1e-9, atol=1e-12))
