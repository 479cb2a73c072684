"""`{% sso_button next %}`: the single sign-on button on the login page (accounts/_sso.html)."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from truenorth.accounts import sso

register = template.Library()


@register.inclusion_tag("accounts/_sso_button.html")
def sso_button(next_url: str | None = None) -> dict[str, Any]:
    """The button when an identity provider is configured (a link: the sign-in leaves for the provider,
    which the page's `form-action 'self'` would refuse to a form), else nothing."""
    cfg = sso.config()
    if cfg is None:
        return {"url": None}
    url = reverse("accounts:sso_login")
    if next_url:
        url += "?" + urlencode({"next": next_url})
    return {"url": url, "label": cfg.button_label, "password_sign_in": sso.password_sign_in_enabled()}
