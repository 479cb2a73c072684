from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from truenorth.accounts import services
from truenorth.accounts.forms import SignInForm, SignUpForm, TokenForm
from truenorth.core.access import apply_error, current_user
from truenorth.core.errors import DomainError, NotFound, TooManyRequests
from truenorth.orgs.services import create_organisation


def _next_url(request: HttpRequest) -> str | None:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return None


@require_http_methods(["GET", "POST"])
def sign_up(request: HttpRequest) -> HttpResponse:
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
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome to TrueNorth.")
            if target := _next_url(request):
                return redirect(target)
            return redirect("orgs:dashboard", org_slug=org.slug) if org else redirect("core:home")
    return render(request, "accounts/signup.html", {"form": form, "next": _next_url(request)})


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            user = services.sign_in(request, form.cleaned_data["email"], form.cleaned_data["password"])
        except TooManyRequests as exc:
            form.add_error(None, exc.message)
            status = 429
        except DomainError as exc:
            form.add_error(None, exc.message)
        else:
            login(request, user)
            return redirect(_next_url(request) or "core:home")
    return render(request, "accounts/login.html", {"form": form, "next": _next_url(request)}, status=status)


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("accounts:login")


NEW_TOKEN_SESSION_KEY = "new_api_token"


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """List and create tokens; a new secret is shown once, on the page after the redirect."""
    user = current_user(request)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            _, raw = services.create_token(user, form.cleaned_data["name"], form.cleaned_data["scope"])
        except DomainError as exc:
            apply_error(form, exc)
        else:
            # Post/redirect/get, so reloading the page cannot create a second token.
            request.session[NEW_TOKEN_SESSION_KEY] = raw
            return redirect("accounts:tokens")
    created = request.session.pop(NEW_TOKEN_SESSION_KEY, None) if request.method == "GET" else None
    return render(
        request,
        "accounts/tokens.html",
        {"form": form, "tokens": services.tokens_of(user), "created": created},
    )


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


class PasswordResetConfirm(auth_views.PasswordResetConfirmView):
    """Django's reset confirmation, which also lifts a sign-in lockout on the address."""

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        services.clear_login_failures(form.user.email)
        return response
