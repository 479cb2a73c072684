"""API rate limits per token and per client address, counted in the shared cache (issue 13)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class APIRateLimitMiddleware:
    """Answers 429 with Retry-After past the limits (placeholder: passes requests through)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
