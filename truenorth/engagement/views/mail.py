"""Engagement pages: mail — the outbox (admins), notification settings and follows, the digest
preview, and the one-click unsubscribe page (no sign-in)."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path


def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    raise Http404("This unsubscribe link is not valid.")


urlpatterns: list[URLPattern] = [
    path("unsubscribe/<str:token>/", unsubscribe, name="unsubscribe"),
]
