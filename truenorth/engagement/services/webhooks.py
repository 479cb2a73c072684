"""Outgoing webhooks: the rules (docs/engagement.md, "Webhooks").

- Admins add, change, pause, rotate and remove webhooks; every member reads the list and the delivery
  log, with the URL shown only to admins (a Slack or Teams URL is itself a credential).
- Events: every tracked change is a history entry; receivers.py maps each new entry to an event kind
  (`event_kind_for`, the catalogue in EVENT_KINDS) and, once the transaction commits, `emit` creates one
  delivery per active webhook subscribed to it and queues its sending on the worker. Other parts call
  `emit(organisation, kind, payload)` for events that are not history entries ("pulse.closed").
- Sending (worker only): `send_delivery` claims the delivery atomically (one UPDATE … WHERE status in
  pending/retrying and due), signs the body, POSTs it by the SSRF rules of truenorth/core/outbound.py and records
  the attempt. 2xx: delivered. Otherwise retried after 1 min, 5 min, 25 min, 2 h and 10 h; the sixth
  failure is final ("failed", shown in the log). A refused address fails at once (retrying cannot help).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core import outbound, telemetry
from truenorth.core.errors import Conflict, NotFound, ValidationFailed
from truenorth.engagement.models import (
    DeliveryStatus,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
    WebhookFormat,
)
from truenorth.engagement.services import webhook_formats
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.measures.sources import seal, unseal
from truenorth.orgs.models import Membership, Organisation, Role
from truenorth.orgs.services import require_role

MAX_ATTEMPTS = 6
BACKOFF_SECONDS = (60, 5 * 60, 25 * 60, 2 * 3600, 10 * 3600)
MAX_NAME_LENGTH = 120
MAX_EVENTS = 100
SECRET_PREFIX = "whsec_"
USER_AGENT = "TrueNorth-Webhooks/1"
HISTORY_FIELDS = ("name", "url", "format", "events", "active")

# History object types → the event noun.
OBJECT_NOUNS = {
    "strategy.product": "product",
    "strategy.goal": "goal",
    "strategy.changeproposal": "proposal",
    "strategy.checkin": "checkin",
    "strategy.comment": "comment",
    "strategy.targetmeasure": "target",
    "strategy.workitem": "work_item",
    "measures.measure": "measure",
    "measures.investment": "investment",
    "hypotheses.hypothesis": "hypothesis",
    "hypotheses.experiment": "experiment",
    "hypotheses.decision": "decision",
}
_ACTIONS = ("created", "updated", "archived", "deleted")


def _a(noun: str) -> str:
    return "An" if noun[0] in "aeiou" else "A"


# The catalogue a webhook subscribes from (empty subscription: all of them).
EVENT_KINDS: tuple[tuple[str, str], ...] = (
    *(
        (f"{noun}.{action}", f"{_a(noun)} {noun.replace('_', ' ')} was {action}")
        for noun in (
            "product",
            "goal",
            "target",
            "work_item",
            "measure",
            "investment",
            "hypothesis",
            "experiment",
        )
        for action in _ACTIONS
    ),
    ("proposal.created", "A change proposal was made"),
    ("proposal.accepted", "A change proposal was accepted"),
    ("proposal.rejected", "A change proposal was rejected"),
    ("proposal.withdrawn", "A change proposal was withdrawn"),
    ("proposal.updated", "A change proposal was edited"),
    ("checkin.recorded", "A goal check-in was recorded"),
    ("comment.created", "A comment was written"),
    ("comment.updated", "A comment was edited"),
    ("comment.deleted", "A comment was removed"),
    ("decision.recorded", "A decision was recorded on an experiment"),
    ("decision.updated", "A decision was edited"),
    ("pulse.closed", "An alignment pulse round closed"),
)
KNOWN_KINDS = frozenset(kind for kind, _ in EVENT_KINDS)
TEST_KIND = "test"


def event_kind_for(object_type: str, action: str, changes: dict[str, Any] | None) -> str | None:
    """The event kind of a history entry, or None when webhooks do not announce it."""
    noun = OBJECT_NOUNS.get(object_type)
    if noun is None:
        return None
    changes = changes or {}
    if noun == "goal" and "check-in" in changes:
        return "checkin.recorded"
    if noun == "checkin":
        return "checkin.recorded"
    if noun == "decision" and action == "created":
        return "decision.recorded"
    if noun == "proposal" and action == "updated":
        state = (changes.get("state") or {}).get("new") if isinstance(changes.get("state"), dict) else None
        if state in ("accepted", "rejected", "withdrawn"):
            return f"proposal.{state}"
    kind = f"{noun}.{action}"
    return kind if kind in KNOWN_KINDS else None


# --- settings -------------------------------------------------------------------------------------


def allow_private() -> bool:
    return bool(getattr(settings, "TRUENORTH_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", False))


def timeout_seconds() -> float:
    return float(getattr(settings, "TRUENORTH_WEBHOOKS_TIMEOUT_SECONDS", 10))


def concurrency() -> int:
    return max(1, int(getattr(settings, "TRUENORTH_WEBHOOKS_CONCURRENCY_PER_ORGANISATION", 4)))


def lease() -> dt.timedelta:
    """How long a claimed delivery stays claimed: after that a crashed worker's claim is taken over."""
    return dt.timedelta(seconds=timeout_seconds() * (outbound.MAX_REDIRECTS + 1) + 60)


