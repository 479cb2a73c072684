"""Single sign-on with OpenID Connect (issue 13)."""

from __future__ import annotations

from django.conf import settings


def password_sign_in_enabled() -> bool:
    """False when the operator switched password sign-in off (TRUENORTH_PASSWORD_SIGN_IN=false)."""
    return bool(getattr(settings, "TRUENORTH_PASSWORD_SIGN_IN", True))
