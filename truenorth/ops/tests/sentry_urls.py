"""The project's URLs plus one view that fails, for the error-report tests (test_sentry.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from truenorth.urls import urlpatterns as project_urlpatterns


def boom(request: HttpRequest, thing_id: int) -> HttpResponse:
    raise RuntimeError(f"kaboom from the test (thing {thing_id})")


urlpatterns = [path("boom/<int:thing_id>/", boom, name="boom"), *project_urlpatterns]
