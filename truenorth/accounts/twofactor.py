"""Two-factor sign-in: TOTP (RFC 6238: 30-second steps, 6 digits, SHA-1, one step of clock drift either
way) with single-use recovery codes, for password accounts; an organisation may require it.

- Enrolment: `new_secret` (the web keeps it in the session, sealed, until confirmed; the API hands the
  client a signed `setup_token`), `confirm` with a code from the app, which returns the recovery codes,
  shown once. Secrets are stored encrypted with the instance's keys (core/crypto.py); recovery codes only
  as SHA-256 hashes (80 random bits each, so a fast hash is enough, as for API tokens).
- A code's time step is accepted once (`TOTPDevice.last_used_step`): a code seen over a shoulder or
  replayed from a log is refused, even within its 30 seconds.
- Wrong codes are counted per account (`TwoFactorFailure`); past TRUENORTH_TWO_FACTOR_MAX_FAILURES in
  TRUENORTH_TWO_FACTOR_FAILURE_WINDOW_SECONDS every code is refused (429) until the window moves on. The
  password was right already, so only someone who knows it can cause that wait.
- Sign-in: after a correct password `complete_sign_in` keeps the pending user in the session for
  PENDING_MAX_AGE and sends the browser to the second step (accounts/views_twofactor.py).
- Policy: `Organisation.require_two_factor`. `page_gate` (called by `orgs.access.org_view`) sends a
  signed-in member without an authenticator who opens one of that organisation's pages to the set-up page;
  `TwoFactorRequiredMiddleware` answers its API endpoints (`/api/v1/orgs/<slug>/…`) with 403 naming that
  page, whatever token is used. A session signed in through single sign-on (`truenorth_sign_in_method` =
  "oidc") counts as satisfied: the identity provider is in charge of the second factor there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any

import pyotp
import segno
from django.conf import settings
from django.contrib.auth import login
from django.contrib.messages import warning
from django.core import signing
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from truenorth.accounts.backends import SESSION_BACKEND
from truenorth.accounts.models import RecoveryCode, TOTPDevice, TwoFactorFailure, User, hash_token
from truenorth.core import crypto, telemetry
from truenorth.core.errors import Conflict, TooManyRequests, ValidationFailed
from truenorth.core.health import CheckResult
from truenorth.orgs.models import Membership

DIGITS = 6
INTERVAL = 30
VALID_WINDOW = 1  # steps of clock drift accepted either way
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_LENGTH = 16  # base32 characters: 80 bits
PENDING_MAX_AGE = dt.timedelta(minutes=5)
SETUP_MAX_AGE = dt.timedelta(minutes=30)
SECRET_INFO = b"truenorth two-factor secrets v1"
_SETUP_SALT = "truenorth.accounts.two-factor-setup"

# Session keys
PENDING_SESSION_KEY = "two_factor_pending"  # {"u": user id, "at": timestamp, "next": url or None}
SETUP_SESSION_KEY = "two_factor_setup"  # {"u": user id, "s": sealed secret}
SIGN_IN_METHOD_KEY = "truenorth_sign_in_method"  # "password", "password+totp", "password+recovery", "oidc"
SETUP_URL_NAME = "accounts:two_factor"


# --- TOTP ---------------------------------------------------------------------------------------


def new_secret() -> str:
    """A fresh base32 secret of 160 bits (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def totp(secret: str, digits: int = DIGITS) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=digits, digest=hashlib.sha1, interval=INTERVAL)


def code_at(secret: str, at: float, digits: int = DIGITS) -> str:
    """The code an authenticator shows at Unix time `at`."""
    return totp(secret, digits).at(int(at))


def matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The time step whose code is `code`, looking VALID_WINDOW steps either side of now; None if none."""
    now = time.time() if at is None else at
    step = int(now) // INTERVAL
    generator = totp(secret)
    found = None
    for candidate in range(step - VALID_WINDOW, step + VALID_WINDOW + 1):
        # No early exit: the comparison takes the same time whichever step matches.
        if secrets.compare_digest(generator.generate_otp(candidate), code):
            found = candidate
    return found


def issuer() -> str:
    """The name authenticator apps show for this instance (TRUENORTH_TWO_FACTOR_ISSUER)."""
    return str(settings.TRUENORTH_TWO_FACTOR_ISSUER)


def provisioning_uri(user: User, secret: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return totp(secret).provisioning_uri(name=user.email, issuer_name=issuer())


def qr_data_uri(uri: str) -> str:
    """The QR code of `uri` as an SVG data: URI (dark on white, so it scans in a dark theme too)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, dark="#000", light="#fff", border=4))


def _normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


