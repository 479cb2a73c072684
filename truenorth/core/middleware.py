"""Response headers Django 5.2 does not set itself."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
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
    """Answers 413 to a request whose body is over the limits, before anything parses it.

    JSON and form bodies may hold DATA_UPLOAD_MAX_MEMORY_SIZE (TRUENORTH_MAX_JSON_BODY_MB); multipart
    bodies (file uploads) that plus the largest file an import accepts (TRUENORTH_IMPORT_MAX_FILE_BYTES).
    A declared Content-Length is checked at once. A chunked body (Transfer-Encoding, no Content-Length),
    which Django would read as empty, is read here up to the limit into a spooled temporary file (memory,
    then disk) when the server marks the stream terminated (gunicorn does), else refused with 411.
    Django itself would raise RequestDataTooBig later, which became a 500 in the API."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.content_type == "multipart/form-data":
            limit += settings.TRUENORTH_IMPORT_MAX_FILE_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        if not declared and "chunked" in str(request.META.get("HTTP_TRANSFER_ENCODING", "")).lower():
            refused = _spool_chunked_body(request, limit)
            if refused is not None:
                return refused
            declared = request.META["CONTENT_LENGTH"]
        try:
            length = int(declared or 0)
        except ValueError:
            length = 0
        if length > limit:
            from truenorth.core.views import too_large

            return too_large(request, limit)
        return self.get_response(request)


def _spool_chunked_body(request: HttpRequest, limit: int) -> HttpResponse | None:
    """Read a chunked body (at most `limit` bytes) and hand it on as if it had a Content-Length; or the
    411/413 answer."""
    from truenorth.core.views import too_large

    stream = request.META.get("wsgi.input")
    if stream is None or not request.META.get("wsgi.input_terminated"):
        message = "Send the request body with a Content-Length header; this server cannot read it chunked."
        if request.path.startswith("/api/"):
            return JsonResponse(
                {"detail": message, "errors": [{"field": "body", "message": message}]}, status=411
            )
        return HttpResponse(message, status=411, content_type="text/plain; charset=utf-8")
    spool = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)
    size = 0
    while chunk := stream.read(64 * 1024):
        size += len(chunk)
        if size > limit:
            spool.close()
            response = too_large(request, limit)
            response["Connection"] = "close"  # the rest of the body is not read
            return response
        spool.write(chunk)
    spool.seek(0)
    request.META["CONTENT_LENGTH"] = str(size)
    # Django's own stream over the body (the spool is removed when the request is garbage-collected).
    request._stream = cast(Any, LimitedStream(cast(Any, spool), size))
    return None
