"""Notifications: the signed-in person's notices in the current organisation, and marking them read."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from truenorth.notifications import services
from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership

LIST_ROWS = 100


@org_view
@require_GET
def notifications(request: HttpRequest, membership: Membership) -> HttpResponse:
    rows = list(services.notifications_of(current_user(request), membership.organisation)[:LIST_ROWS])
    return render(
        request,
        "notifications/notifications.html",
        {"membership": membership, "org": membership.organisation, "rows": rows},
    )


@org_view
@require_POST
def mark_read(request: HttpRequest, membership: Membership) -> HttpResponse:
    """Mark the notices named by `id` read (all of this organisation's when none is named)."""
    user = current_user(request)
    ids = [int(i) for i in request.POST.getlist("id") if i.isdigit() and len(i) <= 18]
    mine = services.notifications_of(user, membership.organisation).filter(read_at__isnull=True)
    if ids:
        mine = mine.filter(pk__in=ids)
    count = services.mark_read(user, list(mine.values_list("pk", flat=True)))
    if not ids:
        messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return redirect("notifications:notifications", org_slug=membership.organisation.slug)
