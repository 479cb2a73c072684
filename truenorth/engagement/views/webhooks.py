"""Engagement pages: outgoing webhooks. Every member sees the list (URLs masked) and the delivery log;
admins add, edit, pause, rotate the secret, remove, send a test event and replay a delivery. Views only
parse forms and call engagement/services/webhooks.py."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from truenorth.core.errors import Conflict, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, VersionField, posted_version
from truenorth.engagement.models import DeliveryStatus, Webhook, WebhookFormat
from truenorth.engagement.services import webhooks
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership, Role
from truenorth.orgs.services import require_role

FormErrors = (ValidationFailed, Conflict)
LOG_LENGTH = 100


class WebhookForm(forms.Form):
    name = forms.CharField(max_length=webhooks.MAX_NAME_LENGTH)
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="The receiver's https:// address (a Slack or Teams incoming-webhook URL for those formats).",
    )
    format = forms.ChoiceField(choices=WebhookFormat.choices)
    events = forms.MultipleChoiceField(
        choices=list(webhooks.EVENT_KINDS),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every event.",
    )
    active = forms.BooleanField(required=False, initial=True, help_text="Untick to pause sending.")
    version = VersionField(required=False)


def _list_url(membership: Membership) -> str:
    return reverse("engagement:webhooks", kwargs={"org_slug": membership.organisation.slug})


def _detail_url(membership: Membership, webhook_id: int) -> str:
    return reverse(
        "engagement:webhook", kwargs={"org_slug": membership.organisation.slug, "webhook_id": webhook_id}
    )


def _status_filter(request: HttpRequest) -> str:
    status = request.GET.get("status", "")
    return status if status in DeliveryStatus.values else ""


def _base(membership: Membership) -> dict[str, Any]:
    return {
        "membership": membership,
        "org": membership.organisation,
        "is_admin": membership.has_role(Role.ADMIN),
        "statuses": DeliveryStatus.choices,
    }


@org_view
@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = WebhookForm(request.POST or None)
    if request.method == "POST":
        require_role(membership, Role.ADMIN)
        if form.is_valid():
            data = form.cleaned_data
            try:
                hook, secret = webhooks.create_webhook(
                    membership,
                    current_user(request),
                    name=data["name"],
                    url=data["url"],
                    format=data["format"],
                    events=data["events"],
                    active=data["active"],
                )
            except FormErrors as exc:
                apply_error(form, exc)
            else:
                return _detail_page(request, membership, hook, secret=secret, status=201)
    status = _status_filter(request)
    hooks = list(webhooks.webhooks_of(membership))
    log = webhooks.deliveries_of(membership, status=status or None)[:LOG_LENGTH]
    return render(
        request,
        "engagement/webhooks/list.html",
        {
            **_base(membership),
            "rows": [
                (h, h.url if membership.has_role(Role.ADMIN) else webhooks.masked_url(h.url)) for h in hooks
            ],
            "deliveries": log,
            "status": status,
            "form": form,
        },
        status=422 if form.is_bound and form.errors else 200,
    )


def _edit_initial(hook: Webhook) -> dict[str, Any]:
    return {
        "name": hook.name,
        "url": hook.url,
        "format": hook.format,
        "events": list(hook.events),
        "active": hook.active,
        "version": hook.version,
    }


def _detail_page(
    request: HttpRequest,
    membership: Membership,
    hook: Webhook,
    *,
    form: WebhookForm | None = None,
    secret: str = "",
    status: int = 200,
) -> HttpResponse:
    is_admin = membership.has_role(Role.ADMIN)
    filtered = _status_filter(request)
    return render(
        request,
        "engagement/webhooks/detail.html",
        {
            **_base(membership),
            "hook": hook,
            "shown_url": hook.url if is_admin else webhooks.masked_url(hook.url),
            "form": form or (WebhookForm(initial=_edit_initial(hook)) if is_admin else None),
            "secret": secret,
            "status": filtered,
            "deliveries": webhooks.deliveries_of(membership, webhook_id=hook.pk, status=filtered or None)[
                :LOG_LENGTH
            ],
        },
        status=status,
    )


@org_view
@require_http_methods(["GET", "POST"])
def webhook_detail(request: HttpRequest, membership: Membership, webhook_id: int) -> HttpResponse:
    hook = webhooks.get_webhook(membership, webhook_id)
    if request.method != "POST":
        return _detail_page(request, membership, hook)
    require_role(membership, Role.ADMIN)
    form = WebhookForm(request.POST, initial=_edit_initial(hook))
    form.fields["version"].required = True
    if form.is_valid():
        data = form.cleaned_data
        try:
            updated = webhooks.update_webhook(
                membership,
                current_user(request),
                hook.pk,
                version=data["version"],
                name=data["name"],
                url=data["url"],
                format=data["format"],
                events=data["events"],
                active=data["active"],
            )
        except FormErrors as exc:
            apply_error(form, exc)
        else:
            messages.success(request, f"Webhook “{updated.name}” saved.")
            return redirect(_detail_url(membership, hook.pk))
    hook.refresh_from_db()
    return _detail_page(request, membership, hook, form=form, status=422)


@org_view
@require_POST
def webhook_delete(request: HttpRequest, membership: Membership, webhook_id: int) -> HttpResponse:
    require_role(membership, Role.ADMIN)
    hook = webhooks.get_webhook(membership, webhook_id)
    webhooks.delete_webhook(membership, current_user(request), hook.pk)
    messages.success(request, f"Webhook “{hook.name}” removed, with its delivery log.")
    return redirect(_list_url(membership))


@org_view
@require_POST
def webhook_rotate(request: HttpRequest, membership: Membership, webhook_id: int) -> HttpResponse:
    require_role(membership, Role.ADMIN)
    hook = webhooks.get_webhook(membership, webhook_id)
    version = posted_version(request.POST)
    if version is None:
        messages.error(request, MISSING_VERSION)
        return redirect(_detail_url(membership, hook.pk))
    try:
        hook, secret = webhooks.rotate_secret(membership, current_user(request), hook.pk, version=version)
    except Conflict as exc:
        messages.error(request, exc.message)
        return redirect(_detail_url(membership, hook.pk))
    return _detail_page(request, membership, hook, secret=secret)


@org_view
@require_POST
def webhook_test(request: HttpRequest, membership: Membership, webhook_id: int) -> HttpResponse:
    require_role(membership, Role.ADMIN)
    hook = webhooks.get_webhook(membership, webhook_id)
    webhooks.send_test(membership, current_user(request), hook.pk)
    messages.success(request, "Test event queued: its delivery shows below once the worker has sent it.")
    return redirect(_detail_url(membership, hook.pk))


@org_view
@require_GET
def delivery_detail(request: HttpRequest, membership: Membership, delivery_id: int) -> HttpResponse:
    delivery = webhooks.get_delivery(membership, delivery_id)
    return render(
        request,
        "engagement/webhooks/delivery.html",
        {
            **_base(membership),
            "delivery": delivery,
            "attempts": list(delivery.attempt_log.all()),
            "payload_json": json.dumps(delivery.payload, indent=2, ensure_ascii=False),
        },
    )


@org_view
@require_POST
def delivery_replay(request: HttpRequest, membership: Membership, delivery_id: int) -> HttpResponse:
    require_role(membership, Role.ADMIN)
    again = webhooks.replay(membership, current_user(request), delivery_id)
    messages.success(request, "Replay queued as a new delivery.")
    return redirect(
        reverse(
            "engagement:webhook_delivery",
            kwargs={"org_slug": membership.organisation.slug, "delivery_id": again.pk},
        )
    )


urlpatterns: list[URLPattern] = [
    path("o/<slug:org_slug>/engagement/webhooks/", webhook_list, name="webhooks"),
    path("o/<slug:org_slug>/engagement/webhooks/<int:webhook_id>/", webhook_detail, name="webhook"),
    path(
        "o/<slug:org_slug>/engagement/webhooks/<int:webhook_id>/delete/",
        webhook_delete,
        name="webhook_delete",
    ),
    path(
        "o/<slug:org_slug>/engagement/webhooks/<int:webhook_id>/rotate/",
        webhook_rotate,
        name="webhook_rotate",
    ),
    path("o/<slug:org_slug>/engagement/webhooks/<int:webhook_id>/test/", webhook_test, name="webhook_test"),
    path(
        "o/<slug:org_slug>/engagement/webhooks/deliveries/<int:delivery_id>/",
        delivery_detail,
        name="webhook_delivery",
    ),
    path(
        "o/<slug:org_slug>/engagement/webhooks/deliveries/<int:delivery_id>/replay/",
        delivery_replay,
        name="webhook_replay",
    ),
]
