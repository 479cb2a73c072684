"""Engagement API: outgoing webhooks (admins write; every member reads, URLs masked for non-admins),
their delivery log, replay and test events. Every rule lives in engagement/services/webhooks.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from truenorth.core.errors import ValidationFailed
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema
from truenorth.engagement.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookFormat
from truenorth.engagement.services import webhooks
from truenorth.orgs.models import Membership, Role
from truenorth.orgs.scoping import scope

router = Router(tags=["engagement"])

VERSION_HELP = "Required: the version you read; a stale one is refused with 409."
MAX_LIST = 500


class WebhookOut(Schema):
    id: int
    name: str
    url: str = Field(description="The full URL for admins; scheme and host only for everyone else.")
    format: WebhookFormat
    events: list[str] = Field(description="Event kinds it receives; empty: all of them.")
    active: bool
    created_at: dt.datetime
    version: int


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="The signing secret: shown this once, never again (rotate to get a new one)."
    )


class WebhookIn(StrictSchema):
    name: str = Field(min_length=1, max_length=webhooks.MAX_NAME_LENGTH)
    url: str = Field(
        min_length=1, max_length=2000, description="https:// (or http://) receiver; no credentials."
    )
    format: WebhookFormat = WebhookFormat.JSON
    events: list[str] = Field(default_factory=list, max_length=webhooks.MAX_EVENTS)
    active: bool = True


class WebhookPatch(StrictSchema):
    version: int = Field(description=VERSION_HELP)
    name: str | None = Field(None, min_length=1, max_length=webhooks.MAX_NAME_LENGTH)
    url: str | None = Field(None, min_length=1, max_length=2000)
    format: WebhookFormat | None = None
    events: list[str] | None = Field(None, max_length=webhooks.MAX_EVENTS)
    active: bool | None = None


class VersionIn(StrictSchema):
    version: int = Field(description=VERSION_HELP)


class AttemptOut(Schema):
    at: dt.datetime
    url: str
    response_code: int | None
    response_excerpt: str
    error: str
    duration_ms: int


class DeliveryOut(Schema):
    id: int
    uid: str = Field(description="Sent as X-TrueNorth-Delivery.")
    webhook: int
    webhook_name: str
    kind: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    last_error: str
    replay_of: int | None


class DeliveryDetailOut(DeliveryOut):
    payload: dict[str, Any]
    attempt_log: list[AttemptOut]


class DeliveryFilter(Schema):
    status: DeliveryStatus | None = None
    webhook: ObjectId | None = None
    limit: int = Field(100, ge=1, le=MAX_LIST)
    offset: int = Field(0, ge=0, le=1_000_000_000)


class EventKindOut(Schema):
    kind: str
    description: str


def _webhook_out(m: Membership, hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.pk,
        "name": hook.name,
        "url": hook.url if m.has_role(Role.ADMIN) else webhooks.masked_url(hook.url),
        "format": hook.format,
        "events": list(hook.events),
        "active": hook.active,
        "created_at": hook.created_at,
        "version": hook.version,
    }


def _delivery_out(d: WebhookDelivery, m: Membership | None = None) -> dict[str, Any]:
    """A delivery; with its payload and attempts when `m` (the reader) is given (URLs masked for
    non-admins: an incoming-webhook URL holds a token)."""
    out: dict[str, Any] = {
        "id": d.pk,
        "uid": str(d.uid),
        "webhook": d.webhook_id,
        "webhook_name": d.webhook.name,
        "kind": d.kind,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at,
        "created_at": d.created_at,
        "delivered_at": d.delivered_at,
        "last_error": d.last_error,
        "replay_of": d.replay_of_id,
    }
    if m is not None:
        admin = m.has_role(Role.ADMIN)
        out["payload"] = d.payload
        out["attempt_log"] = [
            {
                "at": a.at,
                "url": a.url if admin else webhooks.masked_url(a.url),
                "response_code": a.response_code,
                "response_excerpt": a.response_excerpt,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in d.attempt_log.all()
        ]
    return out


@router.get(
    "/{slug}/webhook-events",
    response={200: list[EventKindOut], **READ_ERRORS},
    summary="The event kinds a webhook can subscribe to",
)
def list_webhook_events(request: HttpRequest, slug: str) -> list[dict[str, str]]:
    scope(request, slug)
    return [{"kind": k, "description": d} for k, d in webhooks.EVENT_KINDS]


@router.get(
    "/{slug}/webhooks",
    response={200: list[WebhookOut], **READ_ERRORS},
    summary="Outgoing webhooks (URLs shown in full to admins only)",
)
def list_webhooks(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return [_webhook_out(m, h) for h in webhooks.webhooks_of(m)]


@router.post(
    "/{slug}/webhooks",
    response={201: WebhookCreatedOut, **ERRORS},
    summary="Add a webhook (admins); the answer holds its signing secret, shown this once",
)
def create_webhook(request: HttpRequest, slug: str, payload: WebhookIn) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    hook, secret = webhooks.create_webhook(
        m,
        user,
        name=payload.name,
        url=payload.url,
        format=payload.format,
        events=payload.events,
        active=payload.active,
    )
    return Status(201, {**_webhook_out(m, hook), "secret": secret})


@router.get(
    "/{slug}/webhooks/{webhook_id}",
    response={200: WebhookOut, **READ_ERRORS},
    summary="One webhook",
)
def get_webhook(request: HttpRequest, slug: str, webhook_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return _webhook_out(m, webhooks.get_webhook(m, webhook_id))


@router.patch(
    "/{slug}/webhooks/{webhook_id}",
    response={200: WebhookOut, **ERRORS},
    summary="Change a webhook (admins): name, URL, format, events, paused or active",
)
def update_webhook(
    request: HttpRequest, slug: str, webhook_id: ObjectId, payload: WebhookPatch
) -> dict[str, Any]:
    m, user = scope(request, slug)
    webhooks.get_webhook(m, webhook_id)
    for name in ("name", "url", "format", "events", "active"):
        if name in payload.model_fields_set and getattr(payload, name) is None:
            raise ValidationFailed("Must not be null.", field=name)
    hook = webhooks.update_webhook(
        m,
        user,
        webhook_id,
        version=payload.version,
        name=payload.name,
        url=payload.url,
        format=payload.format,
        events=payload.events,
        active=payload.active,
    )
    return _webhook_out(m, hook)


@router.delete(
    "/{slug}/webhooks/{webhook_id}",
    response={204: None, **ERRORS},
    summary="Remove a webhook and its delivery log (admins)",
)
def delete_webhook(request: HttpRequest, slug: str, webhook_id: ObjectId) -> Status[None]:
    m, user = scope(request, slug)
    webhooks.delete_webhook(m, user, webhook_id)
    return Status(204, None)


@router.post(
    "/{slug}/webhooks/{webhook_id}/rotate-secret",
    response={200: WebhookCreatedOut, **ERRORS},
    summary="Replace a webhook's signing secret (admins); the new one is shown this once",
)
def rotate_webhook_secret(
    request: HttpRequest, slug: str, webhook_id: ObjectId, payload: VersionIn
) -> dict[str, Any]:
    m, user = scope(request, slug)
    hook, secret = webhooks.rotate_secret(m, user, webhook_id, version=payload.version)
    return {**_webhook_out(m, hook), "secret": secret}


@router.post(
    "/{slug}/webhooks/{webhook_id}/test",
    response={202: DeliveryOut, **ERRORS},
    summary="Send a test event to a webhook (admins; queued on the worker)",
)
def test_webhook(request: HttpRequest, slug: str, webhook_id: ObjectId) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    return Status(202, _delivery_out(webhooks.send_test(m, user, webhook_id)))


test_webhook.__test__ = False  # type: ignore[attr-defined]  # an endpoint, not a pytest test


@router.get(
    "/{slug}/webhook-deliveries",
    response={200: list[DeliveryOut], **READ_ERRORS},
    summary="The webhook delivery log, newest first (filter by status or webhook)",
)
def list_deliveries(request: HttpRequest, slug: str, filters: Query[DeliveryFilter]) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    qs = webhooks.deliveries_of(m, webhook_id=filters.webhook, status=filters.status)
    return [_delivery_out(d) for d in qs[filters.offset : filters.offset + filters.limit]]


@router.get(
    "/{slug}/webhook-deliveries/{delivery_id}",
    response={200: DeliveryDetailOut, **READ_ERRORS},
    summary="One delivery: its payload and every attempt (response code, excerpt, error)",
)
def get_delivery(request: HttpRequest, slug: str, delivery_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return _delivery_out(webhooks.get_delivery(m, delivery_id), m)


@router.post(
    "/{slug}/webhook-deliveries/{delivery_id}/replay",
    response={202: DeliveryOut, **ERRORS},
    summary="Send a delivery's payload again as a new delivery (admins)",
)
def replay_delivery(request: HttpRequest, slug: str, delivery_id: ObjectId) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    return Status(202, _delivery_out(webhooks.replay(m, user, delivery_id)))
