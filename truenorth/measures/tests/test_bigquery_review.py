"""Review (finding 6): a BigQuery source's service account key (`credentials_info`, a JSON object) is
accepted through the API and the form, stored encrypted, shown masked, kept on edit, and its
`token_uri` (where google-auth posts the signed login) can only be Google's."""

from __future__ import annotations

import json
from typing import Any

import pytest

from truenorth.measures import sources
from truenorth.measures.models import DataSource
from truenorth.measures.sources import MASK

BASE = "/api/v1/orgs/alpha"
SECRET = "-----BEGIN PRIVATE KEY-----\\nHunter2-Key\\n-----END PRIVATE KEY-----\\n"
KEY = {
    "type": "service_account",
    "project_id": "acme",
    "private_key_id": "abc123",
    "private_key": SECRET,
    "client_email": "reader@acme.iam.gserviceaccount.com",
    "client_id": "1234567890",
    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    "token_uri": "https://oauth2.googleapis.com/token",
    "universe_domain": "googleapis.com",
}


@pytest.fixture(autouse=True)
def _bigquery_offered(settings: Any) -> None:
    settings.TRUENORTH_ENGINES_DRIVERS = ["bigquery"]


def _create(admin: Any, credentials_info: Any, name: str = "BQ") -> Any:
    config = {"driver": "bigquery", "params": {"project": "acme", "credentials_info": credentials_info}}
    body = {"name": name, "kind": "bigquery", "config": config}
    return admin.api().post(f"{BASE}/data-sources", json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("given", [KEY, json.dumps(KEY)])
def test_a_service_account_key_is_accepted_encrypted_and_shown_masked(admin: Any, given: Any) -> None:
    created = _create(admin, given)
    assert created.status_code == 201, created.content
    assert "Hunter2-Key" not in created.content.decode()
    assert created.json()["config"]["params"]["credentials_info"] == MASK
    stored = DataSource.objects.get(pk=created.json()["id"])
    assert "Hunter2-Key" not in stored.config_encrypted
    assert sources.decrypt_config(stored)["params"]["credentials_info"] == KEY
    listed = admin.api().get(f"{BASE}/data-sources")
    assert "Hunter2-Key" not in listed.content.decode()


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ({**KEY, "token_uri": "http://169.254.169.254/computeMetadata/v1/"}, "token_uri"),
        ({**KEY, "token_uri": "http://127.0.0.1:5432/token"}, "token_uri"),
        ({**KEY, "token_uri": "https://oauth2.googleapis.com.evil.example/token"}, "token_uri"),
        ({**KEY, "universe_domain": "evil.example"}, "universe_domain"),
        ({**KEY, "token_endpoint": "https://evil.example/"}, "token_endpoint"),
        ({**KEY, "private_key": {"nested": 1}}, "private_key"),
    ],
)
def test_a_key_that_would_send_the_login_elsewhere_is_refused(admin: Any, key: Any, field: str) -> None:
    refused = _create(admin, key)
    assert refused.status_code == 422, refused.content
    fields = [e["field"] for e in refused.json()["errors"]]
    assert fields == [f"config.params.credentials_info.{field}"]
    assert not DataSource.objects.filter(name="BQ").exists()


@pytest.mark.parametrize("given", ["not json", "[1, 2]", "{}", 42])
def test_a_key_that_is_not_an_object_is_refused(admin: Any, given: Any) -> None:
    refused = _create(admin, given)
    assert refused.status_code == 422, refused.content
    assert [e["field"] for e in refused.json()["errors"]] == ["config.params.credentials_info"]


def test_an_edit_with_the_masked_key_keeps_it(admin: Any) -> None:
    created = _create(admin, KEY).json()
    config = {"driver": "bigquery", "params": {"project": "acme", "credentials_info": MASK, "dataset": "d"}}
    edited = admin.api().patch(
        f"{BASE}/data-sources/{created['id']}",
        json.dumps({"version": created["version"], "config": config}),
        content_type="application/json",
    )
    assert edited.status_code == 200, edited.content
    stored = DataSource.objects.get(pk=created["id"])
    assert sources.decrypt_config(stored)["params"]["credentials_info"] == KEY
