"""Demo data: briefs — one read-only share link of the Trail App's brief, labelled "Board pack".

Its raw address cannot be recovered (only its hash is stored), so nothing is printed: create another
on the brief page to try one. Safe to run twice (a product that has a share link gets none more)."""

from __future__ import annotations

from truenorth.accounts.models import User
from truenorth.engagement.models import ShareLink
from truenorth.engagement.services import briefs
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy.models import Product

DEMO_PRODUCT = "Trail App"
LABEL = "Board pack"


def load(
    org: Organisation, users: dict[str, User], owner: str, admin: str, member: str, stakeholder: str
) -> None:
    product = Product.objects.filter(organisation=org, name=DEMO_PRODUCT).first()
    if product is None or ShareLink.objects.filter(organisation=org, product=product).exists():
        return
    actor = users[owner]
    membership = Membership.objects.get(organisation=org, user=actor)
    briefs.create_share_link(
        membership, actor, product.pk, label=LABEL, expires_in_days=briefs.SHARE_MAX_DAYS
    )
