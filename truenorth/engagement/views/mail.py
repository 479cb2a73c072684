"""Engagement pages: mail — the outbox (admins), the signed-in person's notification settings and
follows, their digest preview, and the one-click unsubscribe page (no sign-in: the signed link is the
authority; rate-limited per link, and bad links per address)."""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.accounts.services import client_ip
from truenorth.core.errors import DomainError, NotFound, TooManyRequests
from truenorth.core.forms import VersionField
from truenorth.engagement.models import EmailStatus, NotificationSettings
from truenorth.engagement.services import mail, mail_digest, throttle
from truenorth.history.services import entries_for
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership

ORG = "o/<slug:org_slug>/"
OUTBOX_ROWS = 200
WEEKDAYS = [(0, "Monday"), (1, "Tuesday"), (2, "Wednesday"), (3, "Thursday"), (4, "Friday"), (5, "Saturday"),
            (6, "Sunday")]
UNSUBSCRIBE_LIMIT = 30  # per address per window
UNSUBSCRIBE_WINDOW = 600


# --- outbox ----------------------------------------------------------------------------------------


@org_view
@require_GET
def outbox(request: HttpRequest, membership: Membership) -> HttpResponse:
    status = request.GET.get("status") or None
    if status not in (None, *EmailStatus.values):
        status = None
    rows = list(mail.outbox(membership, status=status)[:OUTBOX_ROWS])
    return render(
        request,
        "engagement/mail/outbox.html",
        {"membership": membership, "org": membership.organisation, "rows": rows, "status": status,
         "statuses": EmailStatus.choices},
    )


@org_view
@require_POST
def outbox_retry(request: HttpRequest, membership: Membership, email_id: int) -> HttpResponse:
    try:
        email = mail.retry_now(membership, current_user(request), email_id)
    except NotFound:
        raise
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"“{email.subject}” to {email.to}: {email.get_status_display().lower()}.")
    return redirect("engagement:outbox", org_slug=membership.organisation.slug)


# --- notification settings and follows -------------------------------------------------------------


class NotificationSettingsForm(forms.Form):
    checkin_reminders = forms.BooleanField(
        required=False, label="E-mail me when a check-in on a goal I own falls due"
    )
    weekly_digest = forms.BooleanField(
        required=False, label="E-mail me a weekly digest of what changed in what I follow"
    )
    digest_weekday = forms.TypedChoiceField(choices=WEEKDAYS, coerce=int, label="Digest day")
    version = VersionField()


def _initial(current: NotificationSettings) -> dict[str, object]:
    return {
        "checkin_reminders": current.checkin_reminders,
        "weekly_digest": current.weekly_digest,
        "digest_weekday": current.digest_weekday,
        "version": current.version,
    }


@org_view
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest, membership: Membership) -> HttpResponse:
    current = mail.my_settings(membership)
    form = NotificationSettingsForm(request.POST or None, initial=_initial(current))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            mail.update_settings(
                membership,
                checkin_reminders=data["checkin_reminders"],
                weekly_digest=data["weekly_digest"],
                digest_weekday=data["digest_weekday"],
                version=data["version"],
            )
        except NotFound:
            raise
        except DomainError as exc:
            apply_error(form, exc)
        else:
            messages.success(request, "Notification settings saved.")
            return redirect("engagement:notification_settings", org_slug=membership.organisation.slug)
    history = (
        entries_for(membership.organisation, current)[:20] if current.pk else []
    )
    return render(
        request,
        "engagement/mail/settings.html",
        {"membership": membership, "org": membership.organisation, "form": form,
         "follows": list(mail.follows_of(membership)), "history": history},
    )


def _back(request: HttpRequest, membership: Membership) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect("engagement:notification_settings", org_slug=membership.organisation.slug)


def _follow_view(*, on: bool, kind: str) -> Callable[..., HttpResponse]:
    @org_view
    @require_POST
    def view(request: HttpRequest, membership: Membership, **ids: int) -> HttpResponse:
        target = {"product_id": ids.get("product_id"), "goal_id": ids.get("goal_id")}
        if on:
            followed = mail.follow(membership, **target)
            messages.success(request, f"You follow “{followed.product or followed.goal}”.")
        else:
            mail.unfollow(membership, **target)
            messages.success(request, f"You no longer follow this {kind}.")
        return _back(request, membership)

    view.__name__ = f"{'follow' if on else 'unfollow'}_{kind}"
    return view


follow_goal = _follow_view(on=True, kind="goal")
unfollow_goal = _follow_view(on=False, kind="goal")
follow_product = _follow_view(on=True, kind="product")
unfollow_product = _follow_view(on=False, kind="product")


@org_view
@require_GET
def digest_preview(request: HttpRequest, membership: Membership) -> HttpResponse:
    digest = mail_digest.build_digest(membership)
    return render(
        request,
        "engagement/mail/digest_preview.html",
        {"membership": membership, "org": membership.organisation, "digest": digest,
         "sections": [(title, items) for title, items in digest.sections if items]},
    )


# --- one-click unsubscribe (no sign-in) ------------------------------------------------------------


@csrf_exempt  # RFC 8058: the mail provider POSTs without our cookie or form; the signed token is the authority
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    # One-click POSTs come from mail providers' servers, many people behind one address: a valid link is
    # limited per link (person, organisation, kind); bad links per address.
    try:
        try:
            target = mail.read_unsubscribe_token(token)
        except NotFound as exc:
            throttle.hit("unsubscribe-bad", client_ip(request), limit=UNSUBSCRIBE_LIMIT, window=UNSUBSCRIBE_WINDOW)
            return render(request, "404.html", {"message": exc.message}, status=404)
        link = f"{target.user.pk}:{target.organisation.pk}:{target.kind}"
        throttle.hit("unsubscribe", link, limit=UNSUBSCRIBE_LIMIT, window=UNSUBSCRIBE_WINDOW)
    except TooManyRequests as exc:
        return render(request, "engagement/mail/unsubscribe.html", {"error": exc.message}, status=429)
    done = False
    if request.method == "POST":
        mail.unsubscribe(token)
        done = True
    return render(
        request,
        "engagement/mail/unsubscribe.html",
        {"target": target, "done": done, "what": "check-in reminders" if target.kind == "reminder" else
         "the weekly digest"},
    )


urlpatterns: list[URLPattern] = [
    path(ORG + "engagement/outbox/", outbox, name="outbox"),
    path(ORG + "engagement/outbox/<id:email_id>/retry/", outbox_retry, name="outbox_retry"),
    path(ORG + "settings/notifications/", notification_settings, name="notification_settings"),
    path(ORG + "settings/notifications/digest/", digest_preview, name="digest_preview"),
    path(ORG + "goals/<id:goal_id>/follow/", follow_goal, name="follow_goal"),
    path(ORG + "goals/<id:goal_id>/unfollow/", unfollow_goal, name="unfollow_goal"),
    path(ORG + "products/<id:product_id>/follow/", follow_product, name="follow_product"),
    path(ORG + "products/<id:product_id>/unfollow/", unfollow_product, name="unfollow_product"),
    path("unsubscribe/<str:token>/", unsubscribe, name="unsubscribe"),
]
