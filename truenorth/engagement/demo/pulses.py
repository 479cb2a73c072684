"""Demo data: an alignment pulse on Trail App (every 90 days, open 14) with two completed rounds, 120
and 30 days ago, answered by members, the product's stakeholders and Trail Team colleagues without an
account (invited by address). The second round shows clearer, more committed answers closer to the
product goal (a higher alignment index); a few answers in each round diverge (other goals, guesses).
No e-mail is sent: rounds open through the services with the clock passed in and send=False."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.engagement.models import Pulse
from truenorth.engagement.services import pulse_answers as answers
from truenorth.engagement.services import pulses as services
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy.models import Product

TITLE = "Trail App alignment pulse"
TEAM = "Trail Team"
COLLEAGUES = tuple(f"trail.crew{i}@acme.example" for i in range(1, 7))

# (group: "team" or a department label or "", own words, clarity, commitment, contribution)
ROUND_1 = (
    ("team", "Get more people to download the app this season.", 3, 3, "I work on the map tiles."),
    ("team", "Double weekend trip planning in the app.", 4, 4, "Trip planner screens."),
    ("team", "Ship the new offline maps before summer.", 2, 3, "Offline sync."),
    ("team", "Not sure, something about growth and engagement?", 2, 2, ""),
    ("team", "More hikers planning their trips in Trail App instead of paper maps.", 4, 3, "Route search."),
    ("team", "Become the number one hiking app in the store ratings.", 2, 3, "Release QA."),
    ("dept", "Sell more premium subscriptions.", 2, 2, "I answer customer tickets."),
    ("dept", "Plan weekend trips in the app, I think.", 3, 3, ""),
    ("", "Cut support tickets about GPS errors.", 1, 3, ""),
    ("", "Double the number of hikers who plan weekend trips with us.", 3, 4, ""),
)
ROUND_2 = (
    (
        "team",
        "Double the hikers who plan their weekend trips in Trail App by next season.",
        5,
        5,
        "Trip planner.",
    ),
    (
        "team",
        "Twice as many hikers plan weekend trips in the app by the end of next season.",
        5,
        4,
        "Route search.",
    ),
    ("team", "Double weekend trip planning in Trail App.", 4, 5, "Offline maps for planned trips."),
    (
        "team",
        "Get hikers to plan their weekend trips in Trail App, double it by next season.",
        4,
        4,
        "Sharing.",
    ),
    ("team", "Double the weekend hikers planning trips with Trail App.", 5, 5, "Release QA."),
    ("team", "Ship the redesign of the map screen.", 3, 4, "Design system."),
    ("dept", "More hikers plan their weekend trips in the app; double by next season.", 4, 4, "Ticket tags."),
    ("dept", "Double the hikers planning weekend trips in Trail App.", 4, 4, ""),
    ("dept", "Plan weekend trips in the app instead of on paper, twice as many hikers.", 4, 5, ""),
    ("", "Sell more premium subscriptions.", 2, 3, ""),
    ("", "Double weekend trip plans made in Trail App by the end of next season.", 5, 4, ""),
)


def _department(org: Organisation) -> str:
    """A stakeholder department of the organisation to answer as (Support if it is there)."""
    choices = answers.group_choices(org.pk)
    for label in ("Support", "Sales", "Customers", "Marketing", "Legal"):
        if label in choices:
            return label
    return ""


def _answer_round(
    pulse: Pulse, opened: dt.datetime, rows: tuple[tuple[str, str, int, int, str], ...], dept: str
) -> None:
    rnd, invitations = services.open_round(pulse, now=opened, send=False)
    tokens = [raw for _, raw in invitations]
    known = {invitation.email.lower() for invitation, _ in invitations}
    for email in COLLEAGUES:  # Trail Team colleagues without an account, invited by address
        if email not in known:
            tokens.append(services.new_invitation(rnd, services.Recipient(email, None, None))[1])
    groups = answers.group_choices(pulse.organisation_id)
    for i, (group, words, clarity, commitment, contribution) in enumerate(rows):
        label = TEAM if group == "team" else dept if group == "dept" else ""
        answers.submit_answer(
            tokens[i],
            {
                "own_words": words,
                "clarity": clarity,
                "commitment": commitment,
                "contribution": contribution,
                "group": label if label in groups else "",
            },
            now=opened + dt.timedelta(days=1 + i % 5, hours=i),
        )
    services.close_expired_rounds(rnd.closes_at)


def load(
    org: Organisation, users: dict[str, User], owner: str, admin: str, member: str, stakeholder: str
) -> None:
    """Two completed rounds of the Trail App pulse; nothing when the pulse exists already."""
    if Pulse.objects.filter(organisation=org, title=TITLE).exists():
        return
    product = Product.objects.filter(organisation=org, name="Trail App").first()
    if product is None or not services.goal_statement(product):
        return
    now = timezone.now().replace(second=0, microsecond=0)
    owner_user = users[owner]
    membership = Membership.objects.get(organisation=org, user=owner_user)
    pulse = services.create_pulse(
        membership,
        owner_user,
        product_id=product.pk,
        title=TITLE,
        cadence_days=90,
        open_days=14,
        next_run_at=now - dt.timedelta(days=120),
        now=now - dt.timedelta(days=125),
    )
    dept = _department(org)
    _answer_round(pulse, now - dt.timedelta(days=120), ROUND_1, dept)
    _answer_round(pulse, now - dt.timedelta(days=30), ROUND_2, dept)
