"""Data sources and SQL measures in the web UI (issue 9 item 3): admins list, add, test, edit and remove
sources and write queries (with a preview run as a job); members see names and kinds and get 403 on
writes; another organisation gets 404; a stored PostgreSQL password is never rendered; a SQL measure
offers no manual entry."""

from __future__ import annotations

import html
import json

import duckdb
import psycopg
import pytest
from django.urls import reverse

from truenorth.core.forms import MISSING_VERSION
from truenorth.history.models import HistoryEntry
from truenorth.jobs.models import Job
from truenorth.measures import services, sources
from truenorth.measures.models import KVA, DataSource, Measure, Observation
from truenorth.strategy import services as strategy_services

SLUG = "alpha"
SECRET = "Sup3r-s3cret-pw"


def _u(name: str, **kwargs: int) -> str:
    return reverse(f"measures:{name}", kwargs={"org_slug": SLUG, **kwargs})


@pytest.fixture
def folder(tmp_path, settings, org_a):
    """Organisation A's DuckDB directory, with a database of daily sign-ups."""
    settings.TRUENORTH_DUCKDB_DIRS = [tmp_path / "duckdb"]
    directory = sources.organisation_directory(org_a)
    conn = duckdb.connect(str(directory / "shop.duckdb"))
    try:
        conn.execute(
            "CREATE TABLE signups (day DATE, n INTEGER);"
            "INSERT INTO signups VALUES ('2026-01-01', 10), ('2026-01-02', 12), ('2026-01-03', 15);"
        )
    finally:
        conn.close()
    return directory


@pytest.fixture
def source(admin, folder) -> DataSource:
    return sources.create_data_source(
        admin.membership, admin.user, name="Shop", kind="duckdb", config={"path": "shop.duckdb"}
    )


@pytest.fixture
def pg_source(org_a) -> DataSource:
    # Stored directly: the address need not be reachable for the pages to show it.
    return DataSource.objects.create(
        organisation=org_a,
        name="Warehouse",
        kind="postgres",
        config_encrypted=sources.encrypt_config({"dsn": f"postgres://reader:{SECRET}@db.example.com:5432/dw"}),
    )


@pytest.fixture
def product(owner):
    return strategy_services.create_product(owner.membership, owner.user, name="Shop")


@pytest.fixture
def sql_measure(admin, source, product) -> Measure:
    return services.create_measure(
        admin.membership,
        admin.user,
        name="Sign-ups",
        kva=KVA.CURRENT_VALUE,
        product_id=product.pk,
        source="sql",
        data_source_id=source.pk,
        query="SELECT day, n FROM signups",
    )


def test_an_admin_adds_a_duckdb_source_relative_to_the_organisation_directory_and_tests_it(admin, folder):
    page = admin.client.get(_u("sources"))
    assert page.status_code == 200
    assert str(folder) in page.content.decode()  # the page says where the files go

    created = admin.client.post(
        _u("sources"), {"name": "Shop", "kind": "duckdb", "path": "shop.duckdb", "timeout_seconds": "10"}
    )
    source = DataSource.objects.get(name="Shop")
    assert created.status_code == 302 and created["Location"] == _u("source", source_id=source.pk)
    assert sources.decrypt_config(source)["path"] == str(folder / "shop.duckdb")

    tested = admin.client.post(_u("source_test", source_id=source.pk))
    assert tested.status_code == 200
    assert f"Opened DuckDB {folder / 'shop.duckdb'} read-only." in tested.content.decode()
    source.refresh_from_db()
    assert source.last_checked_at is not None and source.last_error == ""


def test_a_failing_test_shows_the_error_and_a_path_outside_the_directory_is_a_field_error(admin, folder):
    outside = admin.client.post(
        _u("sources"), {"name": "Etc", "kind": "duckdb", "path": "../../etc.duckdb", "timeout_seconds": "10"}
    )
    assert outside.status_code == 422
    assert "is outside this organisation" in html.unescape(outside.content.decode())
    assert not DataSource.objects.filter(name="Etc").exists()

    source = sources.create_data_source(
        admin.membership, admin.user, name="Gone", kind="duckdb", config={"path": "missing.duckdb"}
    )
    tested = admin.client.post(_u("source_test", source_id=source.pk))
    body = tested.content.decode()
    assert tested.status_code == 200
    assert "The test failed" in body and "does not exist" in body