# --- state --------------------------------------------------------------------------------------


def device_of(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user).first()


def is_enabled(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user).exists()


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()


def required_by(user: User) -> list[str]:
    """Slugs of the user's organisations that require two-factor sign-in."""
    return list(
        Membership.objects.filter(user=user, organisation__require_two_factor=True)
        .order_by("organisation__slug")
        .values_list("organisation__slug", flat=True)
    )


def status(user: User) -> dict[str, Any]:
    device = device_of(user)
    return {
        "enabled": device is not None,
        "confirmed_at": device.confirmed_at if device else None,
        "recovery_codes_left": recovery_codes_left(user) if device else 0,
        "required_by": required_by(user),
    }


# --- throttling ---------------------------------------------------------------------------------


def _window_start() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=settings.TRUENORTH_TWO_FACTOR_FAILURE_WINDOW_SECONDS)


def _check_throttle(user: User) -> None:
    failures = TwoFactorFailure.objects.filter(user=user, at__gte=_window_start()).count()
    if failures >= settings.TRUENORTH_TWO_FACTOR_MAX_FAILURES:
        minutes = max(1, round(settings.TRUENORTH_TWO_FACTOR_FAILURE_WINDOW_SECONDS / 60))
        raise TooManyRequests(
            f"Too many wrong codes for this account: wait up to {minutes} minutes, then try again.",
            field="code",
        )


def _record_failure(user: User) -> None:
    TwoFactorFailure.objects.filter(user=user, at__lt=_window_start()).delete()  # no periodic purge needed
    TwoFactorFailure.objects.create(user=user)


def _wrong_code(user: User, method: str, *, sign_in: bool, message: str) -> ValidationFailed:
    _record_failure(user)
    if sign_in:
        telemetry.sign_in_failed(method)
    return ValidationFailed(message, field="code")


# --- verifying ----------------------------------------------------------------------------------


def _secret_of(device: TOTPDevice) -> str | None:
    return crypto.unseal(device.secret_encrypted, SECRET_INFO)


def _use_totp(user: User, device: TOTPDevice, code: str, *, sign_in: bool) -> None:
    secret = _secret_of(device)
    if secret is None:
        raise ValidationFailed(
            "Your authenticator cannot be checked: this server's encryption key changed. "
            "Use a recovery code instead.",
            field="code",
        )
    step = matching_step(secret, code)
    if step is None:
        raise _wrong_code(user, "totp", sign_in=sign_in, message="That code is wrong or expired.")
    # Atomic: of two requests with the same code, only one moves the step on.
    if not TOTPDevice.objects.filter(pk=device.pk, last_used_step__lt=step).update(last_used_step=step):
        raise _wrong_code(
            user, "totp", sign_in=sign_in, message="That code was used already: wait for the next one."
        )


def _use_recovery_code(user: User, code: str, *, sign_in: bool) -> None:
    used = RecoveryCode.objects.filter(user=user, code_hash=hash_token(code), used_at__isnull=True).update(
        used_at=timezone.now()
    )
    if not used:
        raise _wrong_code(
            user, "recovery", sign_in=sign_in, message="That recovery code is wrong or was used already."
        )


def verify(user: User, code: str, *, allow_recovery: bool = True, sign_in: bool = False) -> str:
    """Check a second-step code: an authenticator code (6 digits) or, when allowed, a recovery code
    (used up). Returns "totp" or "recovery"; ValidationFailed (field "code") when wrong, TooManyRequests
    while throttled."""
    device = device_of(user)
    if device is None:
        raise Conflict("Two-factor sign-in is not turned on for this account.", field="code")
    _check_throttle(user)
    code = _normalise(code)
    if len(code) == DIGITS and code.isdigit():
        _use_totp(user, device, code, sign_in=sign_in)
        return "totp"
    if allow_recovery and len(code) == RECOVERY_CODE_LENGTH:
        _use_recovery_code(user, code, sign_in=sign_in)
        return "recovery"
    expected = f"the {DIGITS}-digit code from your authenticator app"
    if allow_recovery:
        expected += " or a recovery code"
    raise _wrong_code(user, "totp", sign_in=sign_in, message=f"Enter {expected}.")


# --- enrolment ----------------------------------------------------------------------------------


def require_password_account(user: User) -> None:
    """Two-factor sign-in protects password sign-in; an account without a password signs in through
    single sign-on, where the identity provider is in charge of the second factor."""
    if not user.has_usable_password():
        raise Conflict(
            "This account has no password (it signs in through single sign-on): two-factor sign-in is "
            "handled by your identity provider."
        )


