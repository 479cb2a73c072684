"""Vision demo for Acme Outdoor: an organisation goal served by two products ("Trail App", "Gear Shop"),
each with a three-level goal tree, measured targets, check-ins (some overdue), comments, change proposals,
endorsements, a concern and work items (some orphaned).

Loaded by `truenorth demo` (truenorth/demo.py) first, before the Value and Validation demos. Everything
goes through the services, so the history is written; only timestamps are moved into the past afterwards
so the goals look weeks old.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.orgs.models import Membership, Organisation, Role
from truenorth.strategy import services as strategy
from truenorth.strategy.models import CheckIn, Goal, Product

# Goals are owned by the demo person with a role; load_vision_demo is given their e-mails.
OWNER, ADMIN, MEMBER, STAKEHOLDER = Role.OWNER, Role.ADMIN, Role.MEMBER, Role.STAKEHOLDER
ORG_GOAL = "Become the outdoor brand customers trust for every trip"


@dataclass
class DemoGoal:
    key: str
    title: str
    owner: str  # a role: the demo person with that role owns the goal
    due_in_days: int | None  # target date relative to today; None: no date (the lint notices)
    outcome: str
    target: dict[str, object]
    values: tuple[float, ...] = ()  # weekly observations, oldest first, ending a few days ago
    status: str = Goal.Status.ACTIVE
    children: list[DemoGoal] = field(default_factory=list)


def _target(
    name: str, baseline: float, target: float, unit: str = "", direction: str = "increase"
) -> dict[str, object]:
    return {"name": name, "baseline": baseline, "target": target, "unit": unit, "direction": direction}


TRAIL_TREE = DemoGoal(
    "trail",
    "Hikers plan every weekend trip in Trail App",
    MEMBER,
    330,
    "Hikers spend their evenings looking forward to the trip, not piecing routes together from forums.",
    _target("Weekly active trip planners", 4200, 8500, "hikers"),
    (4200, 4480, 4610, 4890, 5120),
    children=[
        DemoGoal(
            "offline",
            "Hikers trust our routes without a signal",
            ADMIN,
            150,
            "Hikers keep following the route in valleys and forests where the phone has no signal.",
            _target("Trips completed with offline maps", 18, 45, "%"),
            (18, 21, 24, 26),
            children=[
                DemoGoal(
                    "region",
                    "Download a whole region's maps in one tap",
                    MEMBER,
                    42,
                    "Hikers get every map they need for the weekend before they leave the house.",
                    _target("Region downloads per week", 900, 2000, "downloads"),
                    (900, 1150, 1420, 1610),
                ),
                DemoGoal(
                    "speed",
                    "Offline maps open in under two seconds",
                    ADMIN,
                    28,
                    "A hiker at a junction sees where to turn before they start to doubt the app.",
                    _target("Median offline load time", 5.8, 2.0, "s", "decrease"),
                    (5.8, 4.9, 4.1, 3.6),
                ),
                DemoGoal(
                    "closures",
                    "Trail closures reach hikers even offline",
                    OWNER,
                    None,
                    "Hikers learn that a trail is closed before they walk two hours to the barrier.",
                    _target("Closures synced within an hour", 40, 95, "%"),
                    (40, 44),
                    status=Goal.Status.PROPOSED,
                ),
            ],
        ),
        DemoGoal(
            "group",
            "Planning a group trip takes minutes, not evenings",
            MEMBER,
            120,
            "Friends agree on a route and a date without a week of back-and-forth messages.",
            _target("Median time to plan a group trip", 48, 15, "min", "decrease"),
            (48, 44, 39, 37),
            children=[
                DemoGoal(
                    "share",
                    "Share a route with friends by link",
                    MEMBER,
                    -6,
                    "Friends open the planned route from a chat message, even without the app installed.",
                    _target("Planned trips shared", 6, 30, "%"),
                    (6, 12, 19, 27),
                ),
                DemoGoal(
                    "poll",
                    "Friends vote on the trip date in the app",
                    ADMIN,
                    49,
                    "Vote on dates together.",
                    _target("Group trips with a date poll", 0, 30, "%"),
                    (0, 3, 7),
                ),
            ],
        ),
    ],
)

SHOP_TREE = DemoGoal(
    "shop",
    "Customers buy gear that fits their trip the first time",
    ADMIN,
    300,
    "Customers set off with boots and kit that fit, instead of sending parcels back and forth.",
    _target("Return rate", 14, 7, "%", "decrease"),
    (14, 13.6, 13.1, 12.4),
    children=[
        DemoGoal(
            "size",
            "Customers choose the right size without trying on",
            MEMBER,
            150,
            "Customers order one size, the right one, even for boots they have never worn.",
            _target("Size-related returns", 8.5, 4, "%", "decrease"),
            (8.5, 8.1, 7.6, 7.2),
            children=[
                DemoGoal(
                    "fit",
                    "Fit finder recommends boot sizes from past purchases",
                    MEMBER,
                    42,
                    "Returning customers see the size that fits them, based on the boots they kept.",
                    _target("Boot orders using fit finder", 5, 25, "%"),
                    (5, 8, 11, 15),
                ),
                DemoGoal(
                    "notes",
                    "Every boot page shows how it fits, from real reviews",
                    ADMIN,
                    35,
                    "Customers read how a boot fits wide or narrow feet before they choose a size.",
                    _target("Boot pages with fit notes", 20, 90, "%"),
                    (20, 34, 41),
                ),
            ],
        ),
        DemoGoal(
            "kit",
            "Customers get a kit list for the trip they are planning",
            ADMIN,
            180,
            "Customers pack for the trail they are actually walking, and buy only what is missing.",
            _target("Orders started from a kit list", 2, 15, "%"),
            (2, 2.6, 3.9, 4.4),
            children=[
                DemoGoal(
                    "lists",
                    "Kit lists for the ten most walked trails",
                    OWNER,
                    56,
                    "Customers planning a popular trail find a tested kit list written by our guides.",
                    _target("Trail kit lists published", 0, 10, "lists"),
                    (0, 2, 4, 5),
                ),
                DemoGoal(
                    "planned",
                    "Trail App trip plans open their kit list",
                    MEMBER,
                    70,
                    "Hikers who planned a trip in Trail App see what to pack for it in one tap.",
                    _target("Planned trips opening a kit list", 0, 20, "%"),
                    (0, 1.5, 4),
                ),
            ],
        ),
    ],
)


def load_vision_demo(
    org: Organisation,
    users: dict[str, User],
    owner_email: str,
    admin_email: str,
    member_email: str,
    stakeholder_email: str,
) -> None:
    """The Vision demo: an organisation goal, two products with goal trees, and the life around them.

    Does nothing when the organisation already has products (so loading twice adds nothing)."""
    if Product.objects.filter(organisation=org).exists():
        return
    emails: dict[str, str] = {
        OWNER: owner_email,
        ADMIN: admin_email,
        MEMBER: member_email,
        STAKEHOLDER: stakeholder_email,
    }
    people = {role: users[email] for role, email in emails.items()}
    m = {role: Membership.objects.get(organisation=org, user=user) for role, user in people.items()}
    role_of = {user.email: role for role, user in people.items()}
    now = timezone.now()
    today = timezone.localdate()
    goals: dict[str, Goal] = {}

    def observe(goal: Goal, values: tuple[float, ...]) -> None:
        role = role_of[goal.owner.email] if goal.owner else OWNER
        target = goal.targets.get()
        for i, value in enumerate(values):
            weeks_ago = len(values) - i - 1
            when = now - dt.timedelta(days=7 * weeks_ago + 3, hours=2)
            strategy.record_observation(
                m[role], people[role], target.pk, value, observed_at=when, note="weekly"
            )

    def create(spec: DemoGoal, product: Product | None, parent: Goal | None) -> Goal:
        actor = people[OWNER]
        goal = strategy.create_goal(
            m[OWNER],
            actor,
            title=spec.title,
            product_id=product.pk if product else None,
            parent_id=parent.pk if parent else None,
            outcome=spec.outcome,
            owner_id=people[spec.owner].pk,
            target_date=today + dt.timedelta(days=spec.due_in_days) if spec.due_in_days is not None else None,
            status=spec.status,
            targets=[spec.target],
        )
        goals[spec.key] = goal
        observe(goal, spec.values)
        for child in spec.children:
            create(child, product, goal)
        return goal

    owner = people[OWNER]
    org_goal = create(
        DemoGoal(
            "org",
            ORG_GOAL,
            OWNER,
            540,
            "Customers plan, kit out and walk every trip with us, and tell their friends to do the same.",
            _target("Net Promoter Score", 31, 50, "NPS"),
            (31, 32, 34, 35, 36),
        ),
        None,
        None,
    )
    trail_team = strategy.create_team(m[OWNER], owner, "Trail Team")
    shop_team = strategy.create_team(m[OWNER], owner, "Shop Team")
    trail = strategy.create_product(
        m[OWNER],
        owner,
        name="Trail App",
        vision="Every hiker finds, plans and safely completes the trail that is right for them.",
        product_goal="Double the hikers who plan their weekend trips in Trail App by the end of next season.",
        owner_id=people[MEMBER].pk,
        team_ids=[trail_team.pk],
    )
    shop = strategy.create_product(
        m[OWNER],
        owner,
        name="Gear Shop",
        vision="Every hiker leaves with gear that fits their trip, and comes back happy with it.",
        product_goal="Halve the returns caused by the wrong size or the wrong kit by the end of the year.",
        owner_id=people[ADMIN].pk,
        team_ids=[shop_team.pk],
    )
    for tree, product in ((TRAIL_TREE, trail), (SHOP_TREE, shop)):
        root = create(tree, product, None)
        strategy.link_goals(m[OWNER], owner, root.pk, org_goal.pk, "aligns")
    strategy.link_goals(m[MEMBER], people[MEMBER], goals["planned"].pk, goals["group"].pk, "relates")
    # The goals were set ten weeks ago.
    Goal.objects.filter(organisation=org).update(created_at=now - dt.timedelta(weeks=10))

    # Check-ins: most owners check in weekly; "group", "notes" and "poll" are overdue.
    history = {
        "org": (
            ("on_track", 7, "NPS up five points since spring; the trail kit lists are mentioned in reviews."),
            2,
        ),
        "trail": (("on_track", 7, "Planners up 22 % since the season opened."), 1),
        "offline": (
            ("at_risk", 5, "Offline use grows, but slower than planned: downloads are the bottleneck."),
            3,
        ),
        "region": (("on_track", 8, "One-tap download shipped to 20 % of Android users."), 2),
        "speed": (("on_track", 7, "Tile cache cut a second and a half; vector maps next."), 4),
        "group": (("at_risk", 4, "Sharing works; the date poll slipped by two sprints."), 20),
        "share": (("on_track", 9, "Share links live on iOS and Android; web preview in review."), 5),
        "shop": (("on_track", 6, "Returns down for the third month running."), 2),
        "size": (("on_track", 7, "Size returns falling since fit notes went live on bestsellers."), 3),
        "fit": (("off_track", 3, "Recommendations are wrong for half sizes; model retraining needed."), 1),
        "notes": (("on_track", 6, "A third of boot pages have fit notes."), 16),
        "kit": (("at_risk", 5, "Kit lists convert well but few customers find them."), 4),
        "lists": (("on_track", 8, "Five of ten lists are live; guides are writing the rest."), 6),
        "planned": (("on_track", 6, "Link from Trail App trip plans is behind a flag for 10 % of users."), 5),
    }
    for key, ((status, confidence, narrative), days_ago) in history.items():
        goal = goals[key]
        role = role_of[goal.owner.email] if goal.owner else OWNER
        earlier = strategy.check_in(
            m[role],
            people[role],
            goal.pk,
            status="on_track",
            confidence=confidence,
            narrative="Off to a good start.",
        )
        latest = strategy.check_in(
            m[role], people[role], goal.pk, status=status, confidence=confidence, narrative=narrative
        )
        CheckIn.objects.filter(pk=earlier.pk).update(
            created_at=now - dt.timedelta(days=days_ago + 7, hours=4)
        )
        CheckIn.objects.filter(pk=latest.pk).update(created_at=now - dt.timedelta(days=days_ago, hours=3))

    # Co-authoring: comments (one @mention), proposals (one accepted, one open), endorsements, a concern.
    stakeholder = people[STAKEHOLDER]
    strategy.add_comment(
        m[STAKEHOLDER],
        stakeholder,
        goals["trail"].pk,
        f"Great to see planners growing. @{member_email} could we show the offline numbers at the next review?",
    )
    strategy.add_comment(
        m[MEMBER], people[MEMBER], goals["trail"].pk, "Yes, I will bring the offline funnel to the review."
    )
    strategy.add_comment(
        m[ADMIN], people[ADMIN], goals["speed"].pk, "Measured on a mid-range Android phone in airplane mode."
    )
    accepted = strategy.propose_change(
        m[MEMBER],
        people[MEMBER],
        goals["offline"].pk,
        {
            "outcome": "Hikers keep following the route in valleys and forests where their phone has no signal."
        },
        "Say whose phone it is: the hiker's.",
    )
    strategy.decide_proposal(m[ADMIN], people[ADMIN], accepted.pk, accept=True, reason="Clearer, thanks.")
    size_target = goals["size"].targets.get()
    strategy.propose_change(
        m[STAKEHOLDER],
        stakeholder,
        goals["size"].pk,
        {"targets": {str(size_target.pk): {"target": 3.5}}},
        "Our best competitor is at 3.5 % size returns; 4 % would still leave us behind.",
    )
    for role, key in ((STAKEHOLDER, "org"), (STAKEHOLDER, "trail"), (ADMIN, "trail"), (MEMBER, "shop")):
        strategy.endorse(m[role], people[role], goals[key].pk, "Clear, and it matters to our customers.")
    strategy.raise_concern(
        m[STAKEHOLDER],
        stakeholder,
        goals["poll"].pk,
        "Polls may add a step for small groups who already agree; have we asked hikers?",
    )

    # Work items: most trace to a goal; a few are orphans (no line of sight yet).
    work = (
        (trail, trail_team, "TRAIL-101", "One-tap region download button", "done", "region"),
        (trail, trail_team, "TRAIL-102", "Cache map tiles on the device", "in_progress", "speed"),
        (trail, trail_team, "TRAIL-108", "Share-route deep links", "done", "share"),
        (trail, trail_team, "TRAIL-112", "Date poll in group chats", "todo", "poll"),
        (trail, trail_team, "TRAIL-115", "Upgrade the map SDK", "todo", None),
        (trail, trail_team, "TRAIL-117", "Fix sign-in on Android 14", "in_progress", None),
        (shop, shop_team, "SHOP-41", "Retrain the fit model on half sizes", "in_progress", "fit"),
        (shop, shop_team, "SHOP-44", "Fit notes on boot pages", "in_progress", "notes"),
        (shop, shop_team, "SHOP-47", "Kit list for the Coast Path", "done", "lists"),
        (shop, shop_team, "SHOP-52", "Refresh the homepage banner", "todo", None),
    )
    for product, team, key, title, status, goal_key in work:
        strategy.create_work_item(
            m[OWNER],
            owner,
            product.pk,
            title=title,
            external_key=key,
            status=status,
            team_id=team.pk,
            goal_id=goals[goal_key].pk if goal_key else None,
        )