# --- webhooks -------------------------------------------------------------------------------------


def masked_url(url: str) -> str:
    """Scheme and host only: what members (and history) see of a URL that may hold a token."""
    try:
        scheme, host, port, _ = outbound.check_url(url)
    except outbound.UrlRefused:
        return "(invalid)"
    default = 443 if scheme == "https" else 80
    where = f"[{host}]" if ":" in host else host
    return f"{scheme}://{where}{'' if port == default else f':{port}'}/…"


def webhooks_of(membership: Membership) -> QuerySet[Webhook]:
    return Webhook.objects.filter(organisation=membership.organisation).order_by("name", "id")


def get_webhook(membership: Membership, webhook_id: int) -> Webhook:
    found = webhooks_of(membership).filter(pk=webhook_id).first()
    if found is None:
        raise NotFound("No such webhook.")
    return found


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_of(webhook: Webhook) -> str:
    """The signing secret in clear (worker only; never shown after creation or rotation)."""
    value = unseal(webhook.secret_encrypted)
    if not isinstance(value, str):
        raise ValidationFailed(
            "The signing secret cannot be decrypted (the encryption key changed): rotate it.", field="secret"
        )
    return value


def clean_url(url: Any) -> str:
    text = str(url or "").strip()
    try:
        _, host, port, _ = outbound.check_url(text)
        if not allow_private() and outbound.is_ip_literal(host):  # names are checked before each send
            outbound.pick_address(host, port, allow_private=False)
    except outbound.UrlRefused as exc:
        raise ValidationFailed(str(exc), field="url") from None
    return text


def clean_events(events: Any) -> list[str]:
    if events is None:
        return []
    if isinstance(events, str):
        events = [e for e in events.replace(",", " ").split() if e]
    if not isinstance(events, list | tuple) or len(events) > MAX_EVENTS:
        raise ValidationFailed("Give a list of event kinds (or none for all of them).", field="events")
    chosen: list[str] = []
    for event in events:
        kind = str(event).strip()
        if kind not in KNOWN_KINDS:
            raise ValidationFailed(f"Unknown event kind “{kind[:60]}”.", field="events")
        if kind not in chosen:
            chosen.append(kind)
    return sorted(chosen)


def _clean_name(name: Any) -> str:
    text = " ".join(str(name or "").split())
    if not text:
        raise ValidationFailed("Give the webhook a name.", field="name")
    if len(text) > MAX_NAME_LENGTH:
        raise ValidationFailed(f"At most {MAX_NAME_LENGTH} characters.", field="name")
    return text


def _clean_format(fmt: Any) -> str:
    if fmt not in WebhookFormat.values:
        raise ValidationFailed(f"Choose one of {', '.join(WebhookFormat.values)}.", field="format")
    return str(fmt)


def _snapshot(webhook: Webhook) -> dict[str, Any]:
    shot = snapshot(webhook, HISTORY_FIELDS)
    shot["url"] = masked_url(webhook.url)  # history is read by every member; the URL may hold a token
    return shot


def create_webhook(
    membership: Membership,
    actor: User,
    *,
    name: Any,
    url: Any,
    format: Any = WebhookFormat.JSON,
    events: Any = None,
    active: bool = True,
) -> tuple[Webhook, str]:
    """A new webhook and its signing secret (shown to the admin once, never again)."""
    require_role(membership, Role.ADMIN)
    secret = generate_secret()
    webhook = Webhook(
        organisation=membership.organisation,
        name=_clean_name(name),
        url=clean_url(url),
        format=_clean_format(format),
        events=clean_events(events),
        active=bool(active),
        created_by=actor,
        secret_encrypted=seal(secret),
    )
    if webhooks_of(membership).filter(name=webhook.name).exists():
        raise ValidationFailed("A webhook with this name exists already.", field="name")
    try:
        with transaction.atomic():
            webhook.save()
    except IntegrityError:
        raise ValidationFailed("A webhook with this name exists already.", field="name") from None
    record(membership.organisation, webhook, actor, HistoryEntry.Action.CREATED, diff({}, _snapshot(webhook)))
    return webhook, secret