def require_setup_possible(user: User) -> None:
    """A password account without an authenticator yet (Conflict, 409, otherwise)."""
    require_password_account(user)
    if is_enabled(user):
        raise Conflict("Two-factor sign-in is already on; turn it off first to use another app.")


def setup_token(user: User, secret: str) -> str:
    """A signed token carrying a not yet confirmed secret, for API clients (which have no session)."""
    return signing.dumps({"u": user.pk, "s": crypto.seal(secret, SECRET_INFO)}, salt=_SETUP_SALT)


def secret_from_setup_token(user: User, token: str) -> str:
    """The secret a `setup_token` carries; Conflict (409, field "setup_token": start again) when it is not
    this user's, expired or damaged."""
    try:
        data = signing.loads(token, salt=_SETUP_SALT, max_age=SETUP_MAX_AGE)
    except signing.BadSignature:
        raise Conflict(
            "This set-up token is not valid or expired: start again.", field="setup_token"
        ) from None
    secret = crypto.unseal(str(data.get("s", "")), SECRET_INFO) if isinstance(data, dict) else None
    if secret is None or data.get("u") != user.pk:
        raise Conflict("This set-up token is not yours or is damaged: start again.", field="setup_token")
    return secret


def _new_recovery_codes(user: User) -> list[str]:
    RecoveryCode.objects.filter(user=user).delete()
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    codes = [
        "".join(secrets.choice(alphabet) for _ in range(RECOVERY_CODE_LENGTH))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    RecoveryCode.objects.bulk_create(RecoveryCode(user=user, code_hash=hash_token(c)) for c in codes)
    return [format_recovery_code(c) for c in codes]


def format_recovery_code(code: str) -> str:
    """Groups of four for reading: abcd-efgh-ijkm-nopq (dashes and spaces are ignored when typed)."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


# The checks below run outside a transaction of their own on purpose: a wrong code's failure record must
# stay when the error is raised (an atomic block would roll it back, and the throttle would never count).


def confirm(user: User, secret: str, code: str) -> list[str]:
    """Turn two-factor sign-in on with `secret` once `code` proves the app has it; returns the recovery
    codes (shown once)."""
    require_setup_possible(user)
    _check_throttle(user)
    step = matching_step(secret, _normalise(code))
    if step is None:
        _record_failure(user)
        raise ValidationFailed(
            "That code does not match: check the time on your phone and enter the current code.", field="code"
        )
    try:
        with transaction.atomic():
            TOTPDevice.objects.create(
                user=user, secret_encrypted=crypto.seal(secret, SECRET_INFO), last_used_step=step
            )
            return _new_recovery_codes(user)
    except IntegrityError:  # a second confirmation at the same moment
        raise Conflict("Two-factor sign-in is already on; turn it off first to use another app.") from None


def regenerate_recovery_codes(user: User, code: str) -> list[str]:
    """New recovery codes (the old ones stop working), on an authenticator code."""
    verify(user, code, allow_recovery=False)
    with transaction.atomic():
        return _new_recovery_codes(user)


def disable(user: User, password: str, code: str) -> None:
    """Turn two-factor sign-in off: needs the password and a code (authenticator or recovery)."""
    if not is_enabled(user):
        raise Conflict("Two-factor sign-in is not turned on for this account.")
    _check_throttle(user)
    if not user.has_usable_password() or not user.check_password(password or ""):
        _record_failure(user)
        raise ValidationFailed("Your password is wrong.", field="password")
    verify(user, code)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()


# --- sign-in ------------------------------------------------------------------------------------


def complete_sign_in(request: HttpRequest, user: User) -> HttpResponse | None:
    """After a correct password: sign in (None: the caller goes on), or send the browser to the second
    step when the account has an authenticator."""
    request.session.pop(PENDING_SESSION_KEY, None)
    if is_enabled(user):
        target = request.POST.get("next") or request.GET.get("next") or None
        request.session[PENDING_SESSION_KEY] = {"u": user.pk, "at": time.time(), "next": target}
        return redirect("accounts:two_factor_sign_in")
    login(request, user, backend=SESSION_BACKEND)
    request.session[SIGN_IN_METHOD_KEY] = "password"
    return None


def pending_user(request: HttpRequest) -> tuple[User, str | None] | None:
    """The user who gave the right password in this browser less than PENDING_MAX_AGE ago, and where
    they were going; None when there is none (or it expired)."""
    data = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(data, dict):
        return None
    age = time.time() - float(data.get("at", 0))
    if not 0 <= age <= PENDING_MAX_AGE.total_seconds():
        request.session.pop(PENDING_SESSION_KEY, None)
        return None
    user_id = data.get("u")
    user = User.objects.filter(pk=user_id, is_active=True).first() if isinstance(user_id, int) else None
    if user is None:
        return None
    target = data.get("next")
    return user, target if isinstance(target, str) else None


def finish_sign_in(request: HttpRequest, user: User, method: str) -> None:
    """The second step passed: sign the pending user in."""
    request.session.pop(PENDING_SESSION_KEY, None)
    login(request, user, backend=SESSION_BACKEND)
    request.session[SIGN_IN_METHOD_KEY] = f"password+{method}"


# --- organisation policy ------------------------------------------------------------------------


def _blocked_memberships() -> Any:
    """Memberships in organisations requiring two-factor sign-in whose person has no authenticator."""
    has_device = TOTPDevice.objects.filter(user=OuterRef("user"))
    return Membership.objects.filter(organisation__require_two_factor=True).filter(~Exists(has_device))


def setup_url(org_slug: str) -> str:
    return f"{reverse(SETUP_URL_NAME)}?{urlencode({'org': org_slug})}"


def _api_token(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def page_gate(request: HttpRequest, membership: Membership) -> HttpResponse | None:
    """For a page of the membership's organisation (orgs.access.org_view calls it, having loaded the
    membership with its organisation, so pages of organisations without the policy cost no query): the
    set-up page when the organisation requires two-factor sign-in and this session has not satisfied it;
    None to go on."""
    if not membership.organisation.require_two_factor:
        return None
    if request.session.get(SIGN_IN_METHOD_KEY) == "oidc":
        return None
    if TOTPDevice.objects.filter(user_id=membership.user_id).exists():
        return None
    url = setup_url(membership.organisation.slug)
    if request.headers.get("HX-Request") == "true":
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    warning(request, "This organisation requires two-factor sign-in: set it up to continue.")
    return redirect(url)


class TwoFactorRequiredMiddleware:
    """Holds API tokens to their organisations' two-factor policy: an endpoint of an organisation
    (`/api/v1/orgs/<slug>/…`) that requires it answers 403 naming the set-up page when the token's
    person is a member without an authenticator (one query per such request; the token alone cannot
    prove a second factor). Pages are held by `page_gate`, from `org_view`, which has the organisation
    at hand already; the account's pages, sign-out and static files are never held."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: dict[str, Any]
    ) -> HttpResponse | None:
        slug = kwargs.get("slug")
        if not request.path.startswith("/api/") or not isinstance(slug, str):
            return None  # not an organisation's endpoint
        token = _api_token(request)
        if not token:
            return None  # no token: the API answers 401 as usual
        blocked = _blocked_memberships().filter(
            organisation__slug=slug,
            user__api_tokens__token_hash=hash_token(token),
            user__api_tokens__revoked_at__isnull=True,
        )
        if not blocked.exists():
            return None
        url = request.build_absolute_uri(setup_url(slug))
        message = (
            f"The organisation '{slug}' requires two-factor sign-in, and this token's account has none: "
            f"set it up at {url} (or through /api/v1/account/two-factor), then retry."
        )
        return JsonResponse({"detail": message, "errors": []}, status=403)


