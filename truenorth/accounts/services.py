"""Accounts: sign-up, throttled sign-in, personal API tokens."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from truenorth.accounts.models import APIToken, LoginAttempt, User, hash_token
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


def client_ip(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def _recent_failures(**filters: str) -> int:
    since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    return LoginAttempt.objects.filter(at__gte=since, **filters).count()


def sign_in(request: HttpRequest, email: str, password: str) -> User:
    """Check credentials; too many recent failures for the address or the client refuse (429)."""
    email = (email or "").strip().lower()
    ip = client_ip(request)
    if (
        _recent_failures(email=email) >= settings.LOGIN_MAX_FAILURES_PER_EMAIL
        or _recent_failures(ip_address=ip) >= settings.LOGIN_MAX_FAILURES_PER_IP
    ):
        raise TooManyRequests("Too many failed sign-in attempts. Wait a few minutes, or reset your password.")
    user = authenticate(request, username=email, password=password)
    if user is None:
        LoginAttempt.objects.create(email=email[:254], ip_address=ip)
        raise ValidationFailed("E-mail address or password is wrong.", field="password")
    clear_login_failures(email)
    assert isinstance(user, User)
    return user


def clear_login_failures(email: str) -> None:
    """Forget failed sign-ins for an address, e.g. once its owner proved control by resetting."""
    LoginAttempt.objects.filter(email=(email or "").strip().lower()).delete()


def purge_old_login_attempts() -> int:
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
