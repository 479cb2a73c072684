"""Goal trees of thousands of goals render in a fixed number of SQL queries.

A product with 2,000 goals (20 strategic goals with 99 sub-goals each, every goal with a target
measure and an observation) must render its pages with exactly as many queries as a product with 20
goals (2 x 10): nothing on these pages may run a query per goal.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from truenorth.strategy import services
from truenorth.strategy.models import Goal, Product, TargetMeasure, TargetObservation, WorkItem

# Web pages: session, user, membership, then the page's own queries (and the header's unread count).
PINNED = {
    "product": 23,  # + the Engagement panel: following, the alignment (issue 11)
    "children": 9,
    "goal": 30,  # + the Value measures a target may track (issue 9), the Engagement panel (issue 11)
    "products": 15,
    "dashboard": 24,  # + the Value, Validation (issue 9) and Engagement (issue 11) cards
    "alignment": 15,  # + the Value measures the new goal's target may track
}


def _grow(owner: Any, product: Product, roots: int, per_root: int) -> Goal:
    """roots strategic goals with per_root sub-goals each; returns the first root."""
    org = product.organisation
    tops = Goal.objects.bulk_create(
        [
            Goal(
                organisation=org,
                product=product,
                title=f"Strategic {i:03}",
                owner=owner.user,
                status=Goal.Status.ACTIVE,
                level=Goal.Level.STRATEGIC,
                position=i,
            )
            for i in range(roots)
        ]
    )
    subs = Goal.objects.bulk_create(
        [
            Goal(
                organisation=org,
                product=product,
                parent=t,
                title=f"Tactical {t.pk}-{j:03}",
                level=Goal.Level.TACTICAL,
                owner=owner.user if j % 2 else None,
                position=j,
            )
            for t in tops
            for j in range(per_root - 1)
        ]
    )
    targets = TargetMeasure.objects.bulk_create(
        [TargetMeasure(goal=g, name="Share", baseline=0, target=100) for g in [*tops, *subs]]
    )
    TargetObservation.objects.bulk_create(
        [TargetObservation(target_measure=t, value=(t.pk % 100)) for t in targets]
    )
    WorkItem.objects.bulk_create(
        [
            WorkItem(organisation=org, product=product, title=f"Ticket {g.pk}", goal=g if g.pk % 3 else None)
            for g in subs
        ]
    )
    return tops[0]


def _count(client: Any, path: str, **headers: str) -> tuple[int, str]:
    client.get(path, headers=headers)  # warm-up (session writes)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.status_code)
    return len(ctx.captured_queries), response.content.decode()


def _pages(product: Product, root: Goal) -> dict[str, tuple[str, dict[str, str]]]:
    org = {"org_slug": "alpha"}
    return {
        "product": (reverse("strategy:product", kwargs={**org, "product_id": product.pk}), {}),
        "children": (
            reverse("strategy:goal_children", kwargs={**org, "goal_id": root.pk}),
            {"HX-Request": "true"},
        ),
        "goal": (reverse("strategy:goal", kwargs={**org, "goal_id": root.pk}), {}),
        "products": (reverse("strategy:products", kwargs=org), {}),
        "dashboard": (reverse("home:dashboard", kwargs=org), {}),
        "alignment": (reverse("strategy:alignment", kwargs=org), {}),
    }


def _measure(owner: Any, roots: int, per_root: int, name: str) -> dict[str, tuple[int, str]]:
    product = services.create_product(owner.membership, owner.user, name=name)
    root = _grow(owner, product, roots, per_root)
    return {
        key: _count(owner.client, path, **headers) for key, (path, headers) in _pages(product, root).items()
    }


@pytest.mark.django_db
def test_a_product_of_2000_goals_renders_in_as_many_queries_as_one_of_20(owner, settings):
    settings.TRUENORTH_PAGE_CACHE_SECONDS = 0  # the pages as built, not as kept (orgs/pagecache.py)
    small = _measure(owner, 2, 10, "Small")
    assert Goal.objects.filter(product__name="Small").count() == 20
    large = _measure(owner, 20, 100, "Large")
    assert Goal.objects.filter(product__name="Large").count() == 2000

    # The large pages really show the large tree.
    product_html = large["product"][1]
    assert "Strategic 019" in product_html
    assert "100 sub-goals" not in product_html and "99 sub-goals" in product_html
    assert large["children"][1].count('class="tree-item"') == 99
    assert large["goal"][1].count('class="tree-item"') == 99

    counts_small = {k: v[0] for k, v in small.items()}
    counts_large = {k: v[0] for k, v in large.items()}
    assert counts_small == counts_large, "a page's query count grows with the number of goals"
    assert counts_large == PINNED, counts_large
