"""The briefs demo: one "Board pack" share link of the Trail App's brief, loaded idempotently; the demo
product's brief renders with charts in every Key Value Area."""

from __future__ import annotations

import pytest

from truenorth.core.templatetags.present import format_number
from truenorth.demo import load_demo
from truenorth.engagement.models import ShareLink
from truenorth.engagement.services import briefs, pulses
from truenorth.engagement.services.briefs_render import brief_markdown
from truenorth.orgs.models import Membership
from truenorth.strategy.models import Product


@pytest.mark.django_db
def test_the_demo_has_one_board_pack_link_and_a_full_brief() -> None:
    load_demo()
    load_demo()
    product = Product.objects.get(organisation__slug="acme", name="Trail App")
    links = list(ShareLink.objects.filter(product=product))
    assert [link.label for link in links] == ["Board pack"] and links[0].is_live()
    membership = Membership.objects.filter(organisation=product.organisation, role="owner").first()
    assert membership is not None
    brief = briefs.build_brief(membership, product)
    assert brief.goals and brief.measures and len(brief.charts) == 4
    assert any(r.kind == "stale_evidence" and r.title == "Mean time to repair" for r in brief.risks)
    # The alignment index of the demo's latest pulse round, and the one before it.
    summary = pulses.product_alignment(membership, product)
    assert summary is not None and brief.alignment is not None
    assert brief.alignment.index == summary.index and brief.alignment.index is not None
    assert (
        brief.alignment.previous_index is not None and brief.alignment.index > brief.alignment.previous_index
    )
    assert f"**Alignment index:** {format_number(summary.index)} / 100" in brief_markdown(brief)
