"""Body limits answered with clear 4xx in the API and on the web (tests/test_limits_server.py runs the
same through the real server, chunked bodies included)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
MANY = {f"f{i}": "1" for i in range(1500)}  # over DATA_UPLOAD_MAX_NUMBER_FIELDS (1000)


def test_too_many_form_fields_in_the_api_is_413_naming_body(owner) -> None:
    response = owner.api().post("/api/v1/orgs/alpha/observations/import", data=MANY)
    assert response.status_code == 413
    assert response.json()["errors"] == [
        {"field": "body", "message": "The request has more than the 1000 form fields this server accepts."}
    ]


def test_too_many_form_fields_on_the_web_is_the_413_page(owner) -> None:
    response = owner.client.post("/o/alpha/settings/", data=MANY)
    assert response.status_code == 413
    assert b"more than the 1000 form fields" in response.content


def test_malformed_json_is_422_naming_body(owner) -> None:
    response = owner.api().post("/api/v1/orgs", data=b'{"name": "Broken",', content_type="application/json")
    assert response.status_code == 422
    assert response.json() == {
        "detail": "The request body is not valid JSON.",
        "errors": [{"field": "body", "message": "The request body is not valid JSON."}],
    }


def test_a_declared_body_over_the_limit_is_413_before_it_is_read(owner, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"name": "x" * 2000})
    response = owner.api().post("/api/v1/orgs", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "body"


def test_a_chunked_body_the_server_cannot_end_is_411(owner) -> None:
    response = Client().generic(
        "POST",
        "/api/v1/orgs",
        b"",
        content_type="application/json",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",
        HTTP_AUTHORIZATION=f"Bearer {owner.token}",
    )
    assert response.status_code == 411
    assert response.json()["errors"][0]["field"] == "body"
