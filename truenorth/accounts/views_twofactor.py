"""Pages of two-factor sign-in: set-up and status (account → two-factor sign-in), new recovery codes,
turning it off, and the second step of signing in. The rules are in accounts/twofactor.py."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from truenorth.accounts import twofactor
from truenorth.accounts.models import User
from truenorth.accounts.views import _remember_device
from truenorth.core import crypto
from truenorth.core.errors import DomainError, TooManyRequests
from truenorth.orgs.access import apply_error, current_user

CODE_HELP = "The 6-digit code your authenticator app shows now."


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=40,
        help_text=CODE_HELP,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class SecondStepForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=40,
        help_text="From your authenticator app, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True}),
    )


class DisableForm(forms.Form):
    password = forms.CharField(
        label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )
    code = forms.CharField(
        label="Code", max_length=40, help_text="From your authenticator app, or a recovery code."
    )


def _status(error: DomainError) -> int:
    return 429 if isinstance(error, TooManyRequests) else 200


def _never_cached(response: HttpResponse) -> HttpResponse:
    add_never_cache_headers(response)  # the page carries a secret or codes: never from a cache
    return response


def _setup_secret(request: HttpRequest, user: User, *, fresh: bool = False) -> str:
    """The secret being set up in this session (sealed there until confirmed); a new one if none."""
    data = request.session.get(twofactor.SETUP_SESSION_KEY)
    if not fresh and isinstance(data, dict) and data.get("u") == user.pk:
        secret = crypto.unseal(str(data.get("s", "")), twofactor.SECRET_INFO)
        if secret:
            return secret
    secret = twofactor.new_secret()
    request.session[twofactor.SETUP_SESSION_KEY] = {
        "u": user.pk,
        "s": crypto.seal(secret, twofactor.SECRET_INFO),
    }
    return secret


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def _codes_page(request: HttpRequest, codes: list[str], user: User) -> HttpResponse:
    context = {"codes": codes, "required_by": twofactor.required_by(user)}
    return _never_cached(render(request, "accounts/two_factor_codes.html", context))


@login_required
@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Status and set-up. Off: the QR code and secret of a new authenticator and a form to confirm it
    (POST), which answers the recovery codes once. On: forms for new recovery codes and turning it off."""
    user = current_user(request)
    context: dict[str, object] = {"required_by": twofactor.required_by(user)}
    if not user.has_usable_password():
        return render(request, "accounts/two_factor.html", {**context, "no_password": True})
    if twofactor.is_enabled(user):
        context.update(
            status=twofactor.status(user),
            regenerate_form=CodeForm(auto_id="regenerate_%s"),
            disable_form=DisableForm(auto_id="disable_%s"),
        )
        return render(request, "accounts/two_factor.html", context)
    form = CodeForm(request.POST if request.method == "POST" else None)
    secret = _setup_secret(request, user, fresh=request.POST.get("action") == "restart")
    status = 200
    if request.method == "POST" and request.POST.get("action") != "restart" and form.is_valid():
        try:
            codes = twofactor.confirm(user, secret, form.cleaned_data["code"])
        except DomainError as exc:
            apply_error(form, exc)
            status = _status(exc)
        else:
            request.session.pop(twofactor.SETUP_SESSION_KEY, None)
            return _codes_page(request, codes, user)
    elif request.POST.get("action") == "restart":
        form = CodeForm()
    uri = twofactor.provisioning_uri(user, secret)
    context.update(
        form=form, secret=_grouped(secret), qr=twofactor.qr_data_uri(uri), issuer=twofactor.issuer()
    )
    return _never_cached(render(request, "accounts/two_factor.html", context, status=status))


@login_required
@require_POST
def regenerate_codes(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    form = CodeForm(request.POST, auto_id="regenerate_%s")
    if form.is_valid():
        try:
            codes = twofactor.regenerate_recovery_codes(user, form.cleaned_data["code"])
        except DomainError as exc:
            apply_error(form, exc)
            return _enabled_page(request, user, _status(exc), regenerate_form=form)
        return _codes_page(request, codes, user)
    return _enabled_page(request, user, 200, regenerate_form=form)


@login_required
@require_POST
def disable(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    form = DisableForm(request.POST, auto_id="disable_%s")
    if form.is_valid():
        try:
            twofactor.disable(user, form.cleaned_data["password"], form.cleaned_data["code"])
        except DomainError as exc:
            apply_error(form, exc)
            return _enabled_page(request, user, _status(exc), disable_form=form)
        messages.success(request, "Two-factor sign-in is off; your recovery codes no longer work.")
        return redirect("accounts:two_factor")
    return _enabled_page(request, user, 200, disable_form=form)


def _enabled_page(
    request: HttpRequest,
    user: User,
    status: int,
    *,
    regenerate_form: CodeForm | None = None,
    disable_form: DisableForm | None = None,
) -> HttpResponse:
    if not twofactor.is_enabled(user):
        return redirect("accounts:two_factor")
    context = {
        "required_by": twofactor.required_by(user),
        "status": twofactor.status(user),
        "regenerate_form": regenerate_form or CodeForm(auto_id="regenerate_%s"),
        "disable_form": disable_form or DisableForm(auto_id="disable_%s"),
    }
    return render(request, "accounts/two_factor.html", context, status=status)


@require_http_methods(["GET", "POST"])
def sign_in_step(request: HttpRequest) -> HttpResponse:
    """The second step of signing in: a code for the account whose password this browser just gave."""
    pending = twofactor.pending_user(request)
    if pending is None:
        messages.info(request, "Your sign-in expired or was not started here: sign in again.")
        return redirect("accounts:login")
    user, target = pending
    form = SecondStepForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            method = twofactor.verify(user, form.cleaned_data["code"], sign_in=True)
        except DomainError as exc:
            apply_error(form, exc)
            status = _status(exc)
        else:
            twofactor.finish_sign_in(request, user, method)
            if method == "recovery":
                left = twofactor.recovery_codes_left(user)
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. Create new ones if you lost your app.",
                )
            allowed = {request.get_host()}
            if target and url_has_allowed_host_and_scheme(target, allowed, request.is_secure()):
                return _remember_device(redirect(target), user)
            return _remember_device(redirect("home:home"), user)
    return render(request, "accounts/two_factor_sign_in.html", {"form": form}, status=status)
