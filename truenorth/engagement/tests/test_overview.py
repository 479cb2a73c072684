from __future__ import annotations

from typing import TYPE_CHECKING

from django.test import Client
from django.urls import reverse

from truenorth.strategy import services as vision

if TYPE_CHECKING:
    from conftest import Persona


def _client(persona: Persona) -> Client:
    client = Client()
    client.force_login(persona.user)
    return client


def test_the_overview_leads_to_every_part_and_each_products_brief(owner: Persona, stakeholder: Persona) -> None:
    assert owner.membership is not None
    product = vision.create_product(owner.membership, owner.user, name="Trail App")
    slug = owner.membership.organisation.slug
    page = _client(stakeholder).get(reverse("engagement:overview", args=[slug]))
    assert page.status_code == 200
    html = page.content.decode()
    for name in ("stakeholders", "pulses", "health", "activity", "notification_settings", "webhooks"):
        assert reverse(f"engagement:{name}", args=[slug]) in html
    assert reverse("engagement:brief", args=[slug, product.pk]) in html
    assert "Trail App" in html
    # The navigation leads here from every organisation page.
    dashboard = _client(stakeholder).get(reverse("home:dashboard", args=[slug])).content.decode()
    assert reverse("engagement:overview", args=[slug]) in dashboard


def test_the_overview_of_another_organisation_is_not_found(owner: Persona, outsider: Persona) -> None:
    assert owner.membership is not None
    slug = owner.membership.organisation.slug
    assert _client(outsider).get(reverse("engagement:overview", args=[slug])).status_code == 404
