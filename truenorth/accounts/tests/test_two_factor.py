"""Two-factor sign-in: RFC 6238 codes, enrolment with recovery codes, the second step of signing in,
replay protection, throttling, turning it off."""

from __future__ import annotations

import base64
import time

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from conftest import PASSWORD, Persona
from truenorth.accounts import twofactor
from truenorth.accounts.models import RecoveryCode, TOTPDevice, TwoFactorFailure, User
from truenorth.core import crypto
from truenorth.core.errors import Conflict, TooManyRequests, ValidationFailed

LOGIN = reverse("accounts:login")
STEP = reverse("accounts:two_factor_sign_in")
SETUP = reverse("accounts:two_factor")

# RFC 6238, appendix B: the SHA-1 key is the ASCII string "12345678901234567890", 8 digits.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("at", "expected"), RFC_VECTORS)
def test_codes_match_rfc_6238_test_vectors(at: int, expected: str) -> None:
    assert twofactor.code_at(RFC_SECRET, at, digits=8) == expected
    # Six digits are the same truncation modulo 10^6: the vector's last six digits.
    assert twofactor.code_at(RFC_SECRET, at) == expected[-6:]


def test_a_code_matches_its_step_and_one_step_of_drift_either_way() -> None:
    at = 1111111111.0
    step = int(at) // 30
    assert twofactor.matching_step(RFC_SECRET, twofactor.code_at(RFC_SECRET, at), at=at) == step
    assert twofactor.matching_step(RFC_SECRET, twofactor.code_at(RFC_SECRET, at - 30), at=at) == step - 1
    assert twofactor.matching_step(RFC_SECRET, twofactor.code_at(RFC_SECRET, at + 30), at=at) == step + 1
    assert twofactor.matching_step(RFC_SECRET, twofactor.code_at(RFC_SECRET, at + 60), at=at) is None
    assert twofactor.matching_step(RFC_SECRET, twofactor.code_at(RFC_SECRET, at - 60), at=at) is None


def test_the_otpauth_uri_names_the_account_issuer_and_parameters(settings) -> None:
    settings.TRUENORTH_TWO_FACTOR_ISSUER = "Acme North"
    user = User(email="ada@example.com")
    uri = twofactor.provisioning_uri(user, RFC_SECRET)
    assert uri.startswith("otpauth://totp/Acme%20North:ada%40example.com?")
    assert f"secret={RFC_SECRET}" in uri and "issuer=Acme%20North" in uri
    assert twofactor.qr_data_uri(uri).startswith("data:image/svg+xml")


def test_sealed_strings_open_only_for_their_purpose_and_survive_key_rotation(settings) -> None:
    sealed = crypto.seal("JBSWY3DPEHPK3PXP", b"purpose one")
    assert crypto.unseal(sealed, b"purpose one") == "JBSWY3DPEHPK3PXP"
    assert crypto.unseal(sealed, b"purpose two") is None
    settings.TRUENORTH_ENCRYPTION_KEYS = ["a new key", *settings.TRUENORTH_ENCRYPTION_KEYS]
    assert crypto.unseal(sealed, b"purpose one") == "JBSWY3DPEHPK3PXP"
    settings.TRUENORTH_ENCRYPTION_KEYS = ["a new key"]
    assert crypto.unseal(sealed, b"purpose one") is None


def _now_code(secret: str, offset: int = 0) -> str:
    return twofactor.code_at(secret, time.time() + offset)


def _enrol(user: User) -> tuple[str, list[str]]:
    secret = twofactor.new_secret()
    return secret, twofactor.confirm(user, secret, _now_code(secret))


def _login(client: Client, email: str, password: str = PASSWORD, **extra: str):
    return client.post(LOGIN, {"email": email, "password": password, **extra})


# --- enrolment through the pages ------------------------------------------------------------------


