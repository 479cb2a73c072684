"""Organisation A's Engagement objects for the isolation walk (tests/test_isolation.py): one object of
every kind an Engagement URL points at, their URL parameters, the rows a successful attack would
change, and the references that must never cross organisations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import F, QuerySet
from django.utils import timezone

from truenorth.engagement.models import (
    BriefDocument,
    EngagementLogEntry,
    FeedToken,
    Follow,
    HealthAssessment,
    NotificationSettings,
    OutgoingEmail,
    Pulse,
    PulseInvitation,
    PulseResponse,
    PulseRound,
    ShareLink,
    Stakeholder,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from truenorth.engagement.services import activity, briefs, health, mail, pulses, stakeholders, webhooks
from truenorth.orgs.models import Organisation
from truenorth.strategy.models import Goal, Product

if TYPE_CHECKING:
    from conftest import Persona

ENGAGEMENT_SECRETS = (
    "Alpha secret stakeholder",
    "alpha-stakeholder@a.example",
    "Alpha secret pulse",
    "Alpha secret board pack",
    "Alpha secret webhook",
    "hooks.alpha.example",
)


@dataclass
class EngagementA:
    stakeholder: Stakeholder
    pulse: Pulse
    round: PulseRound
    pulse_token: str  # a valid one-time answer link of the round (a bearer link)
    share_link: ShareLink
    share_token: str  # the share link's raw token (a bearer link)
    document: BriefDocument
    email: OutgoingEmail
    webhook: Webhook
    delivery: WebhookDelivery
    assessment: HealthAssessment
    feed_token: str  # the owner's raw feed token (a bearer link)


def populate_engagement(owner: Persona, stakeholder: Persona, goal: Goal, product: Product) -> EngagementA:
    m, u = owner.membership, owner.user
    assert m is not None
    person = stakeholders.create_stakeholder(
        m,
        u,
        name=ENGAGEMENT_SECRETS[0],
        email=ENGAGEMENT_SECRETS[1],
        department="legal",
        influence=5,
        interest=4,
        goals=[goal.pk],
        products=[product.pk],
    )
    stakeholders.log_interaction(
        m,
        u,
        occurred_on=timezone.localdate() - dt.timedelta(days=3),
        summary="Alpha secret meeting",
        stakeholder_ids=[person.pk],
        goal_ids=[goal.pk],
    )
    Product.objects.filter(pk=product.pk).update(product_goal="Alpha secret product goal statement")
    pulse = pulses.create_pulse(m, u, product_id=product.pk, title=ENGAGEMENT_SECRETS[2])
    rnd, invitations = pulses.open_round(pulse, send=False)
    pulse_token = invitations[0][1]
    share_link, share_token = briefs.create_share_link(m, u, product.pk, label=ENGAGEMENT_SECRETS[3])
    document = briefs.store_document(m, u, product.pk, b"%PDF-1.7 Alpha secret pdf")
    email = mail.queue_email(
        m.organisation,
        to=owner.user.email,
        subject="Alpha secret digest",
        text="Alpha secret digest body",
        kind="digest",
        dedupe_key="isolation-digest",
        user=owner.user,
    )
    mail.follow(m, goal_id=goal.pk)
    webhook, _secret = webhooks.create_webhook(
        m, u, name=ENGAGEMENT_SECRETS[4], url=f"https://{ENGAGEMENT_SECRETS[5]}/hook", active=False
    )
    delivery = webhooks.record_delivery(
        webhook,
        "goal.updated",
        {"text": "Alpha secret payload"},
        [webhooks.Outcome(code=503, excerpt="busy"), webhooks.Outcome(code=200, excerpt="ok")],
        created_at=timezone.now(),
    )
    assessment = health.save_assessment(m, u)
    feed_token = activity.create_feed_token(m, u)
    return EngagementA(
        person,
        pulse,
        rnd,
        pulse_token,
        share_link,
        share_token,
        document,
        email,
        webhook,
        delivery,
        assessment,
        feed_token,
    )




ENGAGEMENT_ID_NAMES = (
    "stakeholder_id",
    "pulse_id",
    "round_id",
    "share_link_id",
    "document_id",
    "email_id",
    "webhook_id",
    "delivery_id",
)


def engagement_ids(e: EngagementA) -> dict[str, str]:
    return {
        "stakeholder_id": str(e.stakeholder.pk),
        "pulse_id": str(e.pulse.pk),
        "round_id": str(e.round.pk),
        "share_link_id": str(e.share_link.pk),
        "document_id": str(e.document.pk),
        "email_id": str(e.email.pk),
        "webhook_id": str(e.webhook.pk),
        "delivery_id": str(e.delivery.pk),
    }


def engagement_state(org: Organisation) -> dict[str, Any]:
    """Every Engagement row of the organisation, field by field."""
    by_org: dict[str, QuerySet[Any]] = {
        "stakeholders": Stakeholder.objects.filter(organisation=org),
        "stakeholder_goals": Stakeholder.goals.through.objects.filter(stakeholder__organisation=org),
        "stakeholder_products": Stakeholder.products.through.objects.filter(stakeholder__organisation=org),
        "engagement_log": EngagementLogEntry.objects.filter(organisation=org),
        "pulses": Pulse.objects.filter(organisation=org),
        "pulse_rounds": PulseRound.objects.filter(pulse__organisation=org),
        "pulse_invitations": PulseInvitation.objects.filter(round__pulse__organisation=org),
        "pulse_responses": PulseResponse.objects.filter(round__pulse__organisation=org),
        "share_links": ShareLink.objects.filter(organisation=org),
        "brief_documents": BriefDocument.objects.filter(organisation=org).defer("pdf"),
        "emails": OutgoingEmail.objects.filter(organisation=org),
        "notification_settings": NotificationSettings.objects.filter(organisation=org),
        "follows": Follow.objects.filter(organisation=org),
        "webhooks": Webhook.objects.filter(organisation=org),
        "webhook_deliveries": WebhookDelivery.objects.filter(webhook__organisation=org),
        "webhook_attempts": WebhookAttempt.objects.filter(delivery__webhook__organisation=org),
        "health_assessments": HealthAssessment.objects.filter(organisation=org),
        "feed_tokens": FeedToken.objects.filter(organisation=org),
    }
    return {name: sorted(map(repr, qs.order_by("pk").values())) for name, qs in by_org.items()}


def engagement_cross_references() -> dict[str, QuerySet[Any]]:
    """Engagement rows that would point at another organisation's objects (must be none)."""
    return {
        "stakeholder goal": Stakeholder.goals.through.objects.exclude(
            goal__organisation=F("stakeholder__organisation")
        ),
        "stakeholder product": Stakeholder.products.through.objects.exclude(
            product__organisation=F("stakeholder__organisation")
        ),
        "stakeholder owner": Stakeholder.objects.exclude(relationship_owner__isnull=True).exclude(
            relationship_owner__memberships__organisation=F("organisation")
        ),
        "log stakeholder": EngagementLogEntry.stakeholders.through.objects.exclude(
            stakeholder__organisation=F("engagementlogentry__organisation")
        ),
        "log goal": EngagementLogEntry.goals.through.objects.exclude(
            goal__organisation=F("engagementlogentry__organisation")
        ),
        "pulse product": Pulse.objects.exclude(product__organisation=F("organisation")),
        "pulse invitation stakeholder": PulseInvitation.objects.exclude(stakeholder__isnull=True).exclude(
            stakeholder__organisation=F("round__pulse__organisation")
        ),
        "pulse answer goal": PulseResponse.objects.exclude(contribution_goal__isnull=True).exclude(
            contribution_goal__organisation=F("round__pulse__organisation")
        ),
        "share link product": ShareLink.objects.exclude(product__organisation=F("organisation")),
        "brief document product": BriefDocument.objects.exclude(product__organisation=F("organisation")),
        "follow goal": Follow.objects.exclude(goal__isnull=True).exclude(goal__organisation=F("organisation")),
        "follow product": Follow.objects.exclude(product__isnull=True).exclude(
            product__organisation=F("organisation")
        ),
    }


