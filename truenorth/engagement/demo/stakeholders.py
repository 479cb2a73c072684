"""Demo data: ten stakeholders of Acme Outdoor across departments (legal, security, sales, support,
finance, customers, partners…), some with an engagement gap, linked to the Vision demo's products and
goals, with interactions logged over the past months; a few are overdue for a talk."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.engagement.models import Stakeholder
from truenorth.engagement.services import stakeholders as services
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy.models import Goal, Product


@dataclass(frozen=True)
class DemoStakeholder:
    name: str
    title: str
    department: str
    influence: int
    interest: int
    current: str
    desired: str
    owner: str  # "owner", "admin" or "member"
    added_days_ago: int
    contacts: tuple[tuple[int, str, str], ...] = ()  # (days ago, kind, summary)
    products: tuple[str, ...] = ()
    goals: tuple[str, ...] = ()
    email: str = ""
    company: str = ""
    account: bool = False  # the demo stakeholder's own account
    notes: str = field(default="")


PEOPLE = (
    DemoStakeholder(
        "Priya Natarajan",
        "General Counsel",
        "legal",
        5,
        2,
        "neutral",
        "supportive",
        "owner",
        160,
        (
            (120, "meeting", "Walked through the data processing agreement for fit data"),
            (45, "review", "Reviewed the privacy notice for purchase-based size advice"),
        ),
        products=("Gear Shop",),
        goals=("Fit finder recommends boot sizes from past purchases",),
        email="priya.natarajan@acme.example",
        notes="Needs the fit finder's data use in writing before launch.",
    ),
    DemoStakeholder(
        "Marcus Webb",
        "Chief Information Security Officer",
        "security",
        4,
        4,
        "resistant",
        "supportive",
        "admin",
        150,
        (
            (90, "workshop", "Threat model of offline map downloads"),
            (20, "call", "Signed map bundles: agreed to review the design"),
        ),
        products=("Trail App",),
        goals=("Hikers trust our routes without a signal",),
        email="marcus.webb@acme.example",
    ),
    DemoStakeholder(
        "Elena Ruiz",
        "VP Sales",
        "sales",
        5,
        5,
        "supportive",
        "leading",
        "owner",
        140,
        (
            (60, "demo", "Demoed kit lists to the regional sales leads"),
            (5, "meeting", "Quarterly pipeline review: kit lists in every store pitch"),
        ),
        products=("Gear Shop",),
        goals=("Customers get a kit list for the trip they are planning",),
        email="elena.ruiz@acme.example",
    ),
    DemoStakeholder(
        "Tom Becker",
        "Head of Customer Support",
        "support",
        2,
        5,
        "supportive",
        "supportive",
        "member",
        130,
        (
            (70, "message", "Shared the top offline-map tickets"),
            (10, "review", "Reviewed closure alert wording"),
        ),
        products=("Trail App",),
        goals=("Trail closures reach hikers even offline",),
        email="tom.becker@acme.example",
    ),
    DemoStakeholder(
        "Hannah Lee",
        "Chief Financial Officer",
        "finance",
        5,
        3,
        "neutral",
        "supportive",
        "owner",
        120,
        ((8, "meeting", "Budget for the group trip planner next half"),),
        products=("Trail App", "Gear Shop"),
        email="hannah.lee@acme.example",
    ),
    DemoStakeholder(
        "Jonas Berg",
        "Chair",
        "customers",
        2,
        4,
        "unaware",
        "supportive",
        "member",
        60,
        products=("Trail App",),
        goals=("Planning a group trip takes minutes, not evenings",),
        company="Ridgeline Hiking Club",
        notes="Runs 40 group hikes a year; ideal pilot for trip polls.",
    ),
    DemoStakeholder(
        "Aiko Tanaka",
        "Partner Manager",
        "partners",
        3,
        2,
        "neutral",
        "neutral",
        "admin",
        110,
        ((25, "call", "Summit Outfitters want kit lists in their stores"),),
        products=("Gear Shop",),
        company="Summit Outfitters",
        email="aiko@summit-outfitters.example",
    ),
    DemoStakeholder(
        "Carlos Mendes",
        "Marketing Director",
        "marketing",
        2,
        2,
        "neutral",
        "supportive",
        "member",
        200,
        ((100, "message", "Sent the spring campaign brief for Trail App"),),
        products=("Trail App",),
        email="carlos.mendes@acme.example",
    ),
    DemoStakeholder(
        "Sam Stakeholder",
        "Head of Product Strategy",
        "leadership",
        4,
        5,
        "supportive",
        "leading",
        "owner",
        180,
        ((3, "review", "Quarterly goal review"), (35, "meeting", "Agreed the product goals for the half")),
        products=("Trail App", "Gear Shop"),
        goals=("Hikers plan every weekend trip in Trail App",),
        account=True,
    ),
    DemoStakeholder(
        "Grace O'Neill",
        "Operations Lead",
        "operations",
        1,
        3,
        "supportive",
        "supportive",
        "admin",
        90,
        ((20, "message", "Warehouse timings for kit list bundles"),),
        goals=("Kit lists for the ten most walked trails",),
        email="grace.oneill@acme.example",
    ),
)


def load(
    org: Organisation, users: dict[str, User], owner: str, admin: str, member: str, stakeholder: str
) -> None:
    """Ten stakeholders and their interactions; nothing is added when the organisation already has any."""
    if Stakeholder.objects.filter(organisation=org).exists():
        return
    membership = Membership.objects.get(organisation=org, user=users[owner])
    people = {"owner": users[owner], "admin": users[admin], "member": users[member]}
    products = {p.name: p.pk for p in Product.objects.filter(organisation=org)}
    goals = {g.title: g.pk for g in Goal.objects.filter(organisation=org, archived_at__isnull=True)}
    today = timezone.localdate()
    now = timezone.now()
    for spec in PEOPLE:
        actor = people[spec.owner]
        s = services.create_stakeholder(
            membership,
            actor,
            name=spec.name,
            email=spec.email,
            title=spec.title,
            company=spec.company,
            department=spec.department,
            influence=spec.influence,
            interest=spec.interest,
            current_engagement=spec.current,
            desired_engagement=spec.desired,
            relationship_owner=actor.pk,
            user=users[stakeholder].pk if spec.account else None,
            products=[products[n] for n in spec.products if n in products],
            goals=[goals[t] for t in spec.goals if t in goals],
            notes=spec.notes,
        )
        added = now - dt.timedelta(days=spec.added_days_ago)
        Stakeholder.objects.filter(pk=s.pk).update(created_at=added, updated_at=added)
        for days_ago, kind, summary in sorted(spec.contacts, reverse=True):
            services.log_interaction(
                membership,
                actor,
                occurred_on=today - dt.timedelta(days=days_ago),
                kind=kind,
                summary=summary,
                stakeholder_ids=[s.pk],
                goal_ids=[goals[t] for t in spec.goals if t in goals],
            )
