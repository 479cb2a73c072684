"""API: who am I, personal API tokens, and the JSON shape of every error."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from truenorth.accounts.models import APIToken
from truenorth.accounts.services import create_token

ME = "/api/v1/me"
TOKENS = "/api/v1/tokens"
TOKEN_FIELDS = {"id", "name", "scope", "prefix", "created_at", "last_used_at", "revoked_at"}


def _post(client: Client, path: str, data: Any) -> Any:
    return client.post(path, json.dumps(data), content_type="application/json")


def _error_fields(response: Any) -> set[str]:
    assert response["Content-Type"].startswith("application/json"), response.content
    body = response.json()
    assert set(body) == {"detail", "errors"}
    return {e["field"] for e in body["errors"]}


# --- /me --------------------------------------------------------------------------------------


def test_me(member):
    response = member.api().get(ME)
    assert response.status_code == 200
    assert response.json() == {"id": member.user.pk, "email": "member@a.example", "name": "Member A"}
    assert member.api_read().get(ME).json()["id"] == member.user.pk


def test_me_needs_a_token_not_a_session(member):
    assert member.client.get(ME).status_code == 401
    assert Client().get(ME).status_code == 401


# --- tokens -----------------------------------------------------------------------------------


def test_list_tokens_shows_mine_without_secrets(member, outsider):
    response = member.api().get(TOKENS)
    assert response.status_code == 200
    rows = response.json()
    assert {(r["name"], r["scope"]) for r in rows} == {("tests", "read-write"), ("tests-read", "read")}
    for row in rows:
        assert set(row) == TOKEN_FIELDS
        assert row["revoked_at"] is None
    assert member.token.encode() not in response.content
    assert member.read_token.encode() not in response.content
    stored = APIToken.objects.filter(user=member.user)
    assert not any(t.token_hash.encode() in response.content for t in stored)
    assert outsider.token[:10] not in {r["prefix"] for r in rows}


def test_create_token_returns_secret_once_and_stores_only_its_hash(member):
    response = _post(member.api(), TOKENS, {"name": "CI pipeline", "scope": "read"})
    assert response.status_code == 201, response.content
    body = response.json()
    raw = body["token"]
    assert set(body) == TOKEN_FIELDS | {"token"}
    assert raw.startswith("tn_")
    assert len(raw) > 40
    assert body["prefix"] == raw[:10]
    assert (body["name"], body["scope"]) == ("CI pipeline", "read")

    token = APIToken.objects.get(pk=body["id"])
    assert token.token_hash != raw
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    for field in APIToken._meta.concrete_fields:
        value = str(getattr(token, field.attname))
        assert raw not in value, field.name
    if connection.vendor == "sqlite":
        # Nowhere in the whole database.
        assert not any(raw in line for line in connection.connection.iterdump())

    # Shown once: the listing never repeats it.
    listed = member.api().get(TOKENS)
    assert raw.encode() not in listed.content
    assert body["id"] in {r["id"] for r in listed.json()}

    # The new token works, with its scope.
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(ME).json()["email"] == member.user.email
    assert _post(client, TOKENS, {"name": "escalate", "scope": "read-write"}).status_code == 403
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_create_read_write_token(member):
    response = _post(member.api(), TOKENS, {"name": "laptop", "scope": "read-write"})
    assert response.status_code == 201
    client = Client(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert _post(client, TOKENS, {"name": "from the new token"}).status_code == 201


def test_default_scope_is_read(member):
    response = _post(member.api(), TOKENS, {"name": "default"})
    assert response.status_code == 201
    assert response.json()["scope"] == "read"


@pytest.mark.parametrize("scope", ["admin", "write", "READ", "", None, 1, ["read"]])
def test_token_scope_is_validated(member, scope):
    before = APIToken.objects.count()
    response = _post(member.api(), TOKENS, {"name": "bad scope", "scope": scope})
    assert response.status_code == 422
    assert "scope" in _error_fields(response)
    assert APIToken.objects.count() == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "", "scope": "read"}, "name"),
        ({"name": "   ", "scope": "read"}, "name"),
        ({"name": "x" * 101, "scope": "read"}, "name"),
        ({"scope": "read"}, "name"),
        ({"name": "fine", "expires": "never"}, "expires"),
    ],
)
def test_token_input_is_validated(member, payload, field):
    response = _post(member.api(), TOKENS, payload)
    assert response.status_code == 422
    assert field in _error_fields(response)


def test_creating_a_token_needs_a_read_write_token(member):
    response = _post(member.api_read(), TOKENS, {"name": "sneaky", "scope": "read-write"})
    assert response.status_code == 403
    assert not APIToken.objects.filter(name="sneaky").exists()


def test_revoke_token(member):
    _, raw = create_token(member.user, "to revoke", "read")
    token = APIToken.objects.get(user=member.user, name="to revoke")
    victim = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert victim.get(ME).status_code == 200

    response = member.api().delete(f"{TOKENS}/{token.pk}")
    assert response.status_code == 204
    assert response.content == b""
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert victim.get(ME).status_code == 401
    listed = {r["id"]: r for r in member.api().get(TOKENS).json()}
    assert listed[token.pk]["revoked_at"] is not None
    # Revoking again is harmless.
    assert member.api().delete(f"{TOKENS}/{token.pk}").status_code == 204


def test_revoking_the_token_in_use_stops_it_at_once(member):
    own = APIToken.objects.get(user=member.user, name="tests")
    assert member.api().delete(f"{TOKENS}/{own.pk}").status_code == 204
    assert member.api().get(ME).status_code == 401


def test_cannot_revoke_someone_elses_token(member, outsider):
    theirs = APIToken.objects.get(user=outsider.user, name="tests")
    response = member.api().delete(f"{TOKENS}/{theirs.pk}")
    assert response.status_code == 404
    assert _error_fields(response) == set()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert outsider.api().get(ME).status_code == 200
    assert member.api().delete(f"{TOKENS}/999999").status_code == 404


def test_read_token_cannot_revoke(member):
    own = APIToken.objects.get(user=member.user, name="tests")
    assert member.api_read().delete(f"{TOKENS}/{own.pk}").status_code == 403
    own.refresh_from_db()
    assert own.revoked_at is None


def test_inactive_user_token_stops_working(member):
    member.user.is_active = False
    member.user.save()
    assert member.api().get(ME).status_code == 401


# --- every error is JSON ----------------------------------------------------------------------


def _revoked_client(persona: Any) -> Client:
    token, raw = create_token(persona.user, "revoked", "read-write")
    APIToken.objects.filter(pk=token.pk).update(revoked_at=token.created_at)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


ERROR_CASES = [
    # (name, status, how to make the request)
    ("no token", 401, lambda p: Client().get(ME)),
    ("bad token", 401, lambda p: Client(HTTP_AUTHORIZATION="Bearer tn_not-a-real-token").get(ME)),
    ("empty bearer", 401, lambda p: Client(HTTP_AUTHORIZATION="Bearer ").get(ME)),
    ("basic auth", 401, lambda p: Client(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz").get(TOKENS)),
    ("revoked token", 401, lambda p: _revoked_client(p).get(ME)),
    ("no token on a write", 401, lambda p: _post(Client(), TOKENS, {"name": "x"})),
    ("unknown path", 404, lambda p: p.api().get("/api/v1/does-not-exist")),
    ("unknown path, no token", 404, lambda p: Client().get("/api/v1/does-not-exist")),
    ("unknown nested path", 404, lambda p: p.api().get("/api/v1/orgs/alpha/nothing-here")),
    ("unknown organisation", 404, lambda p: p.api().get("/api/v1/orgs/no-such-org")),
    ("unknown token id", 404, lambda p: p.api().delete(f"{TOKENS}/987654")),
    ("invalid field", 422, lambda p: _post(p.api(), TOKENS, {"name": "x", "scope": "root"})),
    ("invalid path parameter", 422, lambda p: p.api().delete(f"{TOKENS}/abc")),
    ("invalid query parameter", 422, lambda p: p.api().get("/api/v1/orgs/alpha/history?limit=0")),
    ("read-only token writing", 403, lambda p: _post(p.api_read(), TOKENS, {"name": "x"})),
    ("malformed JSON", 422, lambda p: p.api().post(TOKENS, "{oops", content_type="application/json")),
    ("method not allowed", 405, lambda p: p.api().put(ME, "{}", content_type="application/json")),
]


@pytest.mark.parametrize(("status", "make"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_every_api_error_is_json_with_detail_and_errors(member, status, make):
    response = make(member)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), (
        f"{status} answered {response['Content-Type']}: {response.content[:200]!r}"
    )
    body = response.json()
    assert set(body) == {"detail", "errors"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["errors"], list)
    for error in body["errors"]:
        assert set(error) == {"field", "message"}
    if status == 422:
        assert body["errors"], "a 422 names at least one field"
