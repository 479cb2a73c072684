"""Engagement pages: briefs — the product brief (page and Markdown), its PDF as a background job, share
links (created, listed and revoked by members), and the public read-only share page."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from truenorth.core.errors import NotFound, TooManyRequests, ValidationFailed
from truenorth.engagement.services import briefs as services
from truenorth.engagement.services import throttle
from truenorth.engagement.services.briefs_render import brief_markdown, pdf_filename
from truenorth.orgs.access import apply_error, current_user, org_view
from truenorth.orgs.models import Membership

ORG = "o/<slug:org_slug>/"
BRIEF = ORG + "products/<id:product_id>/brief/"

# Share pages are reached without signing in: at most this many requests per address and minute.
SHARE_LIMIT = 60
SHARE_WINDOW = 60


class ShareLinkForm(forms.Form):
    label = forms.CharField(max_length=120, initial="Board pack")
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=services.SHARE_MAX_DAYS, initial=services.SHARE_DEFAULT_DAYS
    )


def _markdown_response(brief: services.Brief) -> HttpResponse:
    response = HttpResponse(brief_markdown(brief), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{pdf_filename(brief, "md")}"'
    return response


def _page(
    request: HttpRequest,
    membership: Membership,
    product_id: int,
    form: ShareLinkForm | None = None,
    status: int = 200,
) -> HttpResponse:
    brief = services.build_brief(membership, product_id)
    return TemplateResponse(
        request,
        "engagement/briefs/brief.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "brief": brief,
            "chart_items": [(m, None) for m in brief.charts],
            "links": services.share_links_of(membership, product_id),
            "form": form or ShareLinkForm(),
            "can_write": membership.can_write,
            "now": timezone.now(),
            "max_days": services.SHARE_MAX_DAYS,
            "document_days": services.DOCUMENT_DAYS,
        },
        status=status,
    )


@org_view
@require_GET
def brief(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    """The product brief: one printable page; `?format=md` downloads it as Markdown."""
    if request.GET.get("format") == "md":
        return _markdown_response(services.build_brief(membership, product_id))
    return _page(request, membership, product_id)


@org_view
@require_POST
def brief_pdf(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    """Make the PDF on the worker and show the job's page, which links the document when it is ready."""
    try:
        job = services.submit_pdf(membership, current_user(request), product_id)
    except TooManyRequests as exc:
        from django.contrib import messages

        messages.error(request, exc.message)
        return redirect(reverse("engagement:brief", args=(membership.organisation.slug, product_id)))
    return redirect(reverse("jobs:job", args=(membership.organisation.slug, job.pk)))


@org_view
@require_GET
def brief_document(request: HttpRequest, membership: Membership, document_id: int) -> HttpResponse:
    """A PDF made for me (only for the member who asked for it, while it is kept)."""
    document = services.get_document(membership, current_user(request), document_id)
    response = HttpResponse(bytes(document.pdf), content_type="application/pdf")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", document.product.name).strip("-").lower() or "product"
    name = f"{slug}-brief-{document.created_at:%Y-%m-%d}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@org_view
@require_POST
def share_create(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    """Create a share link and show its address once."""
    form = ShareLinkForm(request.POST)
    if form.is_valid():
        try:
            link, raw = services.create_share_link(
                membership,
                current_user(request),
                product_id,
                label=form.cleaned_data["label"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except ValidationFailed as exc:
            apply_error(form, exc)
        else:
            url = request.build_absolute_uri(reverse("engagement:share", args=(raw,)))
            context: dict[str, Any] = {"org": membership.organisation, "link": link, "url": url}
            response = TemplateResponse(request, "engagement/briefs/share_created.html", context, status=201)
            response["Cache-Control"] = "no-store"
            return response
    return _page(request, membership, product_id, form=form, status=422)


@org_view
@require_POST
def share_revoke(
    request: HttpRequest, membership: Membership, product_id: int, share_link_id: int
) -> HttpResponse:
    link = services.get_share_link(membership, share_link_id)
    if link.product_id != product_id:
        raise NotFound("No such share link.")
    services.revoke_share_link(membership, current_user(request), share_link_id)
    return redirect(
        reverse("engagement:brief", args=(membership.organisation.slug, product_id)) + "#brief-share-h"
    )


def _client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


def _gone(request: HttpRequest) -> HttpResponse:
    return HttpResponse(render_to_string("engagement/briefs/share_404.html"), status=404)


def _shared(request: HttpRequest, token: str) -> tuple[services.ShareLink, services.Brief] | HttpResponse:
    try:
        throttle.hit("share-link", _client_address(request), limit=SHARE_LIMIT, window=SHARE_WINDOW)
    except TooManyRequests as exc:
        response = HttpResponse(exc.message, status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(SHARE_WINDOW)
        return response
    try:
        link = services.open_share_link(token)
    except NotFound:
        return _gone(request)
    return link, services.shared_brief(link)


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store, private"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def share(request: HttpRequest, token: str) -> HttpResponse:
    """The public, read-only brief of a live share link: the brief and nothing else of the tool."""
    found = _shared(request, token)
    if isinstance(found, HttpResponse):
        return _private(found)
    link, shared = found
    context = {
        "brief": shared,
        "chart_items": [(m, None) for m in shared.charts],
        "expires_at": link.expires_at,
        "markdown_url": reverse("engagement:share_markdown", args=(token,)),
    }
    return _private(TemplateResponse(request, "engagement/briefs/share.html", context))


@require_GET
def share_markdown(request: HttpRequest, token: str) -> HttpResponse:
    found = _shared(request, token)
    if isinstance(found, HttpResponse):
        return _private(found)
    return _private(_markdown_response(found[1]))


urlpatterns: list[URLPattern] = [
    path(BRIEF, brief, name="brief"),
    path(BRIEF + "pdf/", brief_pdf, name="brief_pdf"),
    path(BRIEF + "share-links/", share_create, name="brief_share_create"),
    path(BRIEF + "share-links/<id:share_link_id>/revoke/", share_revoke, name="brief_share_revoke"),
    path(ORG + "brief-documents/<id:document_id>/", brief_document, name="brief_document"),
    path("share/<str:token>/", share, name="share"),
    path("share/<str:token>/brief.md", share_markdown, name="share_markdown"),
]

__all__ = ["urlpatterns"]
