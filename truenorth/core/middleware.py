"""Response headers Django 5.2 does not set itself."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class SecurityHeadersMiddleware:
    """Adds Content-Security-Policy and Permissions-Policy to every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


class APIMethodNotAllowedMiddleware:
    """django-ninja answers a wrong HTTP method with plain text; the API promises JSON errors. Web pages
    (`require_POST` views such as …/conclude/) answer an empty body: they get the 405 page instead."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code == 405
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            allow = response.get("Allow", "")
            json = JsonResponse(
                {"detail": f"Method {request.method} is not allowed here; use {allow}.", "errors": []},
                status=405,
            )
            if allow:
                json["Allow"] = allow
            return json
        if response.status_code == 405 and not request.path.startswith("/api/") and not response.content:
            from truenorth.core.views import method_not_allowed

            page = method_not_allowed(request, response.get("Allow", ""))
            for header in ("Allow", "Vary"):
                if header in response:
                    page[header] = response[header]
            return page
        return response


class RequestBodyLimitMiddleware:
    """Answers 413 to a request whose declared body is over the limits, before anything reads it.

    JSON and form bodies may hold DATA_UPLOAD_MAX_MEMORY_SIZE (TRUENORTH_MAX_JSON_BODY_MB); multipart
    bodies (file uploads) that plus the largest file an import accepts (TRUENORTH_IMPORT_MAX_FILE_BYTES).
    Django itself would raise RequestDataTooBig later, which became a 500 in the API."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.content_type == "multipart/form-data":
            limit += settings.TRUENORTH_IMPORT_MAX_FILE_BYTES
        if length > limit:
            from truenorth.core.views import too_large

            return too_large(request, limit)
        return self.get_response(request)