def update_webhook(
    membership: Membership,
    actor: User,
    webhook_id: int,
    *,
    version: int,
    name: Any = None,
    url: Any = None,
    format: Any = None,
    events: Any = None,
    active: bool | None = None,
) -> Webhook:
    """Change what is given (None: keep); an unchanged save writes nothing."""
    require_role(membership, Role.ADMIN)
    with transaction.atomic():
        webhook = get_webhook(membership, webhook_id)
        webhook = Webhook.objects.select_for_update().get(pk=webhook.pk)
        if webhook.version != version:
            raise Conflict(
                "Someone changed this webhook since you opened it; reload and try again.", field="version"
            )
        before = snapshot(webhook, HISTORY_FIELDS)
        shown_before = _snapshot(webhook)
        if name is not None:
            webhook.name = _clean_name(name)
        if url is not None:
            webhook.url = clean_url(url)
        if format is not None:
            webhook.format = _clean_format(format)
        if events is not None:
            webhook.events = clean_events(events)
        if active is not None:
            webhook.active = bool(active)
        if snapshot(webhook, HISTORY_FIELDS) == before:
            return webhook
        if webhooks_of(membership).filter(name=webhook.name).exclude(pk=webhook.pk).exists():
            raise ValidationFailed("A webhook with this name exists already.", field="name")
        webhook.version += 1
        webhook.save()
        changes = diff(shown_before, _snapshot(webhook))
        if "url" not in changes and before["url"] != webhook.url:
            changes["url"] = {"old": shown_before["url"], "new": "(changed)"}
        record(membership.organisation, webhook, actor, HistoryEntry.Action.UPDATED, changes)
    return webhook


def rotate_secret(
    membership: Membership, actor: User, webhook_id: int, *, version: int
) -> tuple[Webhook, str]:
    """A new signing secret, replacing the old one at once (shown once)."""
    require_role(membership, Role.ADMIN)
    secret = generate_secret()
    with transaction.atomic():
        webhook = Webhook.objects.select_for_update().get(pk=get_webhook(membership, webhook_id).pk)
        if webhook.version != version:
            raise Conflict(
                "Someone changed this webhook since you opened it; reload and try again.", field="version"
            )
        webhook.secret_encrypted = seal(secret)
        webhook.version += 1
        webhook.save(update_fields=["secret_encrypted", "version"])
        record(
            membership.organisation,
            webhook,
            actor,
            HistoryEntry.Action.UPDATED,
            {"secret": {"old": "********", "new": "(rotated)"}},
        )
    return webhook, secret


def delete_webhook(membership: Membership, actor: User, webhook_id: int) -> None:
    """Remove a webhook and its delivery log."""
    require_role(membership, Role.ADMIN)
    webhook = get_webhook(membership, webhook_id)
    record(membership.organisation, webhook, actor, HistoryEntry.Action.DELETED, diff(_snapshot(webhook), {}))
    webhook.delete()


# --- events and deliveries ------------------------------------------------------------------------


