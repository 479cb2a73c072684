"""Sign-up, throttled sign-in, sign-out, safe `next` redirects and the home page, through the web UI."""

from __future__ import annotations

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from conftest import PASSWORD
from truenorth.accounts.models import LoginAttempt, User
from truenorth.orgs.models import Membership, Organisation, Role
from truenorth.orgs.services import create_organisation

SIGNUP = reverse("accounts:signup")
LOGIN = reverse("accounts:login")
LOGOUT = reverse("accounts:logout")
HOME = reverse("home:home")
STRONG = "Tr1al-and-err0r-north"


def _signup(client: Client, **overrides: str):
    data = {"name": "New Person", "email": "new@example.com", "password": STRONG, "organisation": ""}
    data.update(overrides)
    return client.post(SIGNUP, data)


def _login(client: Client, email: str, password: str, ip: str = "10.0.0.1", **extra: str):
    return client.post(LOGIN, {"email": email, "password": password, **extra}, REMOTE_ADDR=ip)


def _signed_in_user_id(client: Client) -> str | None:
    return client.session.get(SESSION_KEY)


# --- sign-up ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_up_page_renders():
    response = Client().get(SIGNUP)
    assert response.status_code == 200
    assert b"Create your account" in response.content


@pytest.mark.django_db
def test_sign_up_creates_user_with_argon2_hash_and_signs_in():
    client = Client()
    response = _signup(client, email="New@Example.com")
    assert response.status_code == 302
    assert response["Location"] == HOME

    user = User.objects.get(email="new@example.com")  # e-mail normalised to lower case
    assert user.name == "New Person"
    assert user.password.startswith("argon2")
    assert user.check_password(STRONG)
    assert _signed_in_user_id(client) == str(user.pk)
    # No organisation yet: home shows the welcome page.
    home = client.get(HOME)
    assert home.status_code == 200
    assert b"not in any organisation yet" in home.content


@pytest.mark.django_db
def test_sign_up_with_organisation_creates_it_owned_and_redirects_to_dashboard():
    client = Client()
    response = _signup(client, organisation="Zeta Rockets")
    user = User.objects.get(email="new@example.com")
    org = Organisation.objects.get(name="Zeta Rockets")
    assert org.slug == "zeta-rockets"
    assert Membership.objects.get(organisation=org, user=user).role == Role.OWNER
    assert response.status_code == 302
    assert response["Location"] == reverse("home:dashboard", kwargs={"org_slug": org.slug})
    dashboard = client.get(response["Location"])
    assert dashboard.status_code == 200
    assert b"Zeta Rockets" in dashboard.content


@pytest.mark.django_db
def test_sign_up_with_duplicate_email_shows_error_on_email(owner):
    client = Client()
    before = User.objects.count()
    response = _signup(client, email=owner.user.email.upper(), organisation="Should Not Exist")
    assert response.status_code == 200
    form = response.context["form"]
    assert "already exists" in " ".join(form.errors["email"])
    assert "password" not in form.errors
    assert User.objects.count() == before
    assert not Organisation.objects.filter(name="Should Not Exist").exists()
    assert _signed_in_user_id(client) is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("k3!q", "too short"),
        ("password123", "too common"),
        ("73928164502817", "entirely numeric"),
    ],
)
def test_sign_up_with_weak_password_shows_error_on_password(password, fragment):
    client = Client()
    response = _signup(client, password=password, organisation="Should Not Exist")
    assert response.status_code == 200
    form = response.context["form"]
    assert fragment in " ".join(form.errors["password"])
    assert "email" not in form.errors
    assert b"field-error" in response.content
    assert not User.objects.exists()
    assert not Organisation.objects.exists()
    assert _signed_in_user_id(client) is None


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["not-an-email", "two@@example.com", ""])
def test_sign_up_with_bad_email_shows_error_on_email(email):
    client = Client()
    response = _signup(client, email=email)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["email"]
    assert "password" not in form.errors
    assert not User.objects.exists()


