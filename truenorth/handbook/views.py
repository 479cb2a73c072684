"""The handbook at /docs/: public product documentation, readable without signing in (the same text
ships in the repository and the package; nothing in it belongs to an organisation)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

from truenorth.handbook import pages


def _show(request: HttpRequest, name: str) -> HttpResponse:
    if not pages.known(name) or not pages.path_of(name).is_file():
        raise Http404("No such handbook page.")
    base = reverse("handbook:index")
    page = pages.render(name, base)
    contents = [(pages.page_url(base, n), pages.title_of(n), n == name) for n in pages.PAGES]
    return render(
        request,
        "handbook/page.html",
        {
            "page": page,
            # Trusted files shipped with the code, rendered with raw HTML escaped (pages.render).
            "body": mark_safe(page.html),  # noqa: S308
            "contents": contents,
            "index_url": base,
            "is_index": name == pages.INDEX,
        },
    )


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    return _show(request, pages.INDEX)


@require_safe
def page(request: HttpRequest, page: str) -> HttpResponse:
    return _show(request, page)
