"""Fixtures of the single sign-on tests: the real OpenID Connect provider of tests/oidc_provider.py (one per
test module, reset for each test) and TrueNorth configured to use it; `sign_in_through` walks the flow
(Django's test client for TrueNorth, `requests` over HTTP for the provider)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.http import HttpResponse
from django.test import Client

from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProvider
from truenorth.accounts import sso
from truenorth.core import telemetry

CALLBACK = "http://testserver/accounts/sso/callback/"


@pytest.fixture(scope="module")
def _running_provider() -> Iterator[OIDCProvider]:
    with OIDCProvider([CALLBACK]).running() as provider:
        yield provider


@pytest.fixture
def provider(_running_provider: OIDCProvider, settings, org_a) -> Iterator[OIDCProvider]:
    """The provider, with correct answers and user Ada (ada@example.org, verified); TrueNorth signs people
    in through it, and verified example.org addresses join organisation A as members."""
    _running_provider.reset([CALLBACK])
    settings.SITE_URL = "http://testserver"
    settings.TRUENORTH_OIDC_ISSUER = _running_provider.issuer
    settings.TRUENORTH_OIDC_CLIENT_ID = CLIENT_ID
    settings.TRUENORTH_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.TRUENORTH_OIDC_SCOPES = ["openid", "email", "profile"]
    settings.TRUENORTH_OIDC_BUTTON_LABEL = "Sign in with Example SSO"
    settings.TRUENORTH_OIDC_ORGANISATION = org_a.slug
    settings.TRUENORTH_OIDC_JOIN_DOMAINS = ["example.org"]
    settings.TRUENORTH_OIDC_DEFAULT_ROLE = "member"
    settings.TRUENORTH_OIDC_TIMEOUT_SECONDS = 5
    settings.TRUENORTH_PASSWORD_SIGN_IN = True
    sso.forget_provider()
    yield _running_provider
    sso.forget_provider()


@pytest.fixture
def failures(monkeypatch) -> list[str]:
    """The sign-in failures reported to telemetry."""
    seen: list[str] = []
    monkeypatch.setattr(telemetry, "sign_in_failed", seen.append)
    return seen


def start(client: Client, next_url: str = "") -> str:
    """Press the button: the provider's authorisation URL TrueNorth redirects to."""
    response = client.get("/accounts/sso/login/" + (f"?next={next_url}" if next_url else ""))
    assert response.status_code == 302, response.content.decode()
    return str(response["Location"])


def at_provider(url: str) -> str:
    """The browser at the provider (which approves the user): the callback URL it sends back to."""
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK), location
    return location


def callback(client: Client, location: str) -> HttpResponse:
    parts = urlsplit(location)
    return client.get(parts.path + "?" + parts.query)  # type: ignore[return-value]


def sign_in_through(client: Client, next_url: str = "") -> HttpResponse:
    """The whole flow: button, provider, callback; TrueNorth's answer to the callback."""
    return callback(client, at_provider(start(client, next_url)))


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