@pytest.mark.django_db
def test_sign_up_follows_same_host_next_only():
    client = Client()
    response = client.post(
        SIGNUP,
        {"email": "a@example.com", "password": STRONG, "next": "/accounts/tokens/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/tokens/"

    other = Client()
    response = other.post(
        SIGNUP,
        {"email": "b@example.com", "password": STRONG, "next": "https://evil.example/phish"},
    )
    assert response.status_code == 302
    assert response["Location"] == HOME


# --- sign-in ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_in_with_right_password(owner):
    client = Client()
    response = _login(client, owner.user.email, PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == HOME
    assert _signed_in_user_id(client) == str(owner.user.pk)


@pytest.mark.django_db
def test_sign_in_email_is_case_insensitive(owner):
    client = Client()
    response = _login(client, owner.user.email.upper(), PASSWORD)
    assert response.status_code == 302
    assert _signed_in_user_id(client) == str(owner.user.pk)


@pytest.mark.django_db
def test_sign_in_with_wrong_password_is_refused_and_recorded(owner):
    client = Client()
    response = _login(client, owner.user.email, "wrong-password-123")
    assert response.status_code == 200
    assert "E-mail address or password is wrong." in response.context["form"].non_field_errors()
    assert b"E-mail address or password is wrong." in response.content
    assert _signed_in_user_id(client) is None
    assert LoginAttempt.objects.filter(email=owner.user.email, ip_address="10.0.0.1").count() == 1


@pytest.mark.django_db
def test_sign_in_for_unknown_email_gives_the_same_message():
    response = _login(Client(), "nobody@example.com", "whatever-password")
    assert response.status_code == 200
    assert "E-mail address or password is wrong." in response.context["form"].non_field_errors()


@pytest.mark.django_db
def test_failures_per_email_make_the_password_alone_insufficient_for_a_new_browser(owner, settings):
    settings.LOGIN_MAX_FAILURES_PER_EMAIL = 3
    settings.LOGIN_MAX_FAILURES_PER_IP = 1000
    client = Client()
    # Failures spread over several client addresses still count for the e-mail address.
    for i in range(3):
        response = _login(client, owner.user.email, f"wrong-{i}-password", ip=f"10.0.1.{i}")
        assert response.status_code == 200

    # A browser that never signed in to this account needs the e-mailed link (tests/.../throttling).
    response = _login(client, owner.user.email, PASSWORD, ip="10.0.2.1")
    assert response.status_code == 429
    assert b"password alone is not enough" in response.content
    assert _signed_in_user_id(client) is None
    assert _login(Client(), owner.user.email.upper(), PASSWORD, ip="10.9.9.9").status_code == 429
    # A different account is not affected.
    assert _login(Client(), "founder@a.example", PASSWORD, ip="10.9.9.9").status_code == 302


@pytest.mark.django_db
def test_failures_per_ip_across_many_emails_are_throttled(owner, settings):
    settings.LOGIN_MAX_FAILURES_PER_EMAIL = 1000
    settings.LOGIN_MAX_FAILURES_PER_IP = 4
    client = Client()
    for i in range(4):
        response = _login(client, f"guess{i}@example.com", "wrong-password-x", ip="10.0.0.66")
        assert response.status_code == 200

    # The next attempt from that address is refused, whatever the address or password.
    response = _login(client, owner.user.email, PASSWORD, ip="10.0.0.66")
    assert response.status_code == 429
    assert b"Too many failed sign-in attempts" in response.content
    assert _signed_in_user_id(client) is None

    # Another client address is not affected.
    other = Client()
    assert _login(other, owner.user.email, PASSWORD, ip="10.0.0.67").status_code == 302


@pytest.mark.django_db
def test_success_clears_the_failures_of_that_email(owner, settings):
    settings.LOGIN_MAX_FAILURES_PER_EMAIL = 3
    settings.LOGIN_MAX_FAILURES_PER_IP = 1000
    for _ in range(2):
        assert _login(Client(), owner.user.email, "wrong-password-x").status_code == 200
    assert _login(Client(), owner.user.email, PASSWORD).status_code == 302
    assert not LoginAttempt.objects.filter(email=owner.user.email).exists()

    # Two more failures: 4 in total, but only 2 since the success, so still below the limit of 3.
    for _ in range(2):
        assert _login(Client(), owner.user.email, "wrong-password-x").status_code == 200
    assert _login(Client(), owner.user.email, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_sign_in_follows_same_host_next(owner):
    client = Client()
    target = reverse("orgs:members", kwargs={"org_slug": "alpha"})
    response = _login(client, owner.user.email, PASSWORD, next=target)
    assert response.status_code == 302
    assert response["Location"] == target
    assert client.get(target).status_code == 200


@pytest.mark.django_db
def test_sign_in_next_query_parameter_is_kept_in_the_form(owner):
    target = reverse("orgs:members", kwargs={"org_slug": "alpha"})
    page = Client().get(LOGIN, {"next": target})
    assert page.status_code == 200
    assert f'name="next" value="{target}"'.encode() in page.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "http://evil.example",
        "javascript:alert(1)",
        "https://testserver.evil.example/",
        "/\\evil.example",
    ],
)
def test_sign_in_refuses_open_redirect(owner, target):
    client = Client()
    response = _login(client, owner.user.email, PASSWORD, next=target)
    assert response.status_code == 302
    assert response["Location"] == HOME
    # The login page does not echo the unsafe target into the form either.
    page = Client().get(LOGIN, {"next": target})
    assert b'name="next"' not in page.content


# --- sign-out ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sign_out_needs_post(owner):
    response = owner.client.get(LOGOUT)
    assert response.status_code == 405
    assert _signed_in_user_id(owner.client) == str(owner.user.pk)


@pytest.mark.django_db
def test_sign_out_logs_out(owner):
    response = owner.client.post(LOGOUT)
    assert response.status_code == 302
    assert response["Location"] == LOGIN
    assert _signed_in_user_id(owner.client) is None
    home = owner.client.get(HOME)
    assert home.status_code == 302
    assert home["Location"] == LOGIN
    org_page = owner.client.get(reverse("home:dashboard", kwargs={"org_slug": "alpha"}))
    assert org_page.status_code == 302
    assert org_page["Location"].startswith(LOGIN)


# --- home -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_home_redirects_anonymous_to_login():
    response = Client().get(HOME)
    assert response.status_code == 302
    assert response["Location"] == LOGIN


@pytest.mark.django_db
def test_home_shows_welcome_without_organisation():
    user = User.objects.create_user(email="lonely@example.com", password=PASSWORD)
    client = Client()
    client.force_login(user)
    response = client.get(HOME)
    assert response.status_code == 200
    assert b"Create an organisation" in response.content
    assert reverse("orgs:create").encode() in response.content


@pytest.mark.django_db
def test_home_redirects_to_the_only_organisation(member):
    response = member.client.get(HOME)
    assert response.status_code == 302
    assert response["Location"] == reverse("home:dashboard", kwargs={"org_slug": "alpha"})


@pytest.mark.django_db
def test_home_redirects_to_last_used_organisation(owner):
    create_organisation(owner.user, "Zulu Works", "zulu")  # sorts after "Alpha Org"
    alpha = reverse("home:dashboard", kwargs={"org_slug": "alpha"})
    zulu = reverse("home:dashboard", kwargs={"org_slug": "zulu"})

    assert owner.client.get(HOME)["Location"] == alpha  # nothing used yet: the first by name
    assert owner.client.get(zulu).status_code == 200
    assert owner.client.get(HOME)["Location"] == zulu
    assert owner.client.get(reverse("orgs:members", kwargs={"org_slug": "alpha"})).status_code == 200
    assert owner.client.get(HOME)["Location"] == alpha


@pytest.mark.django_db
def test_home_ignores_last_used_organisation_the_user_left(owner, outsider):
    # A stale session value naming an organisation the user cannot see falls back to one they can.
    session = owner.client.session
    session["current_org"] = "bravo-secret"
    session.save()
    response = owner.client.get(HOME)
    assert response["Location"] == reverse("home:dashboard", kwargs={"org_slug": "alpha"})