def populate_engagement_b(outsider: Persona, product: Product) -> dict[str, str]:
    """Organisation B's own Engagement objects, for B's URLs in the request-body walk."""
    m, u = outsider.membership, outsider.user
    assert m is not None
    person = stakeholders.create_stakeholder(m, u, name="Bravo stakeholder")
    Product.objects.filter(pk=product.pk).update(product_goal="Bravo product goal")
    pulse = pulses.create_pulse(m, u, product_id=product.pk, title="Bravo pulse")
    rnd, _ = pulses.open_round(pulse, send=False)
    share_link, _ = briefs.create_share_link(m, u, product.pk, label="Bravo link")
    document = briefs.store_document(m, u, product.pk, b"%PDF-1.7 Bravo")
    email = mail.queue_email(
        m.organisation, to=u.email, subject="Bravo", text="Bravo", kind="digest", dedupe_key="bravo"
    )
    webhook, _ = webhooks.create_webhook(m, u, name="Bravo hook", url="https://hooks.bravo.example/", active=False)
    delivery = webhooks.record_delivery(webhook, "goal.updated", {}, [], created_at=timezone.now())
    return {
        "stakeholder_id": str(person.pk),
        "pulse_id": str(pulse.pk),
        "round_id": str(rnd.pk),
        "share_link_id": str(share_link.pk),
        "document_id": str(document.pk),
        "email_id": str(email.pk),
        "webhook_id": str(webhook.pk),
        "delivery_id": str(delivery.pk),
    }


def engagement_refs(e: EngagementA, goal: Goal, product: Product, person_id: int) -> dict[str, Any]:
    """Organisation A's ids under the names Engagement request bodies use for them."""
    return {
        "goals": [goal.pk],
        "products": [product.pk],
        "stakeholders": [e.stakeholder.pk],
        "relationship_owner": person_id,
        "user": person_id,
        "members": [person_id],
    }
