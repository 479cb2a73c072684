"""Engagement pages: the activity feed (organisation and product), feed-token management, and the Atom
feed read with a feed token (no sign-in; rate-limited). Rules live in engagement/services/activity.py."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.http import require_GET, require_POST

from truenorth.core.errors import NotFound, TooManyRequests, ValidationFailed
from truenorth.engagement.services import activity as services
from truenorth.engagement.services import throttle
from truenorth.history.models import HistoryEntry
from truenorth.orgs.access import current_user, org_view
from truenorth.orgs.models import Membership
from truenorth.orgs.services import members_of
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Product


class ActivityFilterForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", required=False)
    action = forms.ChoiceField(
        label="Action", required=False, choices=[("", "Any"), *HistoryEntry.Action.choices]
    )
    person = forms.TypedChoiceField(label="Person", required=False, coerce=int, empty_value=None)
    goal = forms.IntegerField(label="Goal id", required=False, min_value=1, max_value=2**63 - 1)
    before = forms.CharField(required=False, widget=forms.HiddenInput, max_length=60)

    def __init__(self, *args: Any, people: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind: Any = self.fields["kind"]
        kind.choices = [("", "Any"), *services.kind_choices()]
        person: Any = self.fields["person"]
        person.choices = [("", "Anyone"), *people]


def _page(request: HttpRequest, membership: Membership, product: Product | None) -> HttpResponse:
    people = [(m.user_id, m.user.email) for m in members_of(membership)]
    form = ActivityFilterForm(request.GET or None, people=people)
    filters = services.Filters(product=product.pk if product else None)
    before = None
    page = services.Page()
    error = None
    if form.is_bound and not form.is_valid():
        error = "Check the filters."
    else:
        data = form.cleaned_data if form.is_bound else {}
        before = data.get("before") or None
        try:
            filters = services.clean_filters(
                kind=data.get("kind"),
                action=data.get("action"),
                person=data.get("person"),
                goal=data.get("goal"),
                product=product.pk if product else None,
            )
            page = services.activity(membership, filters, before=before)
        except ValidationFailed as exc:
            error = exc.message
        except NotFound:
            error = "No such goal in this organisation."
    query = request.GET.copy()
    query.pop("before", None)
    user = current_user(request)
    return render(
        request,
        "engagement/activity/activity.html",
        {
            "membership": membership,
            "org": membership.organisation,
            "product": product,
            "form": form,
            "page": page,
            "error": error,
            "first_page": not before,
            "filter_query": query.urlencode(),
            "feed_token": services.active_feed_token(membership, user),
        },
    )


@org_view
@require_GET
def activity(request: HttpRequest, membership: Membership) -> HttpResponse:
    return _page(request, membership, None)


@org_view
@require_GET
def product_activity(request: HttpRequest, membership: Membership, product_id: int) -> HttpResponse:
    return _page(request, membership, strategy.get_product(membership, product_id))


def _feed_url(request: HttpRequest, raw: str) -> str:
    return request.build_absolute_uri(reverse("engagement:activity_feed", kwargs={"token": raw}))


@org_view
@require_POST
def feed_token_create(request: HttpRequest, membership: Membership) -> HttpResponse:
    """A new feed token (the old one revoked), shown once on this answer and never again."""
    raw = services.create_feed_token(membership, current_user(request))
    response = render(
        request,
        "engagement/activity/feed_token.html",
        {"membership": membership, "org": membership.organisation, "feed_url": _feed_url(request, raw)},
    )
    response["Cache-Control"] = "no-store"
    return response


@org_view
@require_POST
def feed_token_revoke(request: HttpRequest, membership: Membership) -> HttpResponse:
    try:
        services.revoke_feed_token(membership, current_user(request))
    except NotFound:
        pass  # already revoked: the page shows there is none
    return redirect("engagement:activity", org_slug=membership.organisation.slug)


def _client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", ""))


@require_GET
def activity_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The organisation's activity as Atom, for the token's person while they are a member."""
    try:
        throttle.hit(
            "activity-feed",
            _client_address(request),
            limit=services.FEED_RATE_LIMIT,
            window=services.FEED_RATE_WINDOW,
        )
    except TooManyRequests as exc:
        return HttpResponse(exc.message, status=429, content_type="text/plain; charset=utf-8")
    try:
        membership = services.feed_membership(token)
        product_id = _int_or_none(request.GET.get("product"))
        filters = services.clean_filters(kind=request.GET.get("kind"), product=product_id)
        page = services.activity(membership, filters, limit=services.FEED_ENTRIES)
    except (NotFound, ValidationFailed):
        raise Http404("No such feed.") from None
    org = membership.organisation
    home = request.build_absolute_uri(reverse("engagement:activity", kwargs={"org_slug": org.slug}))
    feed = Atom1Feed(
        title=f"{org.name}: activity",
        link=home,
        description=f"Everything that happened in {org.name}.",
        feed_url=request.build_absolute_uri(),
        language="en",
    )
    for e in page.entries:
        h = e.entry
        changes = "; ".join(f"{name}: {c.get('old')} → {c.get('new')}" for name, c in h.changes.items())
        feed.add_item(
            title=f"{h.actor_name} {h.get_action_display().lower()} {e.kind.lower()} {h.object_repr}",
            link=request.build_absolute_uri(e.url) if e.url else home,
            description=changes or h.get_action_display(),
            unique_id=f"tag:truenorth,{org.slug}:history/{h.pk}",
            pubdate=h.at,
            updateddate=h.at,
            author_name=h.actor_name,
            categories=[e.kind],
        )
    response = HttpResponse(content_type="application/atom+xml; charset=utf-8")
    feed.write(response, "utf-8")
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _int_or_none(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit() or len(value) > 18:
        raise ValidationFailed("Not a product id.", field="product")
    return int(value)


ORG = "o/<slug:org_slug>/"

urlpatterns: list[URLPattern] = [
    path(ORG + "activity/", activity, name="activity"),
    path(ORG + "products/<id:product_id>/activity/", product_activity, name="product_activity"),
    path(ORG + "activity/feed-token/", feed_token_create, name="feed_token_create"),
    path(ORG + "activity/feed-token/revoke/", feed_token_revoke, name="feed_token_revoke"),
    path("feeds/<str:token>/activity.atom", activity_feed, name="activity_feed"),
]