@pytest.mark.django_db
def test_set_up_shows_a_qr_code_and_key_then_a_code_turns_it_on_with_ten_recovery_codes(member: Persona):
    page = member.client.get(SETUP)
    assert page.status_code == 200
    assert page["Cache-Control"].startswith("max-age=0") or "no-cache" in page["Cache-Control"]
    html = page.content.decode()
    assert 'src="data:image/svg+xml' in html
    secret = page.context["secret"].replace(" ", "")
    assert len(secret) == 32
    # The key stays the same across reloads until confirmed (kept in the session, sealed).
    assert member.client.get(SETUP).context["secret"].replace(" ", "") == secret
    assert secret not in str(dict(member.client.session))

    wrong = member.client.post(SETUP, {"code": "000000" if _now_code(secret) != "000000" else "111111"})
    assert wrong.status_code == 200 and "does not match" in wrong.content.decode()
    assert not TOTPDevice.objects.filter(user=member.user).exists()

    done = member.client.post(SETUP, {"code": _now_code(secret)})
    assert done.status_code == 200
    codes = done.context["codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(code in done.content.decode() for code in codes)
    device = TOTPDevice.objects.get(user=member.user)
    assert secret not in device.secret_encrypted  # encrypted at rest
    assert crypto.unseal(device.secret_encrypted, twofactor.SECRET_INFO) == secret
    stored = set(RecoveryCode.objects.filter(user=member.user).values_list("code_hash", flat=True))
    assert not any(code.replace("-", "") in stored for code in codes)  # only hashes
    status = member.client.get(SETUP)
    assert "<strong>on</strong>" in status.content.decode()
    assert "two-factor-secret" not in status.content.decode()  # the key is never shown again


@pytest.mark.django_db
def test_an_account_without_a_password_cannot_set_it_up(member: Persona):
    member.user.set_unusable_password()
    member.user.save()
    member.client.force_login(member.user)
    assert "single sign-on" in member.client.get(SETUP).content.decode()
    with pytest.raises(Conflict):
        twofactor.confirm(member.user, RFC_SECRET, _now_code(RFC_SECRET))


@pytest.mark.django_db
def test_enrolling_twice_is_refused(member: Persona):
    _enrol(member.user)
    with pytest.raises(Conflict):
        _enrol(member.user)


# --- signing in ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_two_factor_the_password_signs_in_at_once(member: Persona):
    client = Client()
    response = _login(client, member.user.email)
    assert response.status_code == 302
    assert client.session[SESSION_KEY] == str(member.user.pk)


@pytest.mark.django_db
def test_with_two_factor_the_password_alone_does_not_sign_in_and_a_code_does(member: Persona):
    secret, _ = _enrol(member.user)
    client = Client()
    response = _login(client, member.user.email, next="/o/alpha/")
    assert response.status_code == 302 and response["Location"] == STEP
    assert SESSION_KEY not in client.session
    assert client.get(reverse("home:dashboard", args=["alpha"])).status_code == 302  # still signed out

    page = client.get(STEP)
    assert page.status_code == 200 and "second step" in page.content.decode()
    wrong = client.post(STEP, {"code": "12345"})
    assert wrong.status_code == 200 and SESSION_KEY not in client.session

    done = client.post(STEP, {"code": _now_code(secret, 30)})
    assert done.status_code == 302 and done["Location"] == "/o/alpha/"
    assert client.session[SESSION_KEY] == str(member.user.pk)
    assert client.session[twofactor.SIGN_IN_METHOD_KEY] == "password+totp"
    assert "truenorth_device" in done.cookies  # remembered like a password sign-in


@pytest.mark.django_db
def test_a_code_is_accepted_once(member: Persona):
    secret, _ = _enrol(member.user)
    code = _now_code(secret, 30)
    first = Client()
    _login(first, member.user.email)
    assert first.post(STEP, {"code": code}).status_code == 302
    second = Client()
    _login(second, member.user.email)
    replay = second.post(STEP, {"code": code})
    assert replay.status_code == 200 and "used already" in replay.content.decode()
    assert SESSION_KEY not in second.session


@pytest.mark.django_db
def test_a_recovery_code_signs_in_once(member: Persona):
    _, codes = _enrol(member.user)
    client = Client()
    _login(client, member.user.email)
    done = client.post(STEP, {"code": codes[3].upper().replace("-", " ")})  # typed loosely
    assert done.status_code == 302
    assert client.session[twofactor.SIGN_IN_METHOD_KEY] == "password+recovery"
    assert twofactor.recovery_codes_left(member.user) == 9
    again = Client()
    _login(again, member.user.email)
    assert "used already" in again.post(STEP, {"code": codes[3]}).content.decode()
    assert SESSION_KEY not in again.session


@pytest.mark.django_db
def test_the_pending_sign_in_expires_after_five_minutes(member: Persona, monkeypatch):
    secret, _ = _enrol(member.user)
    client = Client()
    _login(client, member.user.email)
    real = time.time
    monkeypatch.setattr(twofactor.time, "time", lambda: real() + 301)
    response = client.post(STEP, {"code": _now_code(secret)})
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert SESSION_KEY not in client.session


@pytest.mark.django_db
def test_the_second_step_without_a_password_first_goes_back_to_sign_in(member: Persona):
    _enrol(member.user)
    response = Client().get(STEP)
    assert response.status_code == 302 and response["Location"] == LOGIN


@pytest.mark.django_db
def test_wrong_codes_are_throttled_and_counted(member: Persona, settings, monkeypatch):
    settings.TRUENORTH_TWO_FACTOR_MAX_FAILURES = 3
    counted: list[str] = []
    monkeypatch.setattr(twofactor.telemetry, "sign_in_failed", counted.append)
    secret, _ = _enrol(member.user)
    client = Client()
    _login(client, member.user.email)
    wrong = "000000" if _now_code(secret) != "000000" else "111111"
    for _ in range(2):
        client.post(STEP, {"code": wrong})
    client.post(STEP, {"code": "aaaa-bbbb-cccc-dddd"})
    assert counted == ["totp", "totp", "recovery"]
    refused = client.post(STEP, {"code": _now_code(secret, 30)})
    assert refused.status_code == 429 and "Too many wrong codes" in refused.content.decode()
    assert SESSION_KEY not in client.session
    # The window moves on: old failures no longer count.
    TwoFactorFailure.objects.update(at="2000-01-01T00:00:00Z")
    assert client.post(STEP, {"code": _now_code(secret, 30)}).status_code == 302


# --- recovery codes and turning it off ------------------------------------------------------------


@pytest.mark.django_db
def test_new_recovery_codes_need_an_authenticator_code_and_replace_the_old_ones(member: Persona):
    secret, old = _enrol(member.user)
    url = reverse("accounts:two_factor_recovery_codes")
    refused = member.client.post(url, {"code": old[0]})
    assert refused.status_code == 200 and "6-digit code" in refused.content.decode()
    fresh = member.client.post(url, {"code": _now_code(secret, 30)})
    new = fresh.context["codes"]
    assert len(new) == 10 and not set(new) & set(old)
    with pytest.raises(ValidationFailed):
        twofactor.verify(member.user, old[1])
    assert twofactor.verify(member.user, new[1]) == "recovery"


@pytest.mark.django_db
def test_turning_it_off_needs_the_password_and_a_code(member: Persona):
    secret, codes = _enrol(member.user)
    url = reverse("accounts:two_factor_disable")
    wrong_password = member.client.post(url, {"password": "nope", "code": _now_code(secret, 30)})
    assert "password is wrong" in wrong_password.content.decode()
    no_code = member.client.post(url, {"password": PASSWORD, "code": "123"})
    assert no_code.status_code == 200 and TOTPDevice.objects.filter(user=member.user).exists()
    done = member.client.post(url, {"password": PASSWORD, "code": codes[0]})
    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=member.user).exists()
    assert not RecoveryCode.objects.filter(user=member.user).exists()
    client = Client()
    assert _login(client, member.user.email)["Location"] != STEP
    assert client.session[SESSION_KEY] == str(member.user.pk)


@pytest.mark.django_db
def test_a_changed_encryption_key_leaves_recovery_codes_working(member: Persona, settings):
    secret, codes = _enrol(member.user)
    settings.TRUENORTH_ENCRYPTION_KEYS = ["an unrelated key"]
    with pytest.raises(ValidationFailed, match="recovery code"):
        twofactor.verify(member.user, _now_code(secret, 30))
    assert twofactor.verify(member.user, codes[0]) == "recovery"


@pytest.mark.django_db
def test_throttling_also_guards_disabling(member: Persona, settings):
    settings.TRUENORTH_TWO_FACTOR_MAX_FAILURES = 2
    _, codes = _enrol(member.user)
    for _ in range(2):
        with pytest.raises(ValidationFailed):
            twofactor.disable(member.user, "wrong password", codes[0])
    with pytest.raises(TooManyRequests):
        twofactor.disable(member.user, PASSWORD, codes[0])
    assert TOTPDevice.objects.filter(user=member.user).exists()
