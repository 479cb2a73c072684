"""Request body limits (issue 8, item 12): the largest schema-valid observation batch fits the JSON body
limit, and a body over the limit is a 413 naming the limit (JSON in the API, a page on the web), never a
500 (Django's RequestDataTooBig used to reach the API's catch-all)."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlencode

import pytest
from django.conf import settings as django_settings

from conftest import Persona
from truenorth.measures import services
from truenorth.measures.models import Measure, Observation
from truenorth.measures.schemas import MAX_BATCH
from truenorth.orgs.models import Organisation

BASE = "/api/v1/orgs/alpha"
NOTE_CHARS = 500  # BatchRowIn.note's max_length


@pytest.fixture
def measure(owner: Persona) -> Measure:
    assert owner.membership is not None
    return services.create_measure(owner.membership, owner.user, name="Signups", kva="current_value")


def _batch(measure_id: int, rows: int, note: str) -> dict[str, object]:
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return {
        "idempotency_key": "largest-batch",
        "observations": [
            {
                "measure": measure_id,
                "value": 1234567.891 + i,
                "observed_at": (start + dt.timedelta(minutes=i)).isoformat(),
                "note": note,
            }
            for i in range(rows)
        ],
    }


def test_the_largest_batch_fits_the_json_body_limit_in_any_encoding() -> None:
    worst_row = {
        "measure": 2**63 - 1,
        "value": -2.2250738585072014e-308,
        "observed_at": "2026-11-30T15:22:50.123456+14:00",
        "note": "\U0001f600" * NOTE_CHARS,  # 12 bytes each once \u-escaped (json.dumps' default)
    }
    worst = {"idempotency_key": "\U0001f600" * 200, "observations": [worst_row] * MAX_BATCH}
    assert len(json.dumps(worst).encode()) <= django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert len(json.dumps(worst, ensure_ascii=False).encode()) <= django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def test_a_schema_valid_batch_of_the_maximum_size_is_accepted(member: Persona, measure: Measure) -> None:
    body = json.dumps(_batch(measure.pk, MAX_BATCH, "é" * NOTE_CHARS))  # \u00e9: 6 bytes a character
    assert len(body) > 2.5 * 2**20  # Django's default limit, which made this a 500
    response = member.api().post(f"{BASE}/observations/batch", body, content_type="application/json")
    assert response.status_code == 201, response.content[:500]
    assert Observation.objects.filter(measure=measure).count() == MAX_BATCH


def test_a_json_body_over_the_limit_is_a_413_naming_the_limit(
    member: Persona, measure: Measure, settings
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2**20
    body = json.dumps(_batch(measure.pk, 5000, "x" * 200))
    assert len(body) > 2**20
    response = member.api().post(f"{BASE}/observations/batch", body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    answer = response.json()
    assert answer["limit_bytes"] == 2**20
    assert "1 MB" in answer["detail"]
    assert [e["field"] for e in answer["errors"]] == ["body"]
    assert not Observation.objects.exists()


def test_a_patch_over_the_limit_is_a_413_too(member: Persona, measure: Measure, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"version": measure.version, "description": "x" * 2000})
    response = member.api().patch(f"{BASE}/measures/{measure.pk}", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["limit_bytes"] == 1000
    measure.refresh_from_db()
    assert (measure.description, measure.version) == ("", 1)


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_a_web_form_over_the_limit_gets_a_413_page(admin: Persona, settings, encoding: str) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    data = {"name": "x" * 5000, "slug": "alpha", "version": "1"}
    if encoding == "urlencoded":  # refused by its Content-Length, before anything reads it
        response = admin.client.post(
            "/o/alpha/settings/", urlencode(data), content_type="application/x-www-form-urlencoded"
        )
    else:  # multipart may carry a file, so Django refuses the fields while reading them
        response = admin.client.post("/o/alpha/settings/", data)
    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert "Too large" in response.content.decode()
    assert Organisation.objects.get(slug="alpha").name == "Alpha Org"
