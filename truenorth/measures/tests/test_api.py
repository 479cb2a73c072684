"""API behaviour of the Value pillar: catalogue, measures, observations (single, batch, corrections,
file import), export, balance, investment and return, data sources; roles, isolation, query counts."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import TYPE_CHECKING, Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from truenorth.measures import services, sources
from truenorth.measures.models import DataSource, Measure, Observation, ObservationBatch
from truenorth.strategy import services as vision
from truenorth.strategy.models import Product

if TYPE_CHECKING:
    from conftest import Persona

BASE = "/api/v1/orgs/alpha"
PASSWORD_IN_DSN = "s3cret-Pa55word"
DSN = f"postgres://reader:{PASSWORD_IN_DSN}@db.internal.example:5432/warehouse"


def _post(client: Client, path: str, data: Any = None) -> Any:
    return client.post(path, json.dumps(data if data is not None else {}), content_type="application/json")


def _patch(client: Client, path: str, data: Any) -> Any:
    return client.patch(path, json.dumps(data), content_type="application/json")


def _put(client: Client, path: str, data: Any) -> Any:
    return client.put(path, json.dumps(data), content_type="application/json")


def _fields(response: Any) -> set[str]:
    """The field names of a JSON error response, after checking its shape."""
    assert response["Content-Type"].startswith("application/json"), response.content
    body = response.json()
    assert set(body) == {"detail", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    return {e["field"] for e in body["errors"]}


def _upload(client: Client, text: str, query: str = "", name: str = "values.csv") -> Any:
    upload = SimpleUploadedFile(name, text.encode(), content_type="text/csv")
    return client.post(f"{BASE}/observations/import{query}", {"file": upload})


@pytest.fixture
def product(owner: Persona) -> Product:
    assert owner.membership is not None
    return vision.create_product(owner.membership, owner.user, name="Webshop", owner_id=owner.user.pk)


@pytest.fixture
def measure(owner: Persona, product: Product) -> Measure:
    assert owner.membership is not None
    return services.create_measure(
        owner.membership, owner.user, name="Revenue", kva="current_value", product_id=product.pk, unit="EUR"
    )


def _at(days_ago: int) -> str:
    return (timezone.now() - dt.timedelta(days=days_ago)).replace(microsecond=0).isoformat()


# --- OpenAPI --------------------------------------------------------------------------------------


def test_openapi_builds_and_lists_the_value_paths(owner):
    response = owner.api().get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    for path in (
        "/api/v1/orgs/{slug}/measure-catalogue",
        "/api/v1/orgs/{slug}/measures",
        "/api/v1/orgs/{slug}/measures/adopt",
        "/api/v1/orgs/{slug}/measures/export",
        "/api/v1/orgs/{slug}/measures/{measure_id}",
        "/api/v1/orgs/{slug}/measures/{measure_id}/export",
        "/api/v1/orgs/{slug}/measures/{measure_id}/observations",
        "/api/v1/orgs/{slug}/observations/batch",
        "/api/v1/orgs/{slug}/observations/import",
        "/api/v1/orgs/{slug}/observations/{observation_id}/correct",
        "/api/v1/orgs/{slug}/products/{product_id}/kva-balance",
        "/api/v1/orgs/{slug}/products/{product_id}/investments",
        "/api/v1/orgs/{slug}/products/{product_id}/value-measure",
        "/api/v1/orgs/{slug}/products/{product_id}/return",
        "/api/v1/orgs/{slug}/data-sources",
        "/api/v1/orgs/{slug}/data-sources/{source_id}",
        "/api/v1/orgs/{slug}/data-sources/{source_id}/test",
    ):
        assert path in paths, path


# --- catalogue and measures -----------------------------------------------------------------------


def test_catalogue_lists_the_ebm_measures_and_a_product_adopts_one(member, stakeholder, product):
    catalogue = stakeholder.api().get(f"{BASE}/measure-catalogue")
    assert catalogue.status_code == 200
    entries = catalogue.json()
    assert {e["kva"] for e in entries} == {
        "current_value",
        "unrealized_value",
        "time_to_market",
        "ability_to_innovate",
    }
    entry = entries[0]
    adopted = _post(member.api(), f"{BASE}/measures/adopt", {"catalogue": entry["id"], "product": product.pk})
    assert adopted.status_code == 201, adopted.content
    body = adopted.json()
    assert (body["name"], body["kva"], body["catalogue_key"]) == (entry["name"], entry["kva"], entry["key"])
    assert body["product"] == product.pk
    assert body["stale"] is True and body["latest_value"] is None

    again = _post(member.api(), f"{BASE}/measures/adopt", {"catalogue": entry["id"], "product": product.pk})
    assert again.status_code == 409
    missing = _post(member.api(), f"{BASE}/measures/adopt", {"catalogue": 2_000_000, "product": product.pk})
    assert missing.status_code == 404


def test_create_get_patch_with_version_archive_and_restore(member, product):
    created = _post(
        member.api(),
        f"{BASE}/measures",
        {
            "name": "Lead time",
            "kva": "time_to_market",
            "product": product.pk,
            "unit": "days",
            "direction": "lower",
            "cadence_days": 7,
            "baseline": 20,
            "target": 5,
            "target_date": "2027-01-31",
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    mid = body["id"]
    assert (body["direction"], body["cadence_days"], body["version"]) == ("lower", 7, 1)

    got = member.api().get(f"{BASE}/measures/{mid}")
    assert got.status_code == 200
    assert got.json()["last_refresh_error"] == ""

    changed = _patch(member.api(), f"{BASE}/measures/{mid}", {"version": 1, "unit": "hours", "target": None})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["unit"], changed.json()["target"], changed.json()["version"]) == ("hours", None, 2)

    stale = _patch(member.api(), f"{BASE}/measures/{mid}", {"version": 1, "unit": "weeks"})
    assert stale.status_code == 409
    assert "version" in _fields(stale)
    assert Measure.objects.get(pk=mid).unit == "hours"

    assert _patch(member.api(), f"{BASE}/measures/{mid}", {"name": None, "version": 2}).status_code == 422

    archived = _post(member.api(), f"{BASE}/measures/{mid}/archive?version=2")
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None
    assert [m["id"] for m in member.api().get(f"{BASE}/measures").json()] == []
    listed = member.api().get(f"{BASE}/measures?include_archived=true").json()
    assert [m["id"] for m in listed] == [mid]
    restored = _post(member.api(), f"{BASE}/measures/{mid}/restore?version=3")
    assert restored.status_code == 200 and restored.json()["archived_at"] is None


def test_list_filters_by_product_kva_and_staleness(owner, product, measure):
    assert owner.membership is not None
    services.create_measure(owner.membership, owner.user, name="Headcount", kva="current_value")
    fresh = services.create_measure(
        owner.membership, owner.user, name="Deploys", kva="time_to_market", product_id=product.pk
    )
    services.add_observation(owner.membership, owner.user, fresh.pk, 12)
    services.add_observation(
        owner.membership, owner.user, measure.pk, 100, observed_at=timezone.now() - dt.timedelta(days=90)
    )
    api = owner.api()

    def names(query: str) -> list[str]:
        response = api.get(f"{BASE}/measures{query}")
        assert response.status_code == 200, response.content
        return [m["name"] for m in response.json()]

    assert names("") == ["Headcount", "Revenue", "Deploys"]
    assert names(f"?product={product.pk}") == ["Revenue", "Deploys"]
    assert names("?kva=time_to_market") == ["Deploys"]
    assert names("?stale=true") == ["Headcount", "Revenue"]
    assert names("?stale=false") == ["Deploys"]
    revenue = next(m for m in api.get(f"{BASE}/measures").json() if m["name"] == "Revenue")
    assert revenue["latest_value"] == 100 and revenue["stale"] is True
    assert _fields(api.get(f"{BASE}/measures?kva=happiness")) == {"kva"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "X", "kva": "current_value", "baseline": "lots"}, "baseline"),
        ({"name": "X", "kva": "current_value", "target_date": "31/01/2027"}, "target_date"),
        ({"name": "X", "kva": "current_value", "cadence_days": "weekly"}, "cadence_days"),
        ({"name": "X", "kva": "current_value", "colour": "red"}, "colour"),
        ({"name": "X", "kva": "mood"}, "kva"),
        ({"name": "X", "kva": "current_value", "source": "sql"}, "data_source"),
    ],
)
def test_bad_measure_input_is_422_naming_the_field(admin, member, body, field):
    writer = admin if body.get("source") == "sql" else member  # SQL measures are an admin's to write
    response = _post(writer.api(), f"{BASE}/measures", body)
    assert response.status_code == 422, response.content
    assert field in _fields(response)
    assert not Measure.objects.filter(name="X").exists()


# --- observations ---------------------------------------------------------------------------------


def test_single_observation_list_and_correction(member, stakeholder, measure):
    api = member.api()
    pushed = _post(api, f"{BASE}/measures/{measure.pk}/observations", {"value": 10.5, "observed_at": _at(2)})
    assert pushed.status_code == 201, pushed.content
    first = pushed.json()
    assert (first["value"], first["source"], first["recorded_by"]) == (10.5, "api", member.user.email)

    corrected = _post(api, f"{BASE}/observations/{first['id']}/correct", {"value": 11, "note": "typo"})
    assert corrected.status_code == 201, corrected.content
    assert corrected.json()["supersedes"] == first["id"]
    again = _post(api, f"{BASE}/observations/{first['id']}/correct", {"value": 12})
    assert again.status_code == 409

    listed = stakeholder.api().get(f"{BASE}/measures/{measure.pk}/observations").json()
    assert [o["value"] for o in listed] == [11]
    everything = (
        stakeholder.api().get(f"{BASE}/measures/{measure.pk}/observations?include_superseded=true").json()
    )
    assert sorted(o["value"] for o in everything) == [10.5, 11]
    assert {o["superseded"] for o in everything} == {True, False}
    detail = stakeholder.api().get(f"{BASE}/measures/{measure.pk}").json()
    assert detail["latest_value"] == 11 and detail["stale"] is False


def test_observation_list_window_and_paging(owner, measure):
    assert owner.membership is not None
    for days in (40, 20, 10, 5):
        services.add_observation(
            owner.membership,
            owner.user,
            measure.pk,
            days,
            observed_at=timezone.now() - dt.timedelta(days=days),
        )
    api = owner.api()
    since = (timezone.now() - dt.timedelta(days=25)).date().isoformat()
    window = api.get(f"{BASE}/measures/{measure.pk}/observations?since={since}")
    assert [o["value"] for o in window.json()] == [5, 10, 20]
    paged = api.get(f"{BASE}/measures/{measure.pk}/observations?limit=2&offset=1")
    assert [o["value"] for o in paged.json()] == [10, 20]
    assert _fields(api.get(f"{BASE}/measures/{measure.pk}/observations?since=yesterday")) == {"since"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": "ten"}, "value"),
        ({"value": "NaN"}, "value"),
        ({"value": 1, "observed_at": "31.01.2026"}, "observed_at"),
        ({"value": 1, "when": "2026-01-01"}, "when"),
    ],
)
def test_bad_observation_is_422_naming_the_field(member, measure, body, field):
    response = _post(member.api(), f"{BASE}/measures/{measure.pk}/observations", body)
    assert response.status_code == 422, response.content
    assert field in _fields(response)
    assert not Observation.objects.exists()


def test_future_and_duplicate_observations_are_refused(member, measure):
    api = member.api()
    future = (timezone.now() + dt.timedelta(days=2)).isoformat()
    assert "observed_at" in _fields(
        _post(api, f"{BASE}/measures/{measure.pk}/observations", {"value": 1, "observed_at": future})
    )
    when = _at(3)
    assert (
        _post(
            api, f"{BASE}/measures/{measure.pk}/observations", {"value": 1, "observed_at": when}
        ).status_code
        == 201
    )
    duplicate = _post(api, f"{BASE}/measures/{measure.pk}/observations", {"value": 2, "observed_at": when})
    assert duplicate.status_code == 422
    assert "observed_at" in _fields(duplicate)
    assert Observation.objects.count() == 1


def _batch(measure: Measure, key: str, n: int = 3) -> dict[str, Any]:
    return {
        "idempotency_key": key,
        "observations": [
            {"measure": measure.pk, "value": 100 + i, "observed_at": _at(10 - i), "note": f"row {i}"}
            for i in range(n)
        ],
    }


def test_batch_is_idempotent_over_http(member, measure):
    payload = _batch(measure, "nightly-2026-01-31")
    first = _post(member.api(), f"{BASE}/observations/batch", payload)
    assert first.status_code == 201, first.content
    assert first.json()["created"] == 3 and first.json()["replayed"] is False

    retry = _post(member.api(), f"{BASE}/observations/batch", payload)
    assert retry.status_code == 200, retry.content
    body = retry.json()
    assert body["replayed"] is True and body["created"] == 0
    assert body["batch"] == first.json()["batch"] and body["rows"] == 3
    assert Observation.objects.filter(measure=measure).count() == 3
    assert ObservationBatch.objects.filter(idempotency_key="nightly-2026-01-31").count() == 1


def test_a_batch_with_one_bad_row_saves_nothing_and_names_the_row(member, measure):
    payload = _batch(measure, "with-a-bad-row", n=5)
    payload["observations"][3]["value"] = "12,5"
    response = _post(member.api(), f"{BASE}/observations/batch", payload)
    assert response.status_code == 422
    assert _fields(response) == {"observations.3.value"}
    assert not Observation.objects.exists()
    assert not ObservationBatch.objects.exists()

    payload["observations"][3]["value"] = 12.5
    payload["observations"][1]["measure"] = 2_000_000_000
    payload["observations"][4]["observed_at"] = payload["observations"][0]["observed_at"]
    response = _post(member.api(), f"{BASE}/observations/batch", payload)
    assert response.status_code == 422
    assert _fields(response) == {"observations.1.measure", "observations.4.observed_at"}
    assert "observations.1.measure" in response.json()["detail"]
    assert not Observation.objects.exists()

    # the key was not spent by the failed attempts
    payload["observations"][1]["measure"] = measure.pk
    payload["observations"][4]["observed_at"] = _at(1)
    assert _post(member.api(), f"{BASE}/observations/batch", payload).status_code == 201
    assert Observation.objects.count() == 5


def test_a_batch_row_of_another_organisation_is_refused(member, outsider, measure):
    other = services.create_measure(outsider.membership, outsider.user, name="Secret", kva="current_value")
    payload = {"observations": [{"measure": other.pk, "value": 1, "observed_at": _at(1)}]}
    response = _post(member.api(), f"{BASE}/observations/batch", payload)
    assert response.status_code == 422
    assert _fields(response) == {"observations.0.measure"}
    assert "Secret" not in response.content.decode()
    assert not Observation.objects.exists()


# --- file import ----------------------------------------------------------------------------------

CSV_WITH_A_BAD_ROW = (
    "measure,observed_at,value,note\n"
    "Revenue,2026-01-01,100,\n"
    "Revenue,2026-02-01,lots,oops\n"
    "Revenue,2026-03-01,120,\n"
    "Nope,2026-03-01,1,\n"
)


def test_csv_upload_preview_then_import_reports_bad_lines_and_keeps_good_rows(member, measure):
    preview = _upload(member.api(), CSV_WITH_A_BAD_ROW, "?preview=true")
    assert preview.status_code == 200, preview.content
    body = preview.json()
    assert (body["total"], body["valid"], body["invalid"]) == (4, 2, 2)
    assert {(e["line"], e["field"]) for e in body["errors"]} == {(3, "value"), (5, "measure")}
    assert body["measures"] == {"Revenue": 2}
    assert [r["line"] for r in body["rows"]] == [2, 3, 4, 5]
    assert not Observation.objects.exists()

    # The import is a background job (run inline in tests): 202 with the job, its result when done.
    imported = _upload(member.api(), CSV_WITH_A_BAD_ROW, "?idempotency_key=upload-1")
    assert imported.status_code == 202, imported.content
    job = member.api().get(imported["Location"]).json()
    assert (job["kind"], job["status"]) == ("observations.import", "succeeded")
    body = job["result"]
    assert (body["total"], body["created"], body["rejected"]) == (4, 2, 2)
    assert {(e["line"], e["field"]) for e in body["errors"]} == {(3, "value"), (5, "measure")}
    assert sorted(Observation.objects.values_list("value", flat=True)) == [100, 120]
    assert set(Observation.objects.values_list("source", flat=True)) == {"file"}

    retry = _upload(member.api(), CSV_WITH_A_BAD_ROW, "?idempotency_key=upload-1")
    assert retry.status_code == 202
    assert (retry.json()["result"]["created"], retry.json()["result"]["skipped"]) == (0, 2)
    assert Observation.objects.count() == 2


def test_upload_without_a_file_or_with_a_bad_header_is_422(member, measure):
    missing = member.api().post(f"{BASE}/observations/import", {})
    assert missing.status_code == 422
    assert "file" in _fields(missing)
    bad = _upload(member.api(), "when,how much\n2026-01-01,1\n")
    assert bad.status_code == 422
    assert _fields(bad) == {"file"}


# --- export ---------------------------------------------------------------------------------------


def test_export_csv_and_json(owner, stakeholder, measure):
    assert owner.membership is not None
    obs = services.add_observation(owner.membership, owner.user, measure.pk, 5, observed_at=_at(3))
    services.correct_observation(owner.membership, owner.user, obs.pk, 6)
    everything = stakeholder.api().get(f"{BASE}/measures/export")
    assert everything.status_code == 200
    assert everything["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(everything.content.decode())))
    assert sorted((r["value"], r["superseded"]) for r in rows) == [("5.0", "true"), ("6.0", "false")]

    one = stakeholder.api().get(f"{BASE}/measures/{measure.pk}/export?format=json")
    assert one.status_code == 200
    doc = one.json()
    assert [m["name"] for m in doc["measures"]] == ["Revenue"]
    assert len(doc["measures"][0]["observations"]) == 2
    assert _fields(stakeholder.api().get(f"{BASE}/measures/export?format=xml")) == {"format"}
    assert stakeholder.api().get(f"{BASE}/measures/2000000/export").status_code == 404


# --- balance, investment and return ---------------------------------------------------------------


def test_kva_balance_names_the_missing_areas(stakeholder, product, measure):
    response = stakeholder.api().get(f"{BASE}/products/{product.pk}/kva-balance")
    assert response.status_code == 200
    body = response.json()
    assert body["counts"]["current_value"] == 1
    assert set(body["missing"]) == {"unrealized_value", "time_to_market", "ability_to_innovate"}
    assert body["balanced"] is False


def test_investment_value_measure_and_return(owner, member, stakeholder, product, measure):
    assert owner.membership is not None
    start = (timezone.now() - dt.timedelta(days=60)).date()
    end = timezone.now().date()
    services.add_observation(
        owner.membership, owner.user, measure.pk, 100, observed_at=timezone.now() - dt.timedelta(days=59)
    )
    services.add_observation(owner.membership, owner.user, measure.pk, 160, observed_at=_at(1))
    created = _post(
        member.api(),
        f"{BASE}/products/{product.pk}/investments",
        {"period_start": start.isoformat(), "period_end": end.isoformat(), "amount": 3000, "note": "Q1"},
    )
    assert created.status_code == 201, created.content
    assert created.json()["amount"] == 3000
    both = _post(
        member.api(),
        f"{BASE}/products/{product.pk}/investments",
        {"period_start": start.isoformat(), "period_end": end.isoformat(), "amount": 1, "people": 2},
    )
    assert both.status_code == 422 and _fields(both) == {"amount"}
    bad_date = _post(
        member.api(),
        f"{BASE}/products/{product.pk}/investments",
        {"period_start": "soon", "period_end": end.isoformat(), "amount": 1},
    )
    assert _fields(bad_date) == {"period_start"}
    listed = stakeholder.api().get(f"{BASE}/products/{product.pk}/investments").json()
    assert [i["note"] for i in listed] == ["Q1"]

    chosen = _put(member.api(), f"{BASE}/products/{product.pk}/value-measure", {"value_measure": measure.pk})
    assert chosen.status_code == 200, chosen.content
    assert chosen.json() == {"product": product.pk, "value_measure": measure.pk}

    roi = stakeholder.api().get(f"{BASE}/products/{product.pk}/return")
    assert roi.status_code == 200, roi.content
    body = roi.json()
    assert body["value_measure"]["id"] == measure.pk
    assert body["invested"] == pytest.approx(3000)
    assert body["value_delta"] == 60
    assert body["delta_per_unit"] == pytest.approx(60 / 3000)
    assert body["series"]

    cleared = _put(member.api(), f"{BASE}/products/{product.pk}/value-measure", {"value_measure": None})
    assert cleared.json()["value_measure"] is None
    assert stakeholder.api().get(f"{BASE}/products/{product.pk}/return").json()["reason"]
    assert _fields(stakeholder.api().get(f"{BASE}/products/{product.pk}/return?since=now")) == {"since"}


# --- data sources ---------------------------------------------------------------------------------


@pytest.fixture
def duckdb_dir(tmp_path, settings, org_a):
    settings.TRUENORTH_DUCKDB_DIRS = [tmp_path]
    return sources.organisation_directory(org_a)


def test_data_source_config_never_appears_in_any_response(admin, member, stakeholder, duckdb_dir):
    created = _post(
        admin.api(),
        f"{BASE}/data-sources",
        {"name": "Warehouse", "kind": "postgres", "config": {"dsn": DSN}, "timeout_seconds": 5},
    )
    assert created.status_code == 201, created.content
    source = created.json()
    seen = [created]
    seen.append(admin.api().get(f"{BASE}/data-sources"))
    seen.append(member.api().get(f"{BASE}/data-sources"))
    seen.append(_patch(admin.api(), f"{BASE}/data-sources/{source['id']}", {"timeout_seconds": 3, "version": 1}))
    seen.append(_post(admin.api(), f"{BASE}/data-sources/{source['id']}/test"))
    seen.append(admin.api().get(f"{BASE}/history"))
    sql = _post(
        admin.api(),
        f"{BASE}/measures",
        {
            "name": "Orders",
            "kva": "current_value",
            "source": "sql",
            "data_source": source["id"],
            "query": "SELECT 1, 2",
        },
    )
    seen.append(sql)
    seen.append(admin.api().get(f"{BASE}/measures/export?format=json"))
    stored = DataSource.objects.get(pk=source["id"]).config_encrypted
    for response in seen:
        text = response.content.decode()
        assert PASSWORD_IN_DSN not in text, response.request["PATH_INFO"]
        assert DSN not in text
        assert stored not in text
    assert created.json()["config"] == {
        "dsn": "postgres://reader:********@db.internal.example:5432/warehouse"
    }
    assert member.api().get(f"{BASE}/data-sources").json()[0]["config"] == {}
    assert seen[4].status_code == 200 and seen[4].json()["ok"] is False


def test_data_source_admin_only_test_and_delete_refused_while_used(admin, member, duckdb_dir):
    import duckdb

    path = duckdb_dir / "metrics.duckdb"
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE TABLE sales AS SELECT DATE '2026-01-01' AS day, 42.0 AS revenue")
    refused = _post(
        member.api(),
        f"{BASE}/data-sources",
        {"name": "Files", "kind": "duckdb", "config": {"path": str(path)}},
    )
    assert refused.status_code == 403
    outside = _post(
        admin.api(),
        f"{BASE}/data-sources",
        {"name": "Etc", "kind": "duckdb", "config": {"path": "/etc/passwd"}},
    )
    assert outside.status_code == 422 and _fields(outside) == {"path"}
    created = _post(
        admin.api(),
        f"{BASE}/data-sources",
        {"name": "Files", "kind": "duckdb", "config": {"path": str(path)}},
    )
    assert created.status_code == 201, created.content
    sid = created.json()["id"]
    tested = _post(admin.api(), f"{BASE}/data-sources/{sid}/test")
    assert tested.status_code == 200 and tested.json()["ok"] is True, tested.content
    assert _post(member.api(), f"{BASE}/data-sources/{sid}/test").status_code == 403

    sql_measure = {
        "name": "Sales",
        "kva": "current_value",
        "source": "sql",
        "data_source": sid,
        "query": "SELECT day, revenue FROM sales",
    }
    assert _post(member.api(), f"{BASE}/measures", sql_measure).status_code == 403  # SQL: admins write it
    measure = _post(
        admin.api(),
        f"{BASE}/measures",
        {
            "name": "Sales",
            "kva": "current_value",
            "source": "sql",
            "data_source": sid,
            "query": "SELECT day, revenue FROM sales",
        },
    )
    assert measure.status_code == 201, measure.content
    mid = measure.json()["id"]
    refreshed = _post(member.api(), f"{BASE}/measures/{mid}/refresh")
    assert refreshed.status_code == 202, refreshed.content  # a background job (it ran inline here)
    body = refreshed.json()
    assert refreshed["Location"] == body["url"]
    assert (body["status"], body["result"]["created"], body["error"]) == ("succeeded", 1, "")
    after = member.api().get(f"{BASE}/measures/{mid}").json()
    assert after["latest_value"] == 42 and after["last_refreshed_at"]
    change = {"query": "SELECT day FROM sales", "version": after["version"]}
    assert _patch(member.api(), f"{BASE}/measures/{mid}", change).status_code == 403
    assert _patch(admin.api(), f"{BASE}/measures/{mid}", change).status_code == 200
    failed = _post(member.api(), f"{BASE}/measures/{mid}/refresh").json()
    assert failed["status"] == "failed" and "two columns" in failed["error"]
    after = member.api().get(f"{BASE}/measures/{mid}").json()
    assert after["last_refresh_error"] == failed["error"]
    assert after["latest_value"] == 42  # the measure keeps its observations

    in_use = admin.api().delete(f"{BASE}/data-sources/{sid}")
    assert in_use.status_code == 409
    assert admin.api().get(f"{BASE}/data-sources").json()[0]["measures"] == 1
    version = member.api().get(f"{BASE}/measures/{mid}").json()["version"]
    _patch(member.api(), f"{BASE}/measures/{mid}", {"source": "manual", "version": version})
    manual = _post(member.api(), f"{BASE}/measures/{mid}/refresh")
    assert manual.status_code == 422 and _fields(manual) == {"source"}
    assert admin.api().delete(f"{BASE}/data-sources/{sid}").status_code == 204
    assert not DataSource.objects.exists()


# --- roles and isolation --------------------------------------------------------------------------


def _writes(product: Product, measure: Measure, observation: Observation) -> list[tuple[str, str, Any]]:
    return [
        ("post", f"{BASE}/measures", {"name": "New", "kva": "current_value"}),
        ("patch", f"{BASE}/measures/{measure.pk}", {"unit": "x", "version": 1}),
        ("post", f"{BASE}/measures/{measure.pk}/archive?version=1", {}),
        ("post", f"{BASE}/measures/{measure.pk}/refresh", {}),
        ("post", f"{BASE}/measures/adopt", {"catalogue": 1, "product": product.pk}),
        ("post", f"{BASE}/measures/{measure.pk}/observations", {"value": 1}),
        (
            "post",
            f"{BASE}/observations/batch",
            {"observations": [{"measure": measure.pk, "value": 1, "observed_at": _at(1)}]},
        ),
        ("post", f"{BASE}/observations/{observation.pk}/correct", {"value": 2}),
        (
            "post",
            f"{BASE}/products/{product.pk}/investments",
            {"period_start": "2026-01-01", "period_end": "2026-01-31", "amount": 1},
        ),
        ("put", f"{BASE}/products/{product.pk}/value-measure", {"value_measure": measure.pk}),
        ("post", f"{BASE}/data-sources", {"name": "S", "kind": "duckdb", "config": {"path": ""}}),
    ]


def _send(client: Client, method: str, path: str, body: Any) -> Any:
    return getattr(client, method)(path, json.dumps(body), content_type="application/json")


def test_stakeholders_and_read_tokens_cannot_write(owner, member, stakeholder, product, measure):
    assert owner.membership is not None
    observation = services.add_observation(owner.membership, owner.user, measure.pk, 1, observed_at=_at(5))
    before = (Measure.objects.count(), Observation.objects.count())
    for method, path, body in _writes(product, measure, observation):
        assert _send(stakeholder.api(), method, path, body).status_code == 403, (method, path)
        assert _send(member.api_read(), method, path, body).status_code == 403, (method, path)
    upload = SimpleUploadedFile("v.csv", b"measure,observed_at,value\nRevenue,2026-01-01,1\n")
    assert stakeholder.api().post(f"{BASE}/observations/import", {"file": upload}).status_code == 403
    assert (Measure.objects.count(), Observation.objects.count()) == before
    assert stakeholder.api().get(f"{BASE}/measures").status_code == 200
    assert member.api_read().get(f"{BASE}/measures/{measure.pk}").status_code == 200


def test_an_outsider_gets_404_and_learns_nothing(owner, outsider, product, measure):
    assert owner.membership is not None
    observation = services.add_observation(owner.membership, owner.user, measure.pk, 1, observed_at=_at(5))
    reads = [
        f"{BASE}/measures",
        f"{BASE}/measure-catalogue",
        f"{BASE}/measures/{measure.pk}",
        f"{BASE}/measures/{measure.pk}/observations",
        f"{BASE}/measures/export",
        f"{BASE}/products/{product.pk}/kva-balance",
        f"{BASE}/products/{product.pk}/return",
        f"{BASE}/data-sources",
    ]
    for path in reads:
        response = outsider.api().get(path)
        assert response.status_code == 404, path
        assert "Revenue" not in response.content.decode()
    for method, path, body in _writes(product, measure, observation):
        assert _send(outsider.api(), method, path, body).status_code == 404, (method, path)
    # and through their own organisation, org A's ids are unknown
    own = "/api/v1/orgs/bravo-secret"
    assert outsider.api().get(f"{own}/measures/{measure.pk}").status_code == 404
    assert (
        _post(outsider.api(), f"{own}/observations/{observation.pk}/correct", {"value": 9}).status_code == 404
    )
    assert Observation.objects.count() == 1


# --- query counts ---------------------------------------------------------------------------------


def _grow(owner: Persona, product: Product, n: int) -> None:
    assert owner.membership is not None
    start = Measure.objects.count()
    for i in range(start, start + n):
        m = services.create_measure(
            owner.membership,
            owner.user,
            name=f"Measure {i:03}",
            kva=["current_value", "time_to_market"][i % 2],
            product_id=product.pk,
            owner_id=owner.user.pk,
        )
        services.add_observation(owner.membership, owner.user, m.pk, i, observed_at=_at(i % 60 + 1))


@pytest.mark.parametrize("query", ["", "?stale=true", "?kva=current_value"])
def test_the_measure_list_query_count_does_not_grow(owner, product, query):
    api = owner.api()
    api.get(f"{BASE}/measures{query}")  # warm up (token last-used write)
    _grow(owner, product, 5)
    with CaptureQueriesContext(connection) as few:
        assert api.get(f"{BASE}/measures{query}").status_code == 200
    _grow(owner, product, 45)
    with CaptureQueriesContext(connection) as many:
        response = api.get(f"{BASE}/measures{query}")
    assert response.status_code == 200
    assert len(response.json()) >= 20
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