# --- `truenorth check` ----------------------------------------------------------------------------

CHECK_SAMPLE = 50


def two_factor_check() -> list[CheckResult]:
    """Two-factor sign-in for `truenorth check`: the configured encryption keys open the authenticator
    secrets (checks the most recent CHECK_SAMPLE); how many organisations require it and how many of their
    members have not set it up yet."""
    name = "two-factor sign-in"
    try:
        secrets_ = list(
            TOTPDevice.objects.order_by("-confirmed_at").values_list("secret_encrypted", flat=True)[
                :CHECK_SAMPLE
            ]
        )
        requiring = Membership.objects.filter(organisation__require_two_factor=True)
        organisations = requiring.values("organisation_id").distinct().count()
        waiting = _blocked_memberships().values("user_id").distinct().count()
    except DatabaseError:  # tables missing before the first migrate
        return []
    policy = f"{organisations} organisation(s) require it; {waiting} of their members have not set it up"
    try:
        unreadable = sum(1 for token in secrets_ if crypto.unseal(token, SECRET_INFO) is None)
    except ValidationFailed as exc:  # no key configured at all
        return [CheckResult(name, "error", exc.message)]
    if unreadable:
        return [
            CheckResult(
                name,
                "warning",
                f"{unreadable} of the {len(secrets_)} most recent authenticator secrets cannot be opened with "
                "the configured encryption keys (TRUENORTH_ENCRYPTION_KEY changed?): those people can only "
                f"sign in with recovery codes. {policy}.",
            )
        ]
    return [CheckResult(name, "ok", f"{len(secrets_)} recent authenticator secret(s) readable; {policy}")]