def test_editing_keeps_the_masked_password_and_never_renders_it(admin, member, pg_source):
    for client in (admin.client, member.client):
        for url in (_u("sources"), _u("source", source_id=pg_source.pk)):
            assert SECRET not in client.get(url).content.decode()
    page = admin.client.get(_u("source", source_id=pg_source.pk)).content.decode()
    assert f"postgres://reader:{sources.MASK}@db.example.com:5432/dw" in page

    shown = f"postgres://reader:{sources.MASK}@db.example.com:5432/dw"
    saved = admin.client.post(
        _u("source", source_id=pg_source.pk),
        {"name": "Warehouse", "dsn": shown.replace("/dw", "/dw2"), "timeout_seconds": "30", "version": "1"},
    )
    assert saved.status_code == 302
    pg_source.refresh_from_db()
    params = psycopg.conninfo.conninfo_to_dict(sources.decrypt_config(pg_source)["dsn"])
    assert params["password"] == SECRET and params["dbname"] == "dw2"

    # Moving the address with the mask in place needs the password again (the services' rule).
    moved = admin.client.post(
        _u("source", source_id=pg_source.pk),
        {"name": "Warehouse", "dsn": shown.replace("db.example.com", "evil.example.net"), "timeout_seconds": "30",
         "version": str(pg_source.version)},
    )  # fmt: skip
    body = html.unescape(moved.content.decode())
    assert moved.status_code == 422
    assert "needs the password again" in body and SECRET not in body
    pg_source.refresh_from_db()
    assert "db.example.com" in sources.decrypt_config(pg_source)["dsn"]


def test_saving_an_unchanged_edit_form_changes_nothing(admin, source):
    page = admin.client.get(_u("source", source_id=source.pk)).content.decode()
    assert 'value="shop.duckdb"' in page  # shown relative to the organisation's directory
    before = HistoryEntry.objects.count()
    saved = admin.client.post(
        _u("source", source_id=source.pk),
        {"name": "Shop", "path": "shop.duckdb", "files": "", "timeout_seconds": "30", "version": "1"},
    )
    assert saved.status_code == 302
    source.refresh_from_db()
    assert source.version == 1 and HistoryEntry.objects.count() == before


def test_an_edit_without_its_version_or_with_a_stale_one_is_refused(admin, source):
    data = {"name": "Renamed", "path": "shop.duckdb", "timeout_seconds": "30"}
    missing = admin.client.post(_u("source", source_id=source.pk), data)
    assert missing.status_code == 422 and MISSING_VERSION in html.unescape(missing.content.decode())
    sources.update_data_source(admin.membership, admin.user, source.pk, name="Other", version=1)
    stale = admin.client.post(_u("source", source_id=source.pk), {**data, "version": "1"})
    assert stale.status_code == 422 and "changed by someone else" in html.unescape(stale.content.decode())
    source.refresh_from_db()
    assert source.name == "Other"


def test_a_source_in_use_is_not_removed_and_an_unused_one_is(admin, source, sql_measure):
    refused = admin.client.post(_u("source_delete", source_id=source.pk), follow=True)
    assert "Measures use" in html.unescape(refused.content.decode())
    assert DataSource.objects.filter(pk=source.pk).exists()
    spare = sources.create_data_source(admin.membership, admin.user, name="Spare", kind="duckdb", config={})
    removed = admin.client.post(_u("source_delete", source_id=spare.pk))
    assert removed.status_code == 302 and not DataSource.objects.filter(pk=spare.pk).exists()


