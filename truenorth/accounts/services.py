"""Accounts: sign-up, throttled sign-in, personal API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from truenorth.accounts.models import APIToken, LoginAttempt, User, hash_token
from truenorth.core import telemetry
from truenorth.core.errors import NotFound, TooManyRequests, ValidationFailed

# last_used_at is written at most this often per token, so busy API clients don't write on every call.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed("Enter a valid e-mail address.", field="email") from None
    return email


def check_password_strength(password: str, user: User | None = None) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), field="password") from None


@transaction.atomic
def create_user(email: str, password: str, name: str = "") -> User:
    """Create an active user; refuses a taken e-mail or a weak password."""
    email = normalise_email(email)
    if len(name) > 150:
        raise ValidationFailed("Name must be at most 150 characters.", field="name")
    if User.objects.filter(email=email).exists():
        raise ValidationFailed("An account with this e-mail address already exists.", field="email")
    candidate = User(email=email, name=name.strip())
    check_password_strength(password, candidate)
    return User.objects.create_user(email=email, password=password, name=name.strip())


# --- throttled sign-in ------------------------------------------------------------------------
#
# Nobody can lock a known account out: failures counted against an account never refuse its owner's
# right password for good. Past LOGIN_MAX_FAILURES_PER_EMAIL failures in the window the password alone
# is not enough; it is accepted together with a proof of being the owner:
#   - a browser the account signed in from before (a signed "known device" cookie, set at each sign-in), or
#   - a sign-in link e-mailed to the account (at most one per SIGN_IN_LINK_INTERVAL), opened in the
#     browser that signs in, valid SIGN_IN_LINK_MAX_AGE and until the next sign-in or password change;
#     a completed password reset counts as such a link.
# While the account needs that proof, the password is not even checked (no oracle for the guesser).
# Failures are also counted per client address (read through TRUENORTH_TRUSTED_PROXIES; an IPv6 client
# by its /64): past LOGIN_MAX_FAILURES_PER_IP that address is refused for the window, except for a
# sign-in with the proof above. Old attempts are purged by a periodic job (accounts/jobs.py).

SIGN_IN_LINK_MAX_AGE = dt.timedelta(minutes=30)
SIGN_IN_LINK_INTERVAL = dt.timedelta(minutes=5)
SIGN_IN_LINK_SALT = "truenorth.accounts.sign-in-link"
DEVICE_COOKIE = "truenorth_device"
DEVICE_COOKIE_MAX_AGE = dt.timedelta(days=365)
DEVICE_SALT = "truenorth.accounts.known-device"
# Session key: the user id whose e-mailed sign-in link (or password reset) this browser completed, and when.
CONFIRMED_SESSION_KEY = "sign_in_confirmed"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _address(raw: str) -> _Address | None:
    raw = raw.strip().strip('"')
    if raw.startswith("[") and "]" in raw:  # "[2001:db8::1]:4711"
        raw = raw[1 : raw.index("]")]
    elif raw.count(":") == 1:  # "192.0.2.1:4711"
        raw = raw.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _trusted(address: _Address) -> bool:
    return any(address in network for network in _networks(tuple(settings.TRUENORTH_TRUSTED_PROXIES)))


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, unless that is a trusted proxy; then the right-most address of
    X-Forwarded-For that is not a trusted proxy (the first one a trusted proxy vouches for). Nothing a
    client writes in the header counts unless a trusted proxy passed it on."""
    remote_raw = str(request.META.get("REMOTE_ADDR") or "")
    candidate = _address(remote_raw)
    if candidate is None:
        return remote_raw[:64] or "unknown"
    if not _trusted(candidate):
        return str(candidate)
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    for hop in reversed([h for h in forwarded.split(",") if h.strip()]):
        address = _address(hop)
        if address is None:  # garbage a trusted proxy passed on: believe nothing beyond it
            break
        candidate = address
        if not _trusted(address):
            break
    return str(candidate)


def throttle_key(ip: str) -> str:
    """What failures are counted against: the address, or an IPv6 address's /64 (one subscriber's)."""
    address = _address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address) if address is not None else ip[:64]


def _recent_failures(**filters: str) -> int:
    since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    return LoginAttempt.objects.filter(at__gte=since, **filters).count()


def _user_state(user: User) -> str:
    """Changes when the user signs in or changes password: a sign-in link is good until then."""
    last = user.last_login.isoformat() if user.last_login else ""
    return hashlib.sha256(f"{user.password}|{last}".encode()).hexdigest()[:24]


def sign_in_link_token(user: User) -> str:
    return signing.dumps({"u": user.pk, "s": _user_state(user)}, salt=SIGN_IN_LINK_SALT, compress=True)


def confirm_sign_in_link(request: HttpRequest, token: str) -> User:
    """Check an e-mailed sign-in link; this browser may then sign in to that account with its password."""
    try:
        data = signing.loads(token, salt=SIGN_IN_LINK_SALT, max_age=SIGN_IN_LINK_MAX_AGE)
        user = User.objects.get(pk=int(data["u"]), is_active=True)
    except (signing.BadSignature, User.DoesNotExist, KeyError, TypeError, ValueError):
        raise ValidationFailed("This sign-in link is not valid (any more).", field="token") from None
    if not secrets.compare_digest(str(data.get("s", "")), _user_state(user)):
        raise ValidationFailed("This sign-in link was already used or replaced.", field="token")
    mark_confirmed(request, user)
    return user


