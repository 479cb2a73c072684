"""Prometheus metrics (issue 13): request latency by route, queue depth, failures; `/metrics` behind a token."""

from __future__ import annotations

from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse


class MetricsMiddleware:
    """Times every request by route (placeholder: passes requests through)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics` (placeholder: not configured)."""
    raise Http404