def test_members_see_names_and_kinds_only_and_get_403_on_every_write(member, stakeholder, source, sql_measure):
    listing = member.client.get(_u("sources")).content.decode()
    assert "Shop" in listing and "DuckDB" in listing
    assert "shop.duckdb" not in listing and "Add a data source" not in listing
    assert member.client.get(_u("source", source_id=source.pk)).status_code == 403
    writes = [
        (_u("sources"), {"name": "Mine", "kind": "duckdb", "path": "", "timeout_seconds": "10"}),
        (_u("source", source_id=source.pk), {"name": "Mine", "timeout_seconds": "10", "version": "1"}),
        (_u("source_test", source_id=source.pk), {}),
        (_u("source_delete", source_id=source.pk), {}),
        (_u("query", measure_id=sql_measure.pk), {"data_source": str(source.pk), "query": "SELECT 1, 2",
                                                   "action": "preview"}),
        (_u("query", measure_id=sql_measure.pk), {"data_source": str(source.pk), "query": "SELECT 1, 2",
                                                   "version": "1", "action": "save"}),
    ]  # fmt: skip
    for client in (member.client, stakeholder.client):
        for url, data in writes:
            assert client.post(url, data).status_code == 403, url
    product_id = sql_measure.product_id
    assert member.client.get(_u("sql_measure_add", product_id=product_id)).status_code == 403
    assert DataSource.objects.count() == 1 and source.name == DataSource.objects.get().name
    sql_measure.refresh_from_db()
    assert sql_measure.query == "SELECT day, n FROM signups" and not Job.objects.exists()


def test_another_organisation_gets_404_everywhere(outsider, source, sql_measure):
    urls = [
        _u("sources"),
        _u("source", source_id=source.pk),
        _u("source_test", source_id=source.pk),
        _u("source_delete", source_id=source.pk),
        _u("query", measure_id=sql_measure.pk),
        _u("sql_measure_add", product_id=sql_measure.product_id),
    ]
    for url in urls:
        assert outsider.client.get(url).status_code in (404, 405)
        assert outsider.client.post(url, {"name": "x", "version": "1"}).status_code == 404
    # Their own organisation's URLs with our ids: 404 too.
    theirs = outsider.membership.organisation.slug
    url = reverse("measures:source", kwargs={"org_slug": theirs, "source_id": source.pk})
    assert outsider.client.get(url).status_code == 404


def test_an_admin_creates_a_sql_measure_previews_its_query_and_refreshes_it(admin, source, product):
    form = admin.client.get(_u("sql_measure_add", product_id=product.pk))
    assert form.status_code == 200 and "Shop (DuckDB" in form.content.decode()
    created = admin.client.post(
        _u("sql_measure_add", product_id=product.pk),
        {
            "name": "Sign-ups",
            "kva": "current_value",
            "direction": "higher",
            "cadence_days": "1",
            "data_source": str(source.pk),
            "query": "SELECT day, n FROM signups",
        },
    )
    measure = Measure.objects.get(name="Sign-ups")
    assert created.status_code == 302 and measure.source == "sql" and measure.data_source_id == source.pk

    page = admin.client.get(_u("measure", measure_id=measure.pk)).content.decode()
    assert "SELECT day, n FROM signups" in page and "Shop" in page
    assert "Record an observation" not in page and "Import a file" not in page
    assert "Never refreshed yet" in page

    # Preview: a job (inline in tests) whose first rows the measure page shows; nothing is saved.
    preview = admin.client.post(
        _u("query", measure_id=measure.pk),
        {"data_source": str(source.pk), "query": "SELECT day, n * 2 AS doubled FROM signups", "action": "preview"},
    )
    job = Job.objects.get(kind="measure.preview")
    assert preview.status_code == 302 and preview["Location"].endswith(f"/jobs/{job.pk}/")
    assert job.status == "succeeded", job.error
    # The rows are the source's data: the job's result (which every member reads through the jobs API)
    # keeps them sealed; the measure page shows them to admins.
    assert "2026-01-0" not in json.dumps(job.result) and "doubled" not in json.dumps(job.result)
    shown = admin.client.get(job.result["link"]).content.decode()
    assert "<th scope=\"col\">doubled</th>" in shown and "<td>30</td>" in shown
    assert "SELECT day, n * 2 AS doubled FROM signups" in shown  # the editor holds the previewed query
    assert not Observation.objects.filter(measure=measure).exists()
    measure.refresh_from_db()
    assert measure.query == "SELECT day, n FROM signups"

    refreshed = admin.client.post(_u("refresh", measure_id=measure.pk), follow=True)
    assert "3 new observations" in refreshed.content.decode()
    page = admin.client.get(_u("measure", measure_id=measure.pk)).content.decode()
    assert "3 rows on" in page and "next refresh due" in page
    assert sorted(Observation.objects.filter(measure=measure).values_list("value", flat=True)) == [10, 12, 15]


