"""Real-browser single sign-on: on the real `truenorth serve` configured (through its environment) with the
local OpenID Connect provider of tests/oidc_provider.py and password sign-in switched off, a newcomer
from the organisation's domain presses "Sign in with Acme SSO" on the login page, signs in at the
provider's own form, and lands signed in on the organisation's dashboard.

The provider runs in this test process; the server is another process, so it reaches the provider over
HTTP like any identity provider. Every page is watched (tests/browsing.py): the provider's pages are the
only other host the browser may visit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests import live_server
from tests.browsing import watched
from tests.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProvider

pytestmark = pytest.mark.browser
OWNER_PASSWORD = "acme-owner-password-1234"
SERVER_STARTUP = 300.0  # migrate, collectstatic (compressed copies) on a busy 2-core machine


@dataclass
class SSOServer:
    base_url: str
    provider: OIDCProvider


@pytest.fixture(scope="module")
def sso_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSOServer]:
    """The provider, then TrueNorth (organisation "Acme", example.org joins as member, no passwords)."""
    data_dir: Path = tmp_path_factory.mktemp("truenorth-sso")
    port = live_server.free_port()
    base_url = f"http://{live_server.HOST}:{port}"
    with (
        OIDCProvider([base_url + "/accounts/sso/callback/"]).running() as provider,
        live_server.fresh_database_url(data_dir, "sso") as database_url,
    ):
        env = live_server.server_env(
            data_dir,
            database_url,
            SITE_URL=base_url,
            TRUENORTH_OIDC_ISSUER=provider.issuer,
            TRUENORTH_OIDC_CLIENT_ID=CLIENT_ID,
            TRUENORTH_OIDC_CLIENT_SECRET=CLIENT_SECRET,
            TRUENORTH_OIDC_BUTTON_LABEL="Sign in with Acme SSO",
            TRUENORTH_OIDC_ORGANISATION="acme",
            TRUENORTH_OIDC_JOIN_DOMAINS="example.org",
            TRUENORTH_OIDC_DEFAULT_ROLE="member",
            TRUENORTH_PASSWORD_SIGN_IN="false",
        )
        for args in (
            ["migrate"],
            ["createuser", "owner@acme.example", "--password", OWNER_PASSWORD, "--create-org", "Acme"],
        ):
            done = live_server.run(args, env, timeout=180, cwd=data_dir)
            if done.returncode != 0:
                pytest.fail(f"`truenorth {' '.join(args)}` failed:\n{done.stdout}\n{done.stderr}")
        log = data_dir / "server.log"
        server = live_server.start_server(port, 1, env, data_dir, log)
        try:
            live_server.wait_until_healthy(base_url, [server], SERVER_STARTUP, log.read_text)
            yield SSOServer(base_url, provider)
        finally:
            live_server.stop(server)


def test_a_newcomer_signs_in_through_the_identity_provider_and_lands_in_the_organisation(
    sso_server: SSOServer, browser: Browser
) -> None:
    provider = sso_server.provider
    provider.reset()
    provider.behaviour.auto_approve = False  # the provider shows its own sign-in form
    with watched(browser, sso_server.base_url) as web:
        try:
            page = web.page
            page.goto("/accounts/login/")
            expect(page.get_by_label("Password")).to_have_count(0)  # password sign-in is off
            page.get_by_role("button", name="Sign in with Acme SSO").click()

            expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
            assert page.url.startswith(provider.issuer + "/authorize?")
            page.get_by_label("User name").fill("ada")
            page.get_by_label("Password").fill("wrong")
            page.get_by_role("button", name="Sign in to the provider").click()
            expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
            page.get_by_label("User name").fill("ada")
            page.get_by_label("Password").fill(provider.user.password)
            page.get_by_role("button", name="Sign in to the provider").click()

            expect(page.get_by_test_id("dashboard-title")).to_be_visible()
            expect(page).to_have_url(re.compile(re.escape(sso_server.base_url) + r"/o/acme/$"))
            expect(page.locator("summary", has_text="account menu")).to_contain_text("Ada Lovelace")
            assert len(provider.token_requests) == 1 and provider.token_requests[0]["code_verifier"]
        finally:
            # The provider is the one other host this test visits on purpose.
            own = provider.base_url + "/"
            web.watch.requests[:] = [url for url in web.watch.requests if not url.startswith(own)]
