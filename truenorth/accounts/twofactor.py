"""Two-factor sign-in (issue 13): TOTP with recovery codes for password accounts; an organisation may
require it."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse

from truenorth.accounts.models import User


def complete_sign_in(request: HttpRequest, user: User) -> HttpResponse | None:
    """After a correct password: sign in (None: the caller goes on), or answer the second-step page."""
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return None


class TwoFactorRequiredMiddleware:
    """Sends people whose organisation requires two-factor sign-in to set it up (placeholder)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
