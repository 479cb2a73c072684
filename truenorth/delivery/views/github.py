"""Delivery pages: a GitHub source's API connection. /o/<org>/delivery/sources/<id>/github/
(`delivery:source_github`: the connection form — repository, API address, token, never shown back —
its fetches and its history), "Fetch now" (`delivery:source_github_fetch`, POST → a background job, then
its page) and "Disconnect" (`delivery:source_github_disconnect`, POST). Views only parse forms and call
delivery/services/github_fetch.py.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_http_methods, require_POST

from truenorth.core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from truenorth.core.forms import MISSING_VERSION, VersionField, posted_version, require_version
from truenorth.delivery.models import DEFAULT_GITHUB_API_URL, DeliverySource, GitHubConnection
from truenorth.delivery.services import github_fetch
from truenorth.delivery.services.sources import get_source, run_summary
from truenorth.history.services import entries_for
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership, Role


class GitHubForm(forms.Form):
    repository = forms.CharField(max_length=300, help_text="owner/name, e.g. octo-org/payments.")
    api_url = forms.CharField(
        max_length=2000,
        required=False,
        label="API address",
        initial=DEFAULT_GITHUB_API_URL,
        help_text="https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server.",
    )
    token = forms.CharField(
        max_length=1000,
        required=False,
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
        help_text="A fine-grained token that can read the repository (contents, pull requests, issues, "
        "deployments). Stored encrypted, never shown again.",
    )
    version = VersionField(required=False)

    def __init__(self, *args: Any, connected: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if connected:
            self.fields["token"].help_text = "Leave blank to keep the stored token."


def _page_url(membership: Membership, source_id: int) -> str:
    return reverse(
        "delivery:source_github", kwargs={"org_slug": membership.organisation.slug, "source_id": source_id}
    )


def _render(
    request: HttpRequest,
    membership: Membership,
    source: DeliverySource,
    connection: GitHubConnection | None,
    form: GitHubForm,
    status: int = 200,
) -> HttpResponse:
    runs = github_fetch.fetches_of(membership, source.pk)
    return render(
        request,
        "delivery/github/connection.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "source": source,
            "connection": connection,
            "info": github_fetch.describe(source, connection),
            "form": form,
            "writer": membership.has_role(Role.MEMBER),
            "runs": [(r, run_summary(r)) for r in runs],
            "history": entries_for(membership.organisation, connection)[:50] if connection else [],
        },
        status=status,
    )


@org_view
@require_http_methods(["GET", "POST"])
def source_github(request: HttpRequest, membership: Membership, source_id: int) -> HttpResponse:
    source = get_source(membership, source_id)
    connection = github_fetch.connection_of(membership, source.pk)
    initial = (
        {"repository": connection.repository, "api_url": connection.api_url, "version": connection.version}
        if connection
        else {"api_url": DEFAULT_GITHUB_API_URL}
    )
    form = GitHubForm(request.POST or None, initial=initial, connected=connection is not None)
    if request.method == "POST":
        if connection is not None:
            require_version(form)
        if form.is_valid():
            data = form.cleaned_data
            try:
                github_fetch.connect(
                    membership,
                    current_user(request),
                    source.pk,
                    repository=data["repository"],
                    api_url=data["api_url"],
                    token=data["token"],
                    version=data["version"],
                )
            except (ValidationFailed, Conflict) as exc:
                apply_error(form, exc)
            else:
                messages.success(request, f"“{source.name}” is connected to GitHub.")
                return redirect(_page_url(membership, source.pk))
        return _render(request, membership, source, connection, form, status=422)
    return _render(request, membership, source, connection, form)


@org_view
@require_POST
def source_github_fetch(request: HttpRequest, membership: Membership, source_id: int) -> HttpResponse:
    source = get_source(membership, source_id)
    try:
        job = github_fetch.submit_fetch(membership, current_user(request), source.pk)
    except (ValidationFailed, TooManyRequests) as exc:
        messages.error(request, exc.message)
        return redirect(_page_url(membership, source.pk))
    return redirect(reverse("jobs:job", args=(membership.organisation.slug, job.pk)))


@org_view
@require_POST
def source_github_disconnect(request: HttpRequest, membership: Membership, source_id: int) -> HttpResponse:
    source = get_source(membership, source_id)
    version = posted_version(request.POST)
    if version is None:
        messages.error(request, MISSING_VERSION)
        return redirect(_page_url(membership, source.pk))
    try:
        github_fetch.disconnect(membership, current_user(request), source.pk, version=version)
    except (Conflict, NotFound) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"“{source.name}” is no longer connected to GitHub; its data stays.")
    return redirect(_page_url(membership, source.pk))


ORG = "o/<slug:org_slug>/"

urlpatterns: list[URLPattern] = [
    path(ORG + "delivery/sources/<id:source_id>/github/", source_github, name="source_github"),
    path(
        ORG + "delivery/sources/<id:source_id>/github/fetch/", source_github_fetch, name="source_github_fetch"
    ),
    path(
        ORG + "delivery/sources/<id:source_id>/github/disconnect/",
        source_github_disconnect,
        name="source_github_disconnect",
    ),
]
