"""Personal API tokens: a revoked token stops working on the very next request, only its owner can
revoke it, and every use is recorded."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from truenorth.accounts.models import APIToken, hash_token
from truenorth.accounts.services import LAST_USED_RESOLUTION, create_token

if TYPE_CHECKING:
    from conftest import Persona


def token_of(raw: str) -> APIToken:
    return APIToken.objects.get(token_hash=hash_token(raw))


def bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def assert_401(client: Client, method: str = "get", url: str = "/api/v1/me") -> None:
    response = getattr(client, method)(url)
    assert response.status_code == 401, (method, url, response.status_code, response.content)
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


def test_a_token_revoked_through_the_api_stops_working_on_the_very_next_request(owner: Persona) -> None:
    client = owner.api()
    assert client.get("/api/v1/me").status_code == 200
    token = token_of(owner.token)
    assert client.delete(f"/api/v1/tokens/{token.pk}").status_code == 204
    # The very next request, on the same client, is refused: reads and writes alike.
    assert_401(client)
    assert_401(client, "get", "/api/v1/orgs/alpha")
    assert_401(client, "post", "/api/v1/tokens")
    assert_401(client, "delete", f"/api/v1/tokens/{token_of(owner.read_token).pk}")
    token.refresh_from_db()
    assert token.revoked_at is not None
    # Revoking one token leaves the user's other tokens working.
    assert owner.api_read().get("/api/v1/me").status_code == 200


def test_a_token_can_revoke_another_token_of_the_same_user(owner: Persona) -> None:
    read_token = token_of(owner.read_token)
    assert owner.api_read().get("/api/v1/me").status_code == 200
    assert owner.api().delete(f"/api/v1/tokens/{read_token.pk}").status_code == 204
    assert_401(owner.api_read())
    assert owner.api().get("/api/v1/me").status_code == 200


def test_a_token_revoked_on_the_web_stops_working_on_the_very_next_request(owner: Persona) -> None:
    api = owner.api()
    assert api.get("/api/v1/me").status_code == 200
    token = token_of(owner.token)
    response = owner.client.post(reverse("accounts:revoke_token", args=[token.pk]))
    assert response.status_code == 302
    assert response.headers["Location"] == reverse("accounts:tokens")
    assert_401(api)
    token.refresh_from_db()
    assert token.revoked_at is not None
    page = owner.client.get(reverse("accounts:tokens")).content.decode()
    assert "revoked" in page


def test_revoking_another_users_token_through_the_api_answers_404_and_leaves_it_active(
    owner: Persona, outsider: Persona
) -> None:
    victim = token_of(owner.token)
    response = outsider.api().delete(f"/api/v1/tokens/{victim.pk}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "errors": []}
    # ... exactly what a token that does not exist gets.
    assert outsider.api().delete("/api/v1/tokens/2147483000").json() == response.json()
    victim.refresh_from_db()
    assert victim.revoked_at is None
    assert owner.api().get("/api/v1/me").status_code == 200


def test_revoking_another_users_token_on_the_web_answers_404_and_leaves_it_active(
    owner: Persona, outsider: Persona
) -> None:
    victim = token_of(owner.token)
    response = outsider.client.post(reverse("accounts:revoke_token", args=[victim.pk]))
    assert response.status_code == 404
    victim.refresh_from_db()
    assert victim.revoked_at is None
    assert owner.api().get("/api/v1/me").status_code == 200


def test_another_users_tokens_are_not_listed(owner: Persona, outsider: Persona) -> None:
    mine = {t["id"] for t in outsider.api().get("/api/v1/tokens").json()}
    assert mine == set(APIToken.objects.filter(user=outsider.user).values_list("pk", flat=True))
    assert token_of(owner.token).pk not in mine
    page = outsider.client.get(reverse("accounts:tokens")).content.decode()
    assert token_of(owner.token).prefix not in page


def test_the_web_revoke_needs_a_post(owner: Persona) -> None:
    token = token_of(owner.token)
    assert owner.client.get(reverse("accounts:revoke_token", args=[token.pk])).status_code == 405
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_token_records_when_it_was_last_used(owner: Persona) -> None:
    token = token_of(owner.token)
    assert token.last_used_at is None
    before = timezone.now()
    assert owner.api().get("/api/v1/me").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert before <= token.last_used_at <= timezone.now()
    # A failed (refused) use still counts as a use of that token.
    read = token_of(owner.read_token)
    assert owner.api_read().post("/api/v1/tokens", "{}", content_type="application/json").status_code == 403
    read.refresh_from_db()
    assert read.last_used_at is not None


def test_last_used_is_refreshed_once_the_resolution_has_passed(owner: Persona) -> None:
    token = token_of(owner.token)
    long_ago = timezone.now() - LAST_USED_RESOLUTION - dt.timedelta(seconds=5)
    APIToken.objects.filter(pk=token.pk).update(last_used_at=long_ago)
    assert owner.api().get("/api/v1/me").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None and token.last_used_at > long_ago


def test_a_revoked_token_is_not_marked_as_used(owner: Persona) -> None:
    token = token_of(owner.token)
    owner.api().delete(f"/api/v1/tokens/{token.pk}")
    token.refresh_from_db()
    used = token.last_used_at
    assert_401(owner.api())
    token.refresh_from_db()
    assert token.last_used_at == used


def test_a_new_token_works_at_once_and_is_shown_only_once(owner: Persona) -> None:
    response = owner.api().post(
        "/api/v1/tokens", {"name": "ci", "scope": "read"}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    raw = response.json()["token"]
    assert bearer(raw).get("/api/v1/me").json()["email"] == owner.user.email
    assert all("token" not in t for t in owner.api().get("/api/v1/tokens").json())
    assert raw not in owner.client.get(reverse("accounts:tokens")).content.decode()


def test_a_deactivated_users_tokens_stop_working(owner: Persona) -> None:
    owner.user.is_active = False
    owner.user.save(update_fields=["is_active"])
    assert_401(owner.api())
    assert_401(owner.api_read())


def test_a_token_that_was_never_issued_is_refused(owner: Persona) -> None:
    _, raw = create_token(owner.user, "spare", "read")
    assert_401(bearer(raw + "x"))
    assert_401(bearer(raw[:-1]))
    assert_401(bearer(""))
