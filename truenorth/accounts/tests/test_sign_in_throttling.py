"""Sign-in throttling that no stranger can turn against an account's owner.

A stranger's failed passwords make an account's password alone insufficient for a while, but its owner
still signs in with the right password: at once from a browser they signed in from before, or from a new
one after opening the sign-in link e-mailed to them. Failures per client address are counted on the real
client address, read through the configured trusted proxies, which a client cannot spoof. Old attempts
are purged by a periodic job.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from conftest import PASSWORD
from truenorth.accounts import jobs, services
from truenorth.accounts.models import LoginAttempt

if TYPE_CHECKING:
    from conftest import Persona

LOGIN = reverse("accounts:login")
LOGOUT = reverse("accounts:logout")
LINK_RE = re.compile(r"https?://[^/\s]+(/accounts/login/link/[^/\s]+/)")
PROXY = "10.0.0.2"


@pytest.fixture(autouse=True)
def _limits(settings) -> None:
    settings.LOGIN_MAX_FAILURES_PER_EMAIL = 5
    settings.LOGIN_MAX_FAILURES_PER_IP = 20
    settings.TRUENORTH_TRUSTED_PROXIES = []


def _login(client: Client, email: str, password: str, ip: str = "198.51.100.1", **headers: str):
    meta: dict[str, Any] = {"REMOTE_ADDR": ip, **headers}
    return client.post(LOGIN, {"email": email, "password": password}, **meta)


def _signed_in(client: Client) -> str | None:
    return client.session.get(SESSION_KEY)


def _stranger_fails(email: str, times: int = 6) -> None:
    for i in range(times):
        response = _login(Client(), email, f"guess-{i}-password", ip=f"203.0.113.{i + 1}")
        assert response.status_code in (200, 429)


def _link_in_mail() -> str:
    assert len(mail.outbox) == 1, [m.subject for m in mail.outbox]
    match = LINK_RE.search(str(mail.outbox[0].body))
    assert match, mail.outbox[0].body
    return match.group(1)


# --- a stranger against a known account ---------------------------------------------------------


def test_a_strangers_bad_passwords_do_not_stop_the_owner_who_opens_the_emailed_link(owner: Persona) -> None:
    _stranger_fails(owner.user.email)

    # The owner, in a browser that never signed in: the right password alone is not enough for now ...
    browser = Client()
    response = _login(browser, owner.user.email, PASSWORD)
    assert response.status_code == 429
    assert b"We e-mailed a sign-in link" in response.content
    assert _signed_in(browser) is None
    assert mail.outbox[0].to == [owner.user.email]

    # ... the e-mailed link, opened in that browser, signs nobody in by itself ...
    link = _link_in_mail()
    confirmed = browser.get(link)
    assert confirmed.status_code == 302
    assert confirmed["Location"].startswith(LOGIN)
    assert _signed_in(browser) is None
    # ... but now the right password works (however many failures the stranger adds meanwhile).
    _stranger_fails(owner.user.email, 3)
    response = _login(browser, owner.user.email, PASSWORD)
    assert response.status_code == 302
    assert _signed_in(browser) == str(owner.user.pk)
    assert not LoginAttempt.objects.filter(email=owner.user.email).exists()


def test_the_emailed_link_works_once_and_only_in_the_browser_that_opened_it(owner: Persona) -> None:
    _stranger_fails(owner.user.email)
    browser = Client()
    _login(browser, owner.user.email, PASSWORD)
    link = _link_in_mail()

    # The stranger does not have the link; a browser that did not open it still needs it.
    assert _login(Client(), owner.user.email, PASSWORD).status_code == 429

    browser.get(link)
    assert _login(browser, owner.user.email, PASSWORD).status_code == 302
    browser.post(LOGOUT)
    # Once used to sign in, the link is spent: with the stranger back at it, it no longer helps.
    _stranger_fails(owner.user.email)
    again = Client()
    response = again.get(link, follow=True)
    assert b"no longer" in response.content or b"already used" in response.content
    assert _login(again, owner.user.email, PASSWORD).status_code == 429


def test_a_forged_link_is_refused(owner: Persona) -> None:
    _stranger_fails(owner.user.email)
    client = Client()
    response = client.get(reverse("accounts:sign_in_link", kwargs={"token": "forged-token"}), follow=True)
    assert b"not valid" in response.content
    assert _login(client, owner.user.email, PASSWORD).status_code == 429


def test_the_owners_known_browser_is_never_stopped_by_a_strangers_failures(owner: Persona) -> None:
    browser = Client()
    assert _login(browser, owner.user.email, PASSWORD).status_code == 302
    browser.post(LOGOUT)

    _stranger_fails(owner.user.email, 10)
    response = _login(browser, owner.user.email, PASSWORD)
    assert response.status_code == 302
    assert _signed_in(browser) == str(owner.user.pk)
    # The stranger's failures did e-mail the owner a link (a warning too), which they did not need.
    assert len(mail.outbox) == 1


def test_a_known_browser_of_another_account_is_no_proof(owner: Persona, member: Persona) -> None:
    browser = Client()
    assert _login(browser, member.user.email, PASSWORD).status_code == 302
    browser.post(LOGOUT)
    _stranger_fails(owner.user.email)
    assert _login(browser, owner.user.email, PASSWORD).status_code == 429


def test_while_the_password_alone_is_not_enough_it_is_not_even_checked(owner: Persona) -> None:
    """No oracle: the guesser cannot tell a right password from a wrong one."""
    _stranger_fails(owner.user.email)
    right = _login(Client(), owner.user.email, PASSWORD, ip="203.0.113.50")
    wrong = _login(Client(), owner.user.email, "another-guess-123", ip="203.0.113.51")
    assert right.status_code == wrong.status_code == 429
    assert right.context["form"].non_field_errors() == wrong.context["form"].non_field_errors()


def test_the_owners_mailbox_gets_at_most_one_link_every_few_minutes(owner: Persona) -> None:
    _stranger_fails(owner.user.email, 30)
    assert len(mail.outbox) == 1
    owner.user.refresh_from_db()
    owner.user.sign_in_link_sent_at = timezone.now() - services.SIGN_IN_LINK_INTERVAL - dt.timedelta(seconds=1)
    owner.user.save(update_fields=["sign_in_link_sent_at"])
    _stranger_fails(owner.user.email, 1)
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_an_unknown_address_gets_the_same_answer_and_no_mail() -> None:
    _stranger_fails("nobody@example.com")
    response = _login(Client(), "nobody@example.com", "whatever-password")
    assert response.status_code == 429
    assert b"We e-mailed a sign-in link" in response.content
    assert mail.outbox == []


def test_a_password_reset_lets_the_owner_in_from_that_browser(owner: Persona) -> None:
    _stranger_fails(owner.user.email)
    browser = Client()
    browser.post(reverse("accounts:password_reset"), {"email": owner.user.email})
    link = re.search(r"https?://testserver(/accounts/password-reset/\S+/\S+/)", str(mail.outbox[-1].body))
    assert link
    form_url = browser.get(link.group(1))["Location"]
    new = "fresh-Compass-bearing-42"
    browser.post(form_url, {"new_password1": new, "new_password2": new})
    _stranger_fails(owner.user.email)
    assert _login(browser, owner.user.email, new).status_code == 302


# --- client addresses and trusted proxies ---------------------------------------------------------


def test_twenty_failures_behind_a_trusted_proxy_do_not_lock_out_other_clients_behind_it(
    owner: Persona, member: Persona, settings
) -> None:
    settings.TRUENORTH_TRUSTED_PROXIES = ["10.0.0.0/24"]
    for i in range(20):
        response = _login(
            Client(), f"guess{i}@example.com", "wrong-password-x", ip=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9"
        )
        assert response.status_code == 200
    assert set(LoginAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.9"}

    # Another client behind the same proxy signs in ...
    other = Client()
    response = _login(other, member.user.email, PASSWORD, ip=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.10")
    assert response.status_code == 302
    # ... while the guessing client is refused, even with a right password of an account it never used.
    guesser = Client()
    response = _login(guesser, owner.user.email, PASSWORD, ip=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 429
    assert b"from your network" in response.content


def test_an_untrusted_client_cannot_spoof_x_forwarded_for(owner: Persona, settings) -> None:
    settings.TRUENORTH_TRUSTED_PROXIES = ["10.0.0.0/24"]
    for i in range(20):
        _login(Client(), f"guess{i}@example.com", "wrong-x-123", ip="198.51.100.7", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert set(LoginAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.7"}
    response = _login(
        Client(), owner.user.email, PASSWORD, ip="198.51.100.7", HTTP_X_FORWARDED_FOR="192.0.2.200"
    )
    assert response.status_code == 429


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("198.51.100.7", "", "198.51.100.7"),
        ("198.51.100.7", "203.0.113.9", "198.51.100.7"),  # not from a proxy: the header is ignored
        (PROXY, "", PROXY),
        (PROXY, "203.0.113.9", "203.0.113.9"),
        (PROXY, "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # what the client wrote itself is not believed
        (PROXY, "203.0.113.9, 10.0.0.3", "203.0.113.9"),  # two trusted proxies in a row
        (PROXY, "10.0.0.4, 10.0.0.3", "10.0.0.4"),  # only proxies: the farthest one
        (PROXY, "garbage, 203.0.113.9", "203.0.113.9"),
        (PROXY, "203.0.113.9, garbage", PROXY),  # a proxy passing on junk: believe nothing beyond it
        (PROXY, "[2001:db8::1]:4711", "2001:db8::1"),
        (PROXY, "203.0.113.9:4711", "203.0.113.9"),
        ("::ffff:198.51.100.7", "", "198.51.100.7"),
    ],
)
def test_the_client_address_is_read_through_the_trusted_proxies_only(
    remote: str, forwarded: str, expected: str, settings
) -> None:
    settings.TRUENORTH_TRUSTED_PROXIES = ["10.0.0.0/24"]
    request = RequestFactory().get("/", REMOTE_ADDR=remote)
    if forwarded:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    assert services.client_ip(request) == expected


def test_an_ipv6_client_is_counted_by_its_64_network() -> None:
    assert services.throttle_key("2001:db8:1:2:aaaa::1") == services.throttle_key("2001:db8:1:2:bbbb::9")
    assert services.throttle_key("2001:db8:1:3::1") != services.throttle_key("2001:db8:1:2::1")
    assert services.throttle_key("198.51.100.7") == "198.51.100.7"


def test_a_bad_trusted_proxy_setting_stops_start_up(monkeypatch) -> None:
    import importlib

    from truenorth import settings as settings_module
    from truenorth.env import ConfigError

    monkeypatch.setenv("TRUENORTH_TRUSTED_PROXIES", "10.0.0.0/8,not-an-address")
    with pytest.raises(ConfigError, match="TRUENORTH_TRUSTED_PROXIES"):
        settings_module._trusted_proxies()
    monkeypatch.setenv("TRUENORTH_TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32")
    assert settings_module._trusted_proxies() == ["10.0.0.0/8", "2001:db8::/32"]
    assert importlib  # settings are not reloaded: only the parser is exercised


# --- purging ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_periodic_job_purges_attempts_older_than_the_window(settings) -> None:
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900
    now = timezone.now()
    old = LoginAttempt.objects.create(email="a@example.com", ip_address="198.51.100.1", at=now - dt.timedelta(hours=2))
    recent = LoginAttempt.objects.create(email="a@example.com", ip_address="198.51.100.1", at=now)

    assert jobs.purge_login_attempts.call_local() == 1
    assert not LoginAttempt.objects.filter(pk=old.pk).exists()
    assert LoginAttempt.objects.filter(pk=recent.pk).exists()
    # It is a periodic job the worker runs every hour.
    due = [task.name for task in HUEY.read_periodic(dt.datetime(2026, 1, 1, 10, 7))]
    assert "purge_login_attempts" in due


@pytest.mark.django_db
def test_the_cli_purges_old_attempts_too(capsys) -> None:
    from truenorth.cli import main

    LoginAttempt.objects.create(email="a@example.com", ip_address="198.51.100.1", at=timezone.now() - dt.timedelta(days=1))
    assert main(["purge-sign-ins"]) == 0
    assert "Deleted 1 old failed sign-in(s)." in capsys.readouterr().out
    assert not LoginAttempt.objects.exists()