def event_payload(
    organisation: Organisation,
    kind: str,
    *,
    occurred_at: dt.datetime | None = None,
    actor: str = "",
    obj: dict[str, Any] | None = None,
    action: str = "",
    changes: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON event every format starts from (the "json" format sends it as is)."""
    return {
        "event": kind,
        "occurred_at": (occurred_at or timezone.now()).isoformat(),
        "organisation": {"slug": organisation.slug, "name": organisation.name},
        "actor": actor,
        "object": obj or {},
        "action": action,
        "changes": changes or {},
        "data": data or {},
        "link": f"{settings.SITE_URL}/o/{organisation.slug}/",
    }


def history_payload(entry: HistoryEntry, kind: str) -> dict[str, Any]:
    """The event of one history entry (its organisation is already loaded by history.record)."""
    return event_payload(
        entry.organisation,
        kind,
        occurred_at=entry.at,
        actor=entry.actor_name,
        obj={
            "type": OBJECT_NOUNS.get(entry.object_type, entry.object_type),
            "model": entry.object_type,
            "id": entry.object_id,
            "title": entry.object_repr,
        },
        action=entry.action,
        changes=entry.changes,
    )


def _enqueue(delivery_ids: Sequence[int]) -> None:
    """Queue the sending of these deliveries on the worker once the transaction commits."""
    if not delivery_ids:
        return
    from truenorth.engagement.jobs.webhooks import send_webhook_delivery

    def queue() -> None:
        for pk in delivery_ids:
            send_webhook_delivery(pk)

    transaction.on_commit(queue)


def emit(organisation: Organisation | int, kind: str, payload: dict[str, Any]) -> list[WebhookDelivery]:
    """One delivery per active webhook of the organisation subscribed to `kind`, queued for sending.
    One query when the organisation has no active webhook."""
    org_id = organisation if isinstance(organisation, int) else organisation.pk
    hooks = [h for h in Webhook.objects.filter(organisation_id=org_id, active=True) if h.wants(kind)]
    if not hooks:
        return []
    now = timezone.now()
    made = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(webhook=h, kind=kind, payload=payload, created_at=now, next_attempt_at=now)
            for h in hooks
        ]
    )
    if any(d.pk is None for d in made):  # backends without RETURNING: read them back
        made = list(WebhookDelivery.objects.filter(webhook__in=hooks, created_at=now, kind=kind))
    _enqueue([d.pk for d in made])
    return made


def send_test(membership: Membership, actor: User, webhook_id: int) -> WebhookDelivery:
    """A "test" event to one webhook (paused or not), queued like any other."""
    require_role(membership, Role.ADMIN)
    webhook = get_webhook(membership, webhook_id)
    payload = event_payload(
        membership.organisation,
        TEST_KIND,
        actor=actor.email,
        data={"message": "A test event from TrueNorth.", "webhook": webhook.name},
    )
    delivery = WebhookDelivery.objects.create(
        webhook=webhook, kind=TEST_KIND, payload=payload, next_attempt_at=timezone.now()
    )
    _enqueue([delivery.pk])
    return delivery


def deliveries_of(
    membership: Membership, *, webhook_id: int | None = None, status: str | None = None
) -> QuerySet[WebhookDelivery]:
    qs = WebhookDelivery.objects.filter(webhook__organisation=membership.organisation).select_related(
        "webhook"
    )
    if webhook_id is not None:
        qs = qs.filter(webhook_id=webhook_id)
    if status:
        if status not in DeliveryStatus.values:
            raise ValidationFailed(f"Choose one of {', '.join(DeliveryStatus.values)}.", field="status")
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def get_delivery(membership: Membership, delivery_id: int) -> WebhookDelivery:
    found = deliveries_of(membership).filter(pk=delivery_id).first()
    if found is None:
        raise NotFound("No such delivery.")
    return found


def replay(membership: Membership, actor: User, delivery_id: int) -> WebhookDelivery:
    """A new delivery of the same payload to the same webhook (new id, new signature)."""
    require_role(membership, Role.ADMIN)
    original = get_delivery(membership, delivery_id)
    delivery = WebhookDelivery.objects.create(
        webhook=original.webhook,
        kind=original.kind,
        payload=original.payload,
        next_attempt_at=timezone.now(),
        replay_of=original,
    )
    _enqueue([delivery.pk])
    return delivery


# --- sending (worker) -----------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>`, the X-TrueNorth-Signature header."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def body_of(webhook: Webhook, delivery: WebhookDelivery) -> bytes:
    rendered = webhook_formats.render(webhook.format, delivery.payload)
    return json.dumps(rendered, separators=(",", ":"), ensure_ascii=False).encode()


def headers_for(webhook: Webhook, delivery: WebhookDelivery, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-TrueNorth-Event": delivery.kind,
        "X-TrueNorth-Delivery": str(delivery.uid),
        "X-TrueNorth-Timestamp": str(timestamp),
        "X-TrueNorth-Signature": sign(secret_of(webhook), timestamp, body),
    }


def _claimable(now: dt.datetime) -> Q:
    waiting = Q(status__in=(DeliveryStatus.PENDING, DeliveryStatus.RETRYING)) & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    abandoned = Q(status=DeliveryStatus.SENDING, claimed_at__lt=now - lease())
    return waiting | abandoned


def claim(delivery_id: int, now: dt.datetime | None = None) -> WebhookDelivery | None:
    """Take the delivery for sending, or None when it is not due, taken by another worker, or its
    organisation already has `concurrency()` deliveries in flight. One conditional UPDATE: two workers
    cannot both win."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_related("webhook").filter(pk=delivery_id).first()
        if delivery is None:
            return None
        org_id = delivery.webhook.organisation_id
        # Serialise claims per organisation (PostgreSQL row lock; SQLite writes are serialised anyway).
        list(Organisation.objects.select_for_update().filter(pk=org_id).values_list("pk", flat=True))
        in_flight = WebhookDelivery.objects.filter(
            webhook__organisation_id=org_id, status=DeliveryStatus.SENDING, claimed_at__gte=now - lease()
        ).count()
        if in_flight >= concurrency():
            return None
        won = WebhookDelivery.objects.filter(_claimable(now), pk=delivery_id).update(
            status=DeliveryStatus.SENDING, claimed_at=now
        )
    if not won:
        return None
    delivery.refresh_from_db()
    return delivery


def backoff(attempts: int) -> dt.timedelta | None:
    """The wait before the next try after `attempts` failed ones; None when it was the last."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return dt.timedelta(seconds=BACKOFF_SECONDS[min(attempts, len(BACKOFF_SECONDS)) - 1])


@dataclass(frozen=True)
class Outcome:
    """One attempt, as data (what `post` answered, or what the demo says happened)."""

    code: int | None = None
    excerpt: str = ""
    error: str = ""
    duration_ms: int = 0
    url: str = ""
    retry: bool = True
    at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300 and not self.error


def record_attempt(
    delivery: WebhookDelivery, outcome: Outcome, now: dt.datetime | None = None
) -> WebhookDelivery:
    """Store one attempt and move the delivery on: delivered, retrying later, or failed."""
    now = outcome.at or now or timezone.now()
    error = outcome.error
    if not error and not outcome.ok:
        error = f"HTTP {outcome.code}" if outcome.code is not None else "No answer."
    WebhookAttempt.objects.create(
        delivery=delivery,
        at=now,
        url=outcome.url[:2000],
        response_code=outcome.code,
        response_excerpt=outcome.excerpt[: outbound.EXCERPT_LENGTH],
        error=outcome.error[:500],
        duration_ms=max(0, outcome.duration_ms),
    )
    delivery.attempts += 1
    delivery.claimed_at = None
    if outcome.ok:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        delivery.last_error = ""
    else:
        telemetry.webhook_failed()
        wait = backoff(delivery.attempts) if outcome.retry else None
        delivery.last_error = error[:500]
        if wait is None:
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.status = DeliveryStatus.RETRYING
            delivery.next_attempt_at = now + wait
    delivery.save(
        update_fields=["attempts", "claimed_at", "status", "delivered_at", "next_attempt_at", "last_error"]
    )
    return delivery


def send_delivery(
    delivery_id: int, *, now: dt.datetime | None = None, resolver: outbound.Resolver | None = None
) -> WebhookDelivery | None:
    """Claim, sign, send and record one delivery (the worker's job); None when it was not claimed."""
    delivery = claim(delivery_id, now)
    if delivery is None:
        return None
    webhook = delivery.webhook
    try:
        body = body_of(webhook, delivery)
        stamp = int((now or timezone.now()).timestamp())
        headers = headers_for(webhook, delivery, body, stamp)
    except ValidationFailed as exc:
        return record_attempt(delivery, Outcome(error=exc.message, url=webhook.url, retry=False), now)
    answer = outbound.post(
        webhook.url,
        body,
        headers,
        timeout=timeout_seconds(),
        allow_private=allow_private(),
        resolver=resolver,
    )
    outcome = Outcome(
        code=answer.code,
        excerpt=answer.excerpt,
        error=answer.error,
        duration_ms=answer.duration_ms,
        url=answer.url,
        retry=answer.retry,
    )
    return record_attempt(delivery, outcome, now)


def due_deliveries(now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(_claimable(now))
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def send_due(now: dt.datetime | None = None) -> dict[str, int]:
    """Send every due delivery (new ones a worker missed, retries whose time has come)."""
    counts = {"sent": 0, "delivered": 0, "skipped": 0}
    for pk in due_deliveries(now):
        done = send_delivery(pk, now=now)
        if done is None:
            counts["skipped"] += 1
            continue
        counts["sent"] += 1
        counts["delivered"] += done.status == DeliveryStatus.DELIVERED
    return counts


def record_delivery(
    webhook: Webhook,
    kind: str,
    payload: dict[str, Any],
    attempts: Iterable[Outcome],
    *,
    created_at: dt.datetime,
) -> WebhookDelivery:
    """A delivery whose attempts are given as data (the demo; imports): no network call."""
    delivery = WebhookDelivery.objects.create(
        webhook=webhook, kind=kind, payload=payload, created_at=created_at, next_attempt_at=created_at
    )
    for outcome in attempts:
        record_attempt(delivery, outcome)
    return delivery
