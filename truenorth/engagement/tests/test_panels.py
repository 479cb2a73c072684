from __future__ import annotations

from typing import TYPE_CHECKING

from django.urls import reverse

from truenorth.engagement.services import mail, stakeholders
from truenorth.strategy import services as vision

if TYPE_CHECKING:
    from conftest import Persona


def test_the_goal_page_offers_following_and_names_the_goals_stakeholders(owner: Persona) -> None:
    m = owner.membership
    assert m is not None
    product = vision.create_product(m, owner.user, name="Trail App")
    goal = vision.create_goal(m, owner.user, product_id=product.pk, title="Faster onboarding")
    stakeholders.create_stakeholder(m, owner.user, name="Lena Legal", department="legal", goals=[goal.pk])
    url = reverse("strategy:goal", args=[m.organisation.slug, goal.pk])
    page = owner.client.get(url).content.decode()
    assert 'data-testid="goal-engagement"' in page and "Lena Legal" in page
    follow = reverse("engagement:follow_goal", args=[m.organisation.slug, goal.pk])
    assert follow in page
    response = owner.client.post(follow, {"next": url})
    assert response.status_code == 302 and response.headers["Location"] == url
    assert mail.is_following(m, goal_id=goal.pk)
    page = owner.client.get(url).content.decode()
    assert reverse("engagement:unfollow_goal", args=[m.organisation.slug, goal.pk]) in page


def test_the_product_page_leads_to_its_brief_and_offers_following(owner: Persona, stakeholder: Persona) -> None:
    m = owner.membership
    assert m is not None
    product = vision.create_product(m, owner.user, name="Trail App", product_goal="Hikers plan in minutes")
    url = reverse("strategy:product", args=[m.organisation.slug, product.pk])
    page = stakeholder.client.get(url).content.decode()
    assert reverse("engagement:brief", args=[m.organisation.slug, product.pk]) in page
    assert reverse("engagement:product_activity", args=[m.organisation.slug, product.pk]) in page
    assert reverse("engagement:follow_product", args=[m.organisation.slug, product.pk]) in page
    assert 'data-testid="product-alignment"' not in page  # no pulse yet