def mark_confirmed(request: HttpRequest, user: User) -> None:
    """This browser proved it controls the user's mailbox (a sign-in link or a password reset)."""
    request.session[CONFIRMED_SESSION_KEY] = {"u": user.pk, "at": timezone.now().timestamp()}


def _confirmed_in_session(request: HttpRequest, user: User) -> bool:
    data = request.session.get(CONFIRMED_SESSION_KEY) if hasattr(request, "session") else None
    if not isinstance(data, dict) or data.get("u") != user.pk:
        return False
    age = timezone.now().timestamp() - float(data.get("at", 0))
    return 0 <= age <= SIGN_IN_LINK_MAX_AGE.total_seconds()


def device_cookie_value(user: User) -> str:
    return signing.dumps({"u": user.pk}, salt=DEVICE_SALT)


def _known_device(request: HttpRequest, user: User) -> bool:
    raw = request.COOKIES.get(DEVICE_COOKIE, "")
    if not raw:
        return False
    try:
        data = signing.loads(raw, salt=DEVICE_SALT, max_age=DEVICE_COOKIE_MAX_AGE)
    except signing.BadSignature:
        return False
    return isinstance(data, dict) and data.get("u") == user.pk


def _send_sign_in_link(user: User) -> None:
    """E-mail a sign-in link, unless one went out less than SIGN_IN_LINK_INTERVAL ago (a stranger's
    failures must not flood the owner's mailbox)."""
    now = timezone.now()
    recently = now - SIGN_IN_LINK_INTERVAL
    claimed = User.objects.filter(pk=user.pk).filter(
        Q(sign_in_link_sent_at__isnull=True) | Q(sign_in_link_sent_at__lt=recently)
    ).update(sign_in_link_sent_at=now)
    if not claimed:
        return
    link = settings.SITE_URL + reverse("accounts:sign_in_link", kwargs={"token": sign_in_link_token(user)})
    body = render_to_string("accounts/sign_in_link_email.txt", {"user": user, "link": link})
    send_mail("Your TrueNorth sign-in link", body, None, [user.email])


def sign_in(request: HttpRequest, email: str, password: str) -> User:
    """Check credentials under the throttling rules above (TooManyRequests, 429, when refused)."""
    email = (email or "").strip().lower()
    ip_key = throttle_key(client_ip(request))
    known = User.objects.filter(email=email, is_active=True).first()
    proven = known is not None and (_known_device(request, known) or _confirmed_in_session(request, known))
    if not proven and _recent_failures(ip_address=ip_key) >= settings.LOGIN_MAX_FAILURES_PER_IP:
        telemetry.sign_in_failed("password")
        raise TooManyRequests(
            "Too many failed sign-in attempts from your network. Wait a few minutes, or reset your password."
        )
    if not proven and _recent_failures(email=email) >= settings.LOGIN_MAX_FAILURES_PER_EMAIL:
        if known is not None:
            _send_sign_in_link(known)
        telemetry.sign_in_failed("password")
        raise TooManyRequests(
            "This account had too many failed sign-ins, so its password alone is not enough for now. "
            "We e-mailed a sign-in link to its address: open it in this browser, then sign in again."
        )
    user = authenticate(request, username=email, password=password)
    if user is None:
        LoginAttempt.objects.create(email=email[:254], ip_address=ip_key)
        telemetry.sign_in_failed("password")
        raise ValidationFailed("E-mail address or password is wrong.", field="password")
    clear_login_failures(email)
    if hasattr(request, "session"):
        request.session.pop(CONFIRMED_SESSION_KEY, None)
    assert isinstance(user, User)
    return user


def clear_login_failures(email: str) -> None:
    """Forget failed sign-ins for an address, e.g. once its owner proved control by resetting."""
    LoginAttempt.objects.filter(email=(email or "").strip().lower()).delete()


def purge_old_login_attempts() -> int:
    """Delete failed sign-ins older than the window (they no longer count); returns how many."""
    since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    deleted, _ = LoginAttempt.objects.filter(at__lt=since).delete()
    return deleted


# --- API tokens -------------------------------------------------------------------------------


def tokens_of(user: User) -> QuerySet[APIToken]:
    return APIToken.objects.filter(user=user).order_by("-created_at", "-id")


@transaction.atomic
def create_token(user: User, name: str, scope: str) -> tuple[APIToken, str]:
    """Create a token; the raw secret is returned once and only its hash is kept."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Give the token a name so you recognise it later.", field="name")
    if len(name) > 100:
        raise ValidationFailed("Name must be at most 100 characters.", field="name")
    if scope not in APIToken.Scope.values:
        raise ValidationFailed(
            f"Unknown scope '{scope}'; choose one of {', '.join(APIToken.Scope.values)}.", field="scope"
        )
    raw = APIToken.generate()
    token = APIToken.objects.create(
        user=user, name=name, scope=scope, token_hash=hash_token(raw), prefix=raw[:10]
    )
    return token, raw


def get_token(user: User, token_id: int) -> APIToken:
    try:
        return APIToken.objects.get(pk=token_id, user=user)
    except APIToken.DoesNotExist:
        raise NotFound() from None


def revoke_token(user: User, token_id: int) -> APIToken:
    token = get_token(user, token_id)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def revoke_all_tokens(user: User) -> int:
    """Revoke every active token of `user` (their password was reset or changed); returns how many."""
    return APIToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def authenticate_token(raw: str) -> APIToken | None:
    """The active token matching raw, with its user; records when it was last used."""
    if not raw:
        return None
    token = (
        APIToken.objects.select_related("user")
        .filter(token_hash=hash_token(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        APIToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
