"""The JSON API at /api/v1/: token auth, JSON errors, and the routers of every domain app."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from truenorth.accounts.models import APIToken
from truenorth.accounts.services import authenticate_token
from truenorth.core.errors import DomainError, Forbidden
from truenorth.core.views import malformed_json, too_large, too_many_fields

logger = logging.getLogger(__name__)

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class TokenAuth(HttpBearer):
    """`Authorization: Bearer tn_…` with a personal API token; read tokens may only read."""

    openapi_description = "A personal API token created under Account → API tokens."

    def authenticate(self, request: HttpRequest, token: str) -> APIToken | None:
        api_token = authenticate_token(token)
        if api_token is None:
            return None
        if request.method not in SAFE_METHODS and not api_token.can_write:
            raise Forbidden("This token is read-only; create a read-write token to make changes.")
        request.user = api_token.user
        return api_token


api = NinjaAPI(
    title="TrueNorth API",
    version="1",
    description=(
        "Everything the TrueNorth web interface can do. Authenticate with a personal API token: "
        '`Authorization: Bearer tn_…`. Errors are JSON: `{"detail": message, "errors": '
        '[{"field": name, "message": text}]}`.'
    ),
    auth=TokenAuth(),
    urls_namespace="api",
)


def _field_name(loc: list[Any] | tuple[Any, ...]) -> str:
    # ninja locations look like ("body", "payload", "name") or ("query", "limit"); keep the field path.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "payload")]
    return ".".join(parts) or "body"


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"field": _field_name(err.get("loc", ())), "message": str(err.get("msg", "is invalid"))}
        for err in exc.errors
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "Invalid input."
    return api.create_response(request, {"detail": summary, "errors": errors}, status=422)


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return api.create_response(request, exc.as_dict(), status=exc.status)


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": "Not found.", "errors": []}, status=404)


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request,
        {"detail": "Authentication required: send a valid, unrevoked API token.", "errors": []},
        status=401,
    )


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400 and str(exc) == "Cannot parse request body":  # django-ninja's words
        return malformed_json(request)
    return api.create_response(request, {"detail": str(exc), "errors": []}, status=exc.status_code)


@api.exception_handler(RequestDataTooBig)
def on_too_large(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    # Bodies that declare their size are refused by core.middleware before this; the rest land here.
    return too_large(request, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


@api.exception_handler(TooManyFieldsSent)
@api.exception_handler(TooManyFilesSent)
def on_too_many_fields(request: HttpRequest, exc: Exception) -> HttpResponse:
    return too_many_fields(request, exc)


@api.exception_handler(Exception)
def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("Unhandled API error on %s %s", request.method, request.path)
    return api.create_response(
        request, {"detail": "Internal error; it has been logged.", "errors": []}, status=500
    )


def _register_routers() -> None:
    from truenorth.accounts.api import router as accounts_router
    from truenorth.delivery.api import router as delivery_router
    from truenorth.engagement.api import router as engagement_router
    from truenorth.history.api import router as history_router
    from truenorth.hypotheses.api import router as hypotheses_router
    from truenorth.jobs.api import router as jobs_router
    from truenorth.measures.api import router as measures_router
    from truenorth.notifications.api import router as notifications_router
    from truenorth.orgs.api import router as orgs_router
    from truenorth.search.api import router as search_router
    from truenorth.strategy.api import router as strategy_router

    api.add_router("/", accounts_router)
    api.add_router("/orgs", orgs_router)
    api.add_router("/orgs", history_router)
    api.add_router("/orgs", strategy_router)
    api.add_router("/orgs", notifications_router)
    api.add_router("/orgs", measures_router)
    api.add_router("/orgs", hypotheses_router)
    api.add_router("/orgs", jobs_router)
    api.add_router("/orgs", search_router)
    api.add_router("/orgs", delivery_router)
    api.add_router("/orgs", engagement_router)


_register_routers()
