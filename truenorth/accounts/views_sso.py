"""Single sign-on pages (accounts/sso.py does the work): start at the provider, come back signed in."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from truenorth.accounts import sso
from truenorth.core import telemetry

logger = logging.getLogger(__name__)


def _safe_next(request: HttpRequest, target: str | None) -> str | None:
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return None


def _refused(request: HttpRequest, exc: sso.SignInRefused) -> HttpResponse:
    logger.warning("single sign-on refused: %s", exc.reason)
    telemetry.sign_in_failed("oidc")
    return render(request, "accounts/sso_refused.html", {"message": exc.message}, status=exc.status)


@never_cache
@require_GET
def sso_login(request: HttpRequest) -> HttpResponse:
    """Leave for the identity provider (a GET: the login page's button is a link)."""
    try:
        url = sso.begin(request, _safe_next(request, request.GET.get("next")))
    except sso.SignInRefused as exc:
        logger.warning("single sign-on could not start: %s", exc.reason)
        return render(request, "accounts/sso_refused.html", {"message": exc.message}, status=exc.status)
    return redirect(url)


@never_cache
@require_GET
def sso_callback(request: HttpRequest) -> HttpResponse:
    """Where the identity provider sends the browser back with a code."""
    try:
        _, next_url = sso.finish(request)
    except sso.SignInRefused as exc:
        return _refused(request, exc)
    return redirect(_safe_next(request, next_url) or "home:home")
