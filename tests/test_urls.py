"""The root URL configuration: the API comes first, which is only right while no page could claim api/."""

from __future__ import annotations

from typing import Any

from django.urls import URLResolver, get_resolver, resolve, reverse

from truenorth import urls


def _routes(patterns: list[Any], prefix: str = "") -> list[str]:
    found = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found.extend(_routes(pattern.url_patterns, route))
        else:
            found.append(route)
    return found


def test_the_api_is_tried_first_and_no_page_could_answer_under_api() -> None:
    first = urls.urlpatterns[0]
    assert isinstance(first, URLResolver) and str(first.pattern) == "api/v1/"
    pages = _routes(urls.urlpatterns[1:])
    assert len(pages) > 100
    # A page route starting with api/ or with a converter (which could match "api") would have answered
    # API addresses before the API when it came last.
    assert [r for r in pages if r.startswith(("api", "<", "^api", "^<", "^("))] == []


def test_api_and_page_addresses_resolve_as_before() -> None:
    assert resolve("/api/v1/orgs/acme/goals").view_name == "api:list_goals"
    assert resolve("/api/v1/orgs/acme/measures").view_name == "api:list_measures"
    assert resolve(reverse("home:dashboard", kwargs={"org_slug": "api"})).view_name == "home:dashboard"
    assert resolve("/healthz").view_name == "core:healthz"
    assert get_resolver().resolve("/api/v1/openapi.json").url_name == "openapi-json"
