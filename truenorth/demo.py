"""Demo data for `truenorth demo`: one organisation with a person in every role, and a second one to
switch to.

This is the top floor: it creates the people and the organisations, then asks each pillar for its part
of Acme Outdoor, in order: Vision (truenorth/strategy/demo.py: goals, products, check-ins, work items),
Value (truenorth/measures/demo.py: a year of measures) and Validation (truenorth/hypotheses/demo.py:
hypotheses and an A/B test), then Engagement (truenorth/engagement/demo/: stakeholders, pulses,
webhooks, the health check). Everything goes through the services, so the history is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from truenorth.accounts.models import User
from truenorth.delivery.demo import load_delivery_demo
from truenorth.engagement.demo import load_engagement_demo
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.hypotheses.demo import load_validation_demo
from truenorth.measures.demo import load_value_demo
from truenorth.orgs.models import Membership, Organisation, Role
from truenorth.orgs.services import create_organisation, update_organisation
from truenorth.strategy.demo import ORG_GOAL, load_vision_demo

__all__ = ["DEMO_ORG", "DEMO_PASSWORD", "DEMO_USERS", "ORG_GOAL", "SECOND_ORG", "DemoUser", "load_demo"]

DEMO_PASSWORD = "north-star-demo"  # printed in the terminal by `truenorth demo`; demo only


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    role: str


DEMO_ORG = ("Acme Outdoor", "acme")
SECOND_ORG = ("Acme Labs", "acme-labs")
DEMO_USERS = (
    DemoUser("owner@demo.truenorth.local", "Olivia Owner", Role.OWNER),
    DemoUser("admin@demo.truenorth.local", "Adam Admin", Role.ADMIN),
    DemoUser("member@demo.truenorth.local", "Mia Member", Role.MEMBER),
    DemoUser("stakeholder@demo.truenorth.local", "Sam Stakeholder", Role.STAKEHOLDER),
)
OWNER, ADMIN, MEMBER, STAKEHOLDER = (spec.email for spec in DEMO_USERS)


def _user(spec: DemoUser) -> User:
    user = User.objects.filter(email=spec.email).first()
    if user is None:
        user = User.objects.create_user(email=spec.email, password=DEMO_PASSWORD, name=spec.name)
    return user


@transaction.atomic
def load_demo() -> list[DemoUser]:
    """Create (or complete) the demo organisations and users; safe to run twice."""
    users = {spec.email: _user(spec) for spec in DEMO_USERS}
    owner = users[DEMO_USERS[0].email]
    for name, slug in (DEMO_ORG, SECOND_ORG):
        org = Organisation.objects.filter(slug=slug).first()
        if org is None:
            org = create_organisation(owner, name if slug == SECOND_ORG[1] else f"{name} (draft)", slug)
            if slug == DEMO_ORG[1]:
                # A rename, so the history of the organisation has something to show.
                update_organisation(Membership.objects.get(organisation=org, user=owner), owner, name=name)
        for spec in DEMO_USERS[1:]:
            role = spec.role if slug == DEMO_ORG[1] else Role.MEMBER
            if slug == SECOND_ORG[1] and spec.role != Role.MEMBER:
                continue
            membership, created = Membership.objects.get_or_create(
                organisation=org, user=users[spec.email], defaults={"role": role}
            )
            if created:
                record(
                    org, membership, owner, HistoryEntry.Action.CREATED, {"role": {"old": None, "new": role}}
                )
        if slug == DEMO_ORG[1]:
            load_vision_demo(org, users, OWNER, ADMIN, MEMBER, STAKEHOLDER)
            load_value_demo(org, users, OWNER, MEMBER)
            load_validation_demo(org, users, OWNER, MEMBER)
            load_delivery_demo(org, users, OWNER)
            load_engagement_demo(org, users, OWNER, ADMIN, MEMBER, STAKEHOLDER)
    return list(DEMO_USERS)
