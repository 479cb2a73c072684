from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers and `truenorth check`."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure is "unhealthy", never a 500 page
        return JsonResponse({"status": "error", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Not found.", "errors": []}, status=404)
    return render(request, "404.html", {}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Internal error; it has been logged.", "errors": []}, status=500)
    return render(request, "500.html", {}, status=500)


def too_large(request: HttpRequest, limit: int, field: str = "body") -> HttpResponse:
    """413: the request body is over a configured limit (docs/operations.md, "Limits"); JSON for the API."""
    megabytes = f"{limit / 2**20:g} MB"
    message = f"The request is larger than the {megabytes} this server accepts."
    if _wants_json(request):
        return JsonResponse(
            {"detail": message, "errors": [{"field": field, "message": message}], "limit_bytes": limit},
            status=413,
        )
    return render(request, "413.html", {"message": message}, status=413)


def too_many_fields(request: HttpRequest, exception: Exception) -> HttpResponse:
    """413: more form fields or files than DATA_UPLOAD_MAX_NUMBER_FIELDS / _FILES (Django's checks)."""
    if isinstance(exception, TooManyFilesSent):
        message = f"The request has more than the {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files this server accepts."
    else:
        message = f"The request has more than the {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} form fields this server accepts."
    if _wants_json(request):
        return JsonResponse(
            {"detail": message, "errors": [{"field": "body", "message": message}]}, status=413
        )
    return render(request, "413.html", {"message": message}, status=413)


def malformed_json(request: HttpRequest) -> HttpResponse:
    """422: an API body that is not JSON (django-ninja says only "Cannot parse request body", 400)."""
    message = "The request body is not valid JSON."
    return JsonResponse({"detail": message, "errors": [{"field": "body", "message": message}]}, status=422)


def method_not_allowed(request: HttpRequest, allow: str = "") -> HttpResponse:
    """405 on the web: an address that only a form's button uses (e.g. …/conclude/ opened by its link),
    with a way back to the page holding that form (the address one level up)."""
    path = request.path.rstrip("/")
    parent = path.rsplit("/", 1)[0] + "/" if "/" in path.strip("/") else "/"
    context = {"method": request.method, "allow": allow, "back": parent}
    return render(request, "405.html", context, status=405)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):  # a body read past DATA_UPLOAD_MAX_MEMORY_SIZE
        return too_large(request, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        return too_many_fields(request, exception)
    if _wants_json(request):
        return JsonResponse({"detail": "Bad request.", "errors": []}, status=400)
    return render(request, "400.html", {}, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": "Forbidden.", "errors": []}, status=403)
    return render(request, "403.html", {"message": str(exception or "")}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"detail": f"CSRF check failed: {reason}", "errors": []}, status=403)
    return render(
        request,
        "403.html",
        {"message": "Your form expired or came from another site. Reload the page and try again."},
        status=403,
    )
