from __future__ import annotations

import functools
import secrets
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST

from truenorth.accounts import services, sso, twofactor
from truenorth.accounts.backends import SESSION_BACKEND
from truenorth.accounts.forms import SignInForm, SignUpForm, TokenForm
from truenorth.accounts.models import User
from truenorth.core.errors import DomainError, NotFound, TooManyRequests
from truenorth.orgs.access import apply_error, current_user
from truenorth.orgs.services import create_organisation


def _next_url(request: HttpRequest) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return None


def _password_sign_in_off(request: HttpRequest, title: str) -> HttpResponse:
    return render(request, "accounts/password_sign_in_off.html", {"title": title}, status=403)


def password_sign_in_only(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Password resets answer 403 while password sign-in is switched off (TRUENORTH_PASSWORD_SIGN_IN)."""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
        if not sso.password_sign_in_enabled():
            return _password_sign_in_off(request, "Reset password")
        return view(request, *args, **kwargs)

    return guarded


@require_http_methods(["GET", "POST"])
def sign_up(request: HttpRequest) -> HttpResponse:
    if not sso.password_sign_in_enabled():
        return _password_sign_in_off(request, "Create your account")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                user = services.create_user(
                    form.cleaned_data["email"], form.cleaned_data["password"], form.cleaned_data["name"]
                )
                org_name = form.cleaned_data["organisation"].strip()
                org = create_organisation(user, org_name) if org_name else None
        except DomainError as exc:
            apply_error(form, exc)
        else:
            login(request, user, backend=SESSION_BACKEND)
            messages.success(request, "Welcome to TrueNorth.")
            if target := _next_url(request):
                return _remember_device(redirect(target), user)
            response = redirect("home:dashboard", org_slug=org.slug) if org else redirect("home:home")
            return _remember_device(response, user)
    return render(request, "accounts/signup.html", {"form": form, "next": _next_url(request)})


def _remember_device(response: HttpResponse, user: User) -> HttpResponse:
    """Mark this browser as one the user signs in from: failed sign-ins by others against the account
    never make its password alone insufficient here (accounts/services.py)."""
    response.set_cookie(
        services.DEVICE_COOKIE,
        services.device_cookie_value(user),
        max_age=int(services.DEVICE_COOKIE_MAX_AGE.total_seconds()),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return response


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None, initial={"email": request.GET.get("email", "")})
    status = 200
    if request.method == "POST" and not sso.password_sign_in_enabled():
        form.add_error(None, "Password sign-in is switched off here: sign in with single sign-on.")
        status = 403
    elif request.method == "POST" and form.is_valid():
        try:
            user = services.sign_in(request, form.cleaned_data["email"], form.cleaned_data["password"])
        except TooManyRequests as exc:
            form.add_error(None, exc.message)
            status = 429
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            # Two-factor sign-in (accounts/twofactor.py) may answer a second step instead of signing in.
            challenge = twofactor.complete_sign_in(request, user)
            if challenge is not None:
                return challenge
            return _remember_device(redirect(_next_url(request) or "home:home"), user)
    context = {"form": form, "next": _next_url(request), "password_sign_in": sso.password_sign_in_enabled()}
    return render(request, "accounts/login.html", context, status=status)


@require_http_methods(["GET"])
def sign_in_link(request: HttpRequest, token: str) -> HttpResponse:
    """An e-mailed sign-in link: this browser may then sign in to the account with its password, however
    many failed sign-ins others caused. It signs nobody in by itself."""
    try:
        user = services.confirm_sign_in_link(request, token)
    except DomainError as exc:
        messages.error(request, f"{exc.message} Sign in again to receive a new one.")
        return redirect("accounts:login")
    messages.success(request, "E-mail address confirmed: sign in with your password.")
    return redirect(f"{reverse('accounts:login')}?{urlencode({'email': user.email})}")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("accounts:login")


# Each token form carries a random nonce and is good for one token: the nonces of the last forms used are
# kept in the session, so a reload (which re-posts the form) creates no second token. Nonces are no
# secret, and only POSTs write them; the token itself is never in the session.
TOKEN_FORM_USED_KEY = "token_forms_used"
TOKEN_FORM_USED_KEPT = 20


def _token_page(request: HttpRequest, form: TokenForm, created: str | None = None) -> HttpResponse:
    nonce = secrets.token_urlsafe(16)
    context = {"form": form, "tokens": services.tokens_of(current_user(request)), "created": created}
    response = render(request, "accounts/tokens.html", {**context, "nonce": nonce})
    add_never_cache_headers(response)  # the page may carry a secret: never from a cache, nor the back button
    return response


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """List and create tokens; a new secret is shown once, in the answer to the POST that created it, and
    is never stored (not even in the session)."""
    user = current_user(request)
    if request.method == "GET":
        return _token_page(request, TokenForm())
    nonce = request.POST.get("nonce", "")
    used = list(request.session.get(TOKEN_FORM_USED_KEY, []))
    if len(nonce) < 16 or nonce in used:
        # A re-post of a form already used (a reload of the page that showed the token): no new token.
        messages.info(request, "That form was already used; no new token was created.")
        return redirect("accounts:tokens")
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            _, raw = services.create_token(user, form.cleaned_data["name"], form.cleaned_data["scope"])
        except DomainError as exc:
            apply_error(form, exc)
        else:
            request.session[TOKEN_FORM_USED_KEY] = [*used[-(TOKEN_FORM_USED_KEPT - 1) :], nonce]
            return _token_page(request, TokenForm(), created=raw)
    return _token_page(request, form)


@login_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    try:
        token = services.revoke_token(current_user(request), token_id)
    except NotFound:
        from django.http import Http404

        raise Http404() from None
    messages.success(request, f"Token “{token.name}” revoked; it no longer works.")
    return redirect("accounts:tokens")


def _tokens_revoked_message(request: HttpRequest, revoked: int) -> None:
    if revoked:
        plural = "token was" if revoked == 1 else "tokens were"
        messages.warning(
            request,
            f"Your password changed, so your {revoked} API {plural} revoked: create new ones for your scripts.",
        )


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    """Django's reset confirmation, which also lifts a sign-in lockout on the address and revokes the
    user's API tokens (as the password change ends their other sessions)."""

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        services.clear_login_failures(form.user.email)
        services.mark_confirmed(self.request, form.user)  # the reset link proved the mailbox
        _tokens_revoked_message(self.request, services.revoke_all_tokens(form.user))
        return response


class PasswordChange(auth_views.PasswordChangeView):
    """Change the password (the current one first); ends the user's other sessions and revokes their API
    tokens, saying so."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:tokens")

    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Password changed; you are signed out everywhere else.")
        _tokens_revoked_message(self.request, services.revoke_all_tokens(form.user))
        return response