def test_a_failing_preview_shows_the_error_and_a_bad_query_is_refused_at_once(admin, source, sql_measure):
    bad = admin.client.post(
        _u("query", measure_id=sql_measure.pk),
        {"data_source": str(source.pk), "query": "DELETE FROM signups", "action": "preview"},
    )
    assert bad.status_code == 422 and "Only a SELECT" in html.unescape(bad.content.decode())
    assert not Job.objects.exists()
    admin.client.post(
        _u("query", measure_id=sql_measure.pk),
        {"data_source": str(source.pk), "query": "SELECT nope FROM signups", "action": "preview"},
    )
    job = Job.objects.get()
    assert job.status == "failed"
    shown = admin.client.get(_u("measure", measure_id=sql_measure.pk) + f"?preview={job.pk}").content.decode()
    assert "The preview failed" in shown and "nope" in shown


def test_saving_the_query_needs_the_version_and_changes_the_measure(admin, source, sql_measure):
    data = {"data_source": str(source.pk), "query": "SELECT day, n + 1 FROM signups", "action": "save"}
    missing = admin.client.post(_u("query", measure_id=sql_measure.pk), data)
    assert missing.status_code == 422 and MISSING_VERSION in html.unescape(missing.content.decode())
    saved = admin.client.post(_u("query", measure_id=sql_measure.pk), {**data, "version": "1"})
    assert saved.status_code == 302
    sql_measure.refresh_from_db()
    assert sql_measure.query == "SELECT day, n + 1 FROM signups" and sql_measure.version == 2


def test_a_member_sees_no_previewed_rows(admin, member, source, sql_measure):
    admin.client.post(
        _u("query", measure_id=sql_measure.pk),
        {"data_source": str(source.pk), "query": "SELECT day, n FROM signups", "action": "preview"},
    )
    job = Job.objects.get()
    assert job.status == "succeeded"
    api = member.api().get(f"/api/v1/orgs/{SLUG}/jobs/{job.pk}").content.decode()
    assert "The query returned 3 rows" in api and "2026-01-01" not in api
    page = member.client.get(_u("measure", measure_id=sql_measure.pk) + f"?preview={job.pk}").content.decode()
    assert "2026-01-01" not in page and "query-preview" not in page


def test_a_member_sees_the_query_and_schedule_but_no_editor_and_no_manual_entry(member, sql_measure):
    page = member.client.get(_u("measure", measure_id=sql_measure.pk)).content.decode()
    assert "SELECT day, n FROM signups" in page and "Refresh now" in page
    assert "Edit the query" not in page and "Record an observation" not in page
    refused = member.client.post(_u("observation_add", measure_id=sql_measure.pk), {"value": "3"})
    assert refused.status_code == 422
    assert "not from manual entry" in html.unescape(refused.content.decode())
    assert not Observation.objects.filter(measure=sql_measure).exists()


def test_the_api_refuses_a_manual_observation_on_a_sql_measure_with_422(member, sql_measure):
    response = member.api().post(
        f"/api/v1/orgs/{SLUG}/measures/{sql_measure.pk}/observations",
        {"value": 3},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert "not from manual entry" in response.json()["detail"]


def test_a_batch_or_a_file_cannot_feed_a_sql_measure_either(member, sql_measure):
    """Manual entry is refused on every way in, not only the single observation: a batch names the row
    and stores nothing; a file reports the row and stores none of it."""
    from truenorth.measures import imports

    batch = member.api().post(
        f"/api/v1/orgs/{SLUG}/observations/batch",
        {"observations": [{"measure": sql_measure.pk, "value": 3, "observed_at": "2026-01-01T00:00:00Z"}]},
        content_type="application/json",
    )
    assert batch.status_code == 422, batch.content
    assert batch.json()["errors"][0]["field"] == "observations.0.measure"
    assert "not from a batch" in batch.json()["detail"]
    content = f"measure,observed_at,value\n{sql_measure.pk},2026-01-02T00:00:00Z,4\n".encode()
    result = imports.run_import(member.membership, member.user, "values.csv", content)
    assert result.created == 0
    assert any("refreshing it, not from a file" in e.message for e in result.errors)
    assert not Observation.objects.filter(measure=sql_measure).exists()
