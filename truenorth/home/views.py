"""Where people land: the organisation they last used (or a welcome to start one), and its dashboard.

The dashboard composes every pillar, so it lives on the top floor: the pillars' apps never import it.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from truenorth.home import pillars
from truenorth.notifications.services import notifications_of
from truenorth.orgs import pagecache
from truenorth.orgs.access import CURRENT_ORG_SESSION_KEY, current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.orgs.services import memberships_of
from truenorth.strategy import services as strategy


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Send people to the organisation they last used, or help them start one."""
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    memberships = list(memberships_of(current_user(request)))
    if not memberships:
        return render(request, "home/welcome.html", {})
    wanted = request.session.get(CURRENT_ORG_SESSION_KEY)
    # Without a remembered choice, the organisation joined first (usually one's own) wins.
    first_joined = min(memberships, key=lambda m: (m.joined_at, m.pk))
    chosen = next((m for m in memberships if m.organisation.slug == wanted), first_joined)
    return redirect("home:dashboard", org_slug=chosen.organisation.slug)


@org_view
def dashboard(request: HttpRequest, membership: Membership) -> HttpResponse:
    return pagecache.cached_render(
        request, membership, "home/dashboard.html", lambda: _dashboard(request, membership)
    )


def _dashboard(request: HttpRequest, membership: Membership) -> dict[str, object]:
    org = membership.organisation
    user = current_user(request)
    progress = strategy.progress_for_org(org.pk)
    counts = strategy.product_counts(membership)
    by_product = strategy.product_progress(membership, progress)
    product_list = list(strategy.products_of(membership).prefetch_related(None))
    products = [(p, counts.get(p.pk, {}).get("goals", 0), by_product.get(p.pk)) for p in product_list]
    org_goals = strategy.tree_level(membership, product_id=None, parent_id=None, progress=progress)
    unread = list(notifications_of(user, org).filter(read_at__isnull=True)[:10])
    overdue = strategy.overdue_checkins(membership)  # everyone's: the Engagement card counts them
    mine = [o for o in overdue if o.goal.owner_id == user.pk]
    return {
        "membership": membership,
        "org": org,
        "member_count": org.memberships.count(),
        "products": products,
        "org_goals": org_goals,
        "my_overdue": mine[:20],
        "unread": unread,
        **pillars.cards(membership, product_list, overdue_checkins=len(overdue)),
    }
