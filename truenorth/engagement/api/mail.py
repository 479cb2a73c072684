"""Engagement API: mail — the outbox (admins), my notification settings, my follows and my digest
preview. Every rule lives in engagement/services/mail*.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field

from truenorth.core.schemas import ERRORS, READ_ERRORS, ErrorOut, ObjectId, StrictSchema
from truenorth.engagement.models import EmailKind, EmailStatus, Follow, NotificationSettings, OutgoingEmail
from truenorth.engagement.services import mail, mail_digest
from truenorth.orgs.scoping import scope

router = Router(tags=["engagement"])


class OutgoingEmailOut(Schema):
    id: int
    kind: EmailKind
    to: str
    subject: str
    status: EmailStatus
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    user_id: int | None


class OutboxFilter(Schema):
    status: EmailStatus | None = Field(None, description="Only messages with this status.")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=1_000_000_000)


class SettingsOut(Schema):
    checkin_reminders: bool
    weekly_digest: bool
    digest_weekday: int = Field(description="0 = Monday … 6 = Sunday.")
    version: int


class SettingsIn(StrictSchema):
    checkin_reminders: bool | None = None
    weekly_digest: bool | None = None
    digest_weekday: int | None = Field(None, description="0 = Monday … 6 = Sunday.")
    version: int = Field(description="The version you read (1 before the first save); a stale one is 409.")


class FollowOut(Schema):
    id: int
    product_id: int | None
    goal_id: int | None
    name: str
    created_at: dt.datetime


class DigestItemOut(Schema):
    text: str
    url: str


class DigestSectionOut(Schema):
    title: str
    items: list[DigestItemOut]


class DigestOut(Schema):
    since: dt.datetime
    until: dt.datetime
    empty: bool = Field(description="Nothing changed: no digest would be sent.")
    goal_ids: list[int]
    product_ids: list[int]
    sections: list[DigestSectionOut]


def _email(e: OutgoingEmail) -> dict[str, Any]:
    return {
        "id": e.pk, "kind": e.kind, "to": e.to, "subject": e.subject, "status": e.status,
        "attempts": e.attempts, "next_attempt_at": e.next_attempt_at, "last_error": e.last_error,
        "created_at": e.created_at, "sent_at": e.sent_at, "user_id": e.user_id,
    }


def _settings(s: NotificationSettings) -> dict[str, Any]:
    return {
        "checkin_reminders": s.checkin_reminders, "weekly_digest": s.weekly_digest,
        "digest_weekday": s.digest_weekday, "version": s.version,
    }


def _follow(f: Follow) -> dict[str, Any]:
    return {
        "id": f.pk, "product_id": f.product_id, "goal_id": f.goal_id,
        "name": f.product.name if f.product else f.goal.title if f.goal else "", "created_at": f.created_at,
    }


@router.get(
    "/{slug}/outbox",
    response={200: list[OutgoingEmailOut], **READ_ERRORS, 403: ErrorOut},
    summary="The organisation's outgoing e-mail, newest first (admins)",
)
def list_outbox(request: HttpRequest, slug: str, filters: Query[OutboxFilter]) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    qs = mail.outbox(m, status=filters.status)
    return [_email(e) for e in qs[filters.offset : filters.offset + filters.limit]]


@router.post(
    "/{slug}/outbox/{email_id}/retry",
    response={200: OutgoingEmailOut, **ERRORS},
    summary="Send a queued or failed e-mail now (admins)",
)
def retry_email(request: HttpRequest, slug: str, email_id: ObjectId) -> dict[str, Any]:
    m, user = scope(request, slug)
    return _email(mail.retry_now(m, user, email_id))


@router.get(
    "/{slug}/notification-settings",
    response={200: SettingsOut, **READ_ERRORS},
    summary="My e-mail notification settings in this organisation",
)
def get_notification_settings(request: HttpRequest, slug: str) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return _settings(mail.my_settings(m))


@router.put(
    "/{slug}/notification-settings",
    response={200: SettingsOut, **ERRORS},
    summary="Change my e-mail notification settings in this organisation",
)
def update_notification_settings(request: HttpRequest, slug: str, payload: SettingsIn) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return _settings(
        mail.update_settings(
            m,
            checkin_reminders=payload.checkin_reminders,
            weekly_digest=payload.weekly_digest,
            digest_weekday=payload.digest_weekday,
            version=payload.version,
        )
    )


@router.get("/{slug}/follows", response={200: list[FollowOut], **READ_ERRORS}, summary="What I follow")
def list_follows(request: HttpRequest, slug: str) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return [_follow(f) for f in mail.follows_of(m)]


@router.put(
    "/{slug}/follows/goals/{goal_id}",
    response={200: FollowOut, **ERRORS},
    summary="Follow a goal (following it again changes nothing)",
)
def follow_goal(request: HttpRequest, slug: str, goal_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return _follow(mail.follow(m, goal_id=goal_id))


@router.delete("/{slug}/follows/goals/{goal_id}", response={204: None, **ERRORS}, summary="Stop following a goal")
def unfollow_goal(request: HttpRequest, slug: str, goal_id: ObjectId) -> Status:
    m, _ = scope(request, slug)
    mail.unfollow(m, goal_id=goal_id)
    return Status(204, None)


@router.put(
    "/{slug}/follows/products/{product_id}",
    response={200: FollowOut, **ERRORS},
    summary="Follow a product (following it again changes nothing)",
)
def follow_product(request: HttpRequest, slug: str, product_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return _follow(mail.follow(m, product_id=product_id))


@router.delete(
    "/{slug}/follows/products/{product_id}", response={204: None, **ERRORS}, summary="Stop following a product"
)
def unfollow_product(request: HttpRequest, slug: str, product_id: ObjectId) -> Status:
    m, _ = scope(request, slug)
    mail.unfollow(m, product_id=product_id)
    return Status(204, None)


@router.get(
    "/{slug}/digest/preview",
    response={200: DigestOut, **READ_ERRORS},
    summary="My digest as it would be sent now (what changed since my last digest, or 7 days)",
)
def digest_preview(request: HttpRequest, slug: str) -> dict[str, Any]:
    m, _ = scope(request, slug)
    digest = mail_digest.build_digest(m)
    return {
        "since": digest.since, "until": digest.until, "empty": digest.empty,
        "goal_ids": [g.pk for g in digest.goals], "product_ids": [p.pk for p in digest.products],
        "sections": [
            {"title": title, "items": [{"text": i.text, "url": i.url} for i in items]}
            for title, items in digest.sections
        ],
    }
