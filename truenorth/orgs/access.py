"""View decorators shared by every app: organisation access and write checks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec

from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from truenorth.accounts.models import User
from truenorth.accounts.twofactor import page_gate
from truenorth.core.errors import DomainError, Forbidden, NotFound
from truenorth.orgs.models import Membership
from truenorth.orgs.services import membership_for

P = ParamSpec("P")
OrgView = Callable[Concatenate[HttpRequest, Membership, P], HttpResponse]

CURRENT_ORG_SESSION_KEY = "current_org"


def current_user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def org_view(view: OrgView[P]) -> Callable[..., HttpResponse]:
    """Sign-in required; resolves <org_slug> to the user's membership or 404s (never 403)."""

    @login_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, org_slug: str, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            membership = membership_for(current_user(request), org_slug)
        except NotFound:
            raise Http404("No such organisation.") from None
        if request.session.get(CURRENT_ORG_SESSION_KEY) != org_slug:  # avoid a session write per page
            request.session[CURRENT_ORG_SESSION_KEY] = org_slug
        request.membership = membership  # type: ignore[attr-defined]
        if (held := page_gate(request, membership)) is not None:  # the organisation requires two-factor
            return held
        try:
            return view(request, membership, *args, **kwargs)
        except NotFound:
            raise Http404("Not found.") from None
        except Forbidden as exc:
            return TemplateResponse(
                request, "403.html", {"message": exc.message, "membership": membership}, status=403
            )

    return wrapper


def apply_error(form: Form, exc: DomainError) -> None:
    """Show a service error on the form, on its field when the form has it."""
    # Errors about hidden fields (e.g. a stale "version") are shown at the top of the form.
    visible = exc.field in form.fields and not form.fields[exc.field].widget.is_hidden
    field = exc.field if visible else None
    form.add_error(field, exc.message)
