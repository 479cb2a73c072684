"""Demo data: webhooks. A Slack-format webhook of Acme Outdoor posting to #product-updates, with a
delivery log holding a check-in delivered at once and an accepted proposal that failed once (HTTP 503)
and was delivered on the retry a minute later. The attempts are recorded as data
(services.webhooks.record_delivery): the demo makes no network call. The webhook is paused, since
hooks.example.com is not a real receiver; "Send test event" shows a failed attempt and its retry."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.engagement.models import Webhook, WebhookFormat
from truenorth.engagement.services import webhooks as services
from truenorth.orgs.models import Membership, Organisation
from truenorth.strategy.models import ChangeProposal, Goal, ProposalState

NAME = "Slack #product-updates"
URL = "https://hooks.example.com/services/T0ACME/B0TRUENORTH/demo-not-a-real-token"


def load(
    org: Organisation, users: dict[str, User], owner: str, admin: str, member: str, stakeholder: str
) -> None:
    if Webhook.objects.filter(organisation=org, name=NAME).exists():
        return
    acting = Membership.objects.get(organisation=org, user=users[admin])
    hook, _ = services.create_webhook(
        acting,
        users[admin],
        name=NAME,
        url=URL,
        format=WebhookFormat.SLACK,
        events=["checkin.recorded", "decision.recorded", "goal.created", "proposal.accepted"],
        active=False,
    )
    org = Organisation.objects.get(pk=org.pk)  # the caller's copy may predate the demo's rename
    goals = list(Goal.objects.filter(organisation=org).order_by("pk")[:2])
    accepted = ChangeProposal.objects.filter(goal__organisation=org, state=ProposalState.ACCEPTED).first()
    title = goals[0].title if goals else "Grow weekly active hikers"
    other = goals[-1].title if goals else title
    now = timezone.now().replace(microsecond=0)

    first_at = now - dt.timedelta(days=3, hours=2)
    checkin = services.event_payload(
        org,
        "checkin.recorded",
        occurred_at=first_at,
        actor=member,
        obj={
            "type": "goal",
            "model": "strategy.goal",
            "id": str(goals[0].pk) if goals else "",
            "title": title,
        },
        action="updated",
        changes={"check-in": {"old": None, "new": "On track, confidence 7/10"}},
    )
    services.record_delivery(
        hook,
        "checkin.recorded",
        checkin,
        [
            services.Outcome(
                code=200, excerpt="ok", duration_ms=182, url=URL, at=first_at + dt.timedelta(seconds=2)
            )
        ],
        created_at=first_at,
    )

    second_at = now - dt.timedelta(days=1, hours=5)
    proposal = services.event_payload(
        org,
        "proposal.accepted",
        occurred_at=second_at,
        actor=owner,
        obj={
            "type": "proposal",
            "model": "strategy.changeproposal",
            "id": str(accepted.pk) if accepted else "",
            "title": str(accepted) if accepted else f"Proposal on {other} (accepted)",
        },
        action="updated",
        changes={"state": {"old": "open", "new": "accepted"}},
    )
    services.record_delivery(
        hook,
        "proposal.accepted",
        proposal,
        [
            services.Outcome(
                code=503,
                excerpt="upstream_unavailable",
                duration_ms=1240,
                url=URL,
                at=second_at + dt.timedelta(seconds=3),
            ),
            services.Outcome(
                code=200,
                excerpt="ok",
                duration_ms=204,
                url=URL,
                at=second_at + dt.timedelta(minutes=1, seconds=4),
            ),
        ],
        created_at=second_at,
    )
