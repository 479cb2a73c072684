"""E-mail: the outbox (queue, send on the worker, retry with backoff), notification settings, follows
and one-click unsubscribe. Reminders and digests build their messages in `mail_reminders` and
`mail_digest` and queue them here.

Every message is recorded first (`queue_email`), then sent by the background worker through Django's
e-mail backend. A message is claimed for sending by one conditional UPDATE (queued → sending), so two
workers never send it twice; a failure records the error and schedules another attempt after
1, 5, 25, 125 … minutes; after `TRUENORTH_EMAIL_MAX_ATTEMPTS` attempts the message is `failed` (shown in
the outbox, where an admin can retry it). A `dedupe_key` is unique per organisation (a database
constraint): queuing the same key again returns the first message.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from truenorth.accounts.models import User
from truenorth.core import validate
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.engagement.models import EmailKind, EmailStatus, Follow, NotificationSettings, OutgoingEmail
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.orgs.models import Membership, Organisation, Role
from truenorth.orgs.services import require_role
from truenorth.strategy import services as strategy
from truenorth.strategy.models import Goal, Product

logger = logging.getLogger(__name__)

# How long a claimed message may stay `sending` before another worker may take it over (the first
# worker died mid-send). Longer than any SMTP timeout.
SENDING_LEASE = dt.timedelta(minutes=10)
BACKOFF_BASE_MINUTES = 5
MAX_ERROR_LENGTH = 2000


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the `attempts`-th failed attempt: 1, 5, 25, 125 … minutes."""
    return dt.timedelta(minutes=BACKOFF_BASE_MINUTES ** max(attempts - 1, 0))


def max_attempts() -> int:
    return int(settings.TRUENORTH_EMAIL_MAX_ATTEMPTS)


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str = ""


# --- queue -----------------------------------------------------------------------------------------


def _check_address(to: str) -> str:
    to = (to or "").strip()
    try:
        validate_email(to)
    except ValidationError:
        raise ValidationFailed("Enter a valid e-mail address.", field="to") from None
    return to


def queue_email(
    organisation: Organisation,
    *,
    to: str,
    subject: str,
    text: str,
    html: str = "",
    kind: str,
    dedupe_key: str,
    user: User | None = None,
    headers: dict[str, str] | None = None,
    now: dt.datetime | None = None,
) -> OutgoingEmail:
    """Record one e-mail and have the background worker send it (queued once the caller's transaction
    commits; at once in immediate mode). The same `dedupe_key` in the organisation returns the message
    already recorded, which is not sent again. Reminders and digests to a person carry the one-click
    unsubscribe headers (RFC 8058)."""
    to = _check_address(to)
    kind = validate.choice(kind, EmailKind.values, "kind")
    subject = validate.text(subject, "subject", required=True, max_length=300).replace("\n", " ")
    text = validate.text(text, "text", required=True, max_length=200_000)
    dedupe_key = validate.text(dedupe_key, "dedupe_key", required=True, max_length=200)
    existing = OutgoingEmail.objects.filter(organisation=organisation, dedupe_key=dedupe_key).first()
    if existing is not None:
        return existing
    all_headers = dict(headers or {})
    if user is not None and kind in UNSUBSCRIBABLE:
        url = unsubscribe_url(user, organisation, kind)
        all_headers["List-Unsubscribe"] = f"<{url}>"
        all_headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    try:
        with transaction.atomic():
            email = OutgoingEmail.objects.create(
                organisation=organisation,
                user=user,
                to=to,
                kind=kind,
                subject=subject,
                text=text,
                html=html or "",
                headers=all_headers,
                dedupe_key=dedupe_key,
                created_at=now or timezone.now(),
            )
    except IntegrityError:  # a concurrent caller recorded the same key first
        return OutgoingEmail.objects.get(organisation=organisation, dedupe_key=dedupe_key)
    enqueue(email.pk)
    return email


def record_sent(
    organisation: Organisation,
    *,
    to: str,
    message: Message,
    kind: str,
    dedupe_key: str,
    user: User | None = None,
    now: dt.datetime | None = None,
) -> OutgoingEmail:
    """Record a message as already sent at `now`, without sending it (the demo's outbox history).
    The same key returns the row recorded before."""
    to = _check_address(to)
    kind = validate.choice(kind, EmailKind.values, "kind")
    now = now or timezone.now()
    headers = {}
    if user is not None and kind in UNSUBSCRIBABLE:
        headers = {
            "List-Unsubscribe": f"<{unsubscribe_url(user, organisation, kind)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    email, _ = OutgoingEmail.objects.get_or_create(
        organisation=organisation,
        dedupe_key=dedupe_key,
        defaults={
            "user": user, "to": to, "kind": kind, "subject": message.subject, "text": message.text,
            "html": message.html, "headers": headers, "status": EmailStatus.SENT, "attempts": 1,
            "created_at": now, "sent_at": now,
        },
    )
    return email


def enqueue(email_id: int) -> None:
    """Have the worker send one message once the current transaction commits."""
    if HUEY.immediate:
        _enqueue(email_id)
    else:  # the worker must not look for the message before it is committed
        transaction.on_commit(lambda: _enqueue(email_id))


def _enqueue(email_id: int) -> None:
    from truenorth.engagement.jobs.mail import send_email_task

    try:
        send_email_task(email_id)
    except Exception:  # the queue itself is down: the periodic retry picks the message up later
        logger.exception("Could not queue e-mail %s; the periodic retry will send it", email_id)


# --- send ------------------------------------------------------------------------------------------


def _claimable(now: dt.datetime) -> Q:
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    lease_over = Q(status=EmailStatus.SENDING, next_attempt_at__lte=now)
    return (Q(status=EmailStatus.QUEUED) & due) | lease_over


def claim(email_id: int, *, now: dt.datetime | None = None) -> OutgoingEmail | None:
    """Take one message for sending, atomically (one conditional UPDATE): None when it is not due, is
    already sent or failed, or another worker holds it."""
    now = now or timezone.now()
    taken = OutgoingEmail.objects.filter(_claimable(now), pk=email_id).update(
        status=EmailStatus.SENDING, next_attempt_at=now + SENDING_LEASE, attempts=F("attempts") + 1
    )
    if taken != 1:
        return None
    return OutgoingEmail.objects.select_related("organisation").get(pk=email_id)


def _message(email: OutgoingEmail) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to],
        headers=dict(email.headers or {}),
        connection=get_connection(fail_silently=False),
    )
    if email.html:
        message.attach_alternative(email.html, "text/html")
    return message


def deliver(email_id: int, *, now: dt.datetime | None = None) -> str | None:
    """Claim and send one message; records the outcome. Returns the new status, or None when the
    message was not ours to send."""
    email = claim(email_id, now=now)
    if email is None:
        return None
    try:
        _message(email).send()
    except Exception as exc:  # any backend failure is recorded, never lost
        return _failed(email, f"{type(exc).__name__}: {exc}", now=now)
    OutgoingEmail.objects.filter(pk=email.pk, status=EmailStatus.SENDING).update(
        status=EmailStatus.SENT, sent_at=timezone.now(), next_attempt_at=None, last_error=""
    )
    return EmailStatus.SENT


def _failed(email: OutgoingEmail, error: str, *, now: dt.datetime | None) -> str:
    now = now or timezone.now()
    logger.warning("Sending e-mail %s (attempt %s) failed: %s", email.pk, email.attempts, error)
    if email.attempts >= max_attempts():
        status, next_at = EmailStatus.FAILED, None
    else:
        status, next_at = EmailStatus.QUEUED, now + backoff(email.attempts)
    OutgoingEmail.objects.filter(pk=email.pk, status=EmailStatus.SENDING).update(
        status=status, next_attempt_at=next_at, last_error=error[:MAX_ERROR_LENGTH]
    )
    return status


def send_due(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Send every message that is due (new ones whose queueing was lost, retries whose wait is over,
    ones whose sender died): the periodic task."""
    now = now or timezone.now()
    ids = list(
        OutgoingEmail.objects.filter(_claimable(now)).order_by("next_attempt_at", "id").values_list("pk", flat=True)[
            :limit
        ]
    )
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    for email_id in ids:
        status = deliver(email_id, now=now)
        if status == EmailStatus.SENT:
            counts["sent"] += 1
        elif status == EmailStatus.QUEUED:
            counts["retrying"] += 1
        elif status == EmailStatus.FAILED:
            counts["failed"] += 1
    return counts


# --- outbox ----------------------------------------------------------------------------------------


def outbox(membership: Membership, *, status: str | None = None) -> QuerySet[OutgoingEmail]:
    """The organisation's outgoing e-mail, newest first (admins and owners)."""
    require_role(membership, Role.ADMIN)
    qs = OutgoingEmail.objects.filter(organisation=membership.organisation).select_related("user")
    if status:
        qs = qs.filter(status=validate.choice(status, EmailStatus.values, "status"))
    return qs


def get_email(membership: Membership, email_id: int) -> OutgoingEmail:
    require_role(membership, Role.ADMIN)
    email = OutgoingEmail.objects.filter(organisation=membership.organisation, pk=email_id).first()
    if email is None:
        raise NotFound("No such e-mail.")
    return email


def retry_now(membership: Membership, actor: User, email_id: int) -> OutgoingEmail:
    """Send a queued or failed message now (admins): its wait is cleared and it is queued again."""
    email = get_email(membership, email_id)
    if email.status not in (EmailStatus.QUEUED, EmailStatus.FAILED):
        raise ValidationFailed(f"This e-mail is {email.get_status_display().lower()}; nothing to retry.", field="status")
    before = email.status
    with transaction.atomic():
        updated = OutgoingEmail.objects.filter(pk=email.pk, status=before).update(
            status=EmailStatus.QUEUED, next_attempt_at=None
        )
        if updated:
            record(
                membership.organisation, email, actor, HistoryEntry.Action.UPDATED,
                {"status": {"old": before, "new": EmailStatus.QUEUED}},
            )
        enqueue(email.pk)
    email.refresh_from_db()
    return email


# --- unsubscribe -----------------------------------------------------------------------------------

UNSUBSCRIBE_SALT = "truenorth.engagement.unsubscribe.v2"
# Links sent before v2 carried a timestamp, so one message could hold two different links for the same
# person (body and header signed a second apart); they are still honoured.
_TIMESTAMPED_UNSUBSCRIBE_SALT = "truenorth.engagement.unsubscribe"
UNSUBSCRIBABLE = (EmailKind.REMINDER, EmailKind.DIGEST)


@dataclass(frozen=True)
class UnsubscribeTarget:
    user: User
    organisation: Organisation
    kind: str


def unsubscribe_token(user: User, organisation: Organisation, kind: str) -> str:
    """The same person, organisation and kind always give the same link (no timestamp: links never
    expire, and a message's body and its List-Unsubscribe header must name the same one)."""
    payload = {"u": user.pk, "o": organisation.pk, "k": kind}
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object(payload, compress=True)


def _unsubscribe_payload(token: str) -> Any:
    try:
        return signing.Signer(salt=UNSUBSCRIBE_SALT).unsign_object(token)
    except signing.BadSignature:
        return signing.loads(token, salt=_TIMESTAMPED_UNSUBSCRIBE_SALT)


def unsubscribe_url(user: User, organisation: Organisation, kind: str) -> str:
    path = reverse("engagement:unsubscribe", kwargs={"token": unsubscribe_token(user, organisation, kind)})
    return f"{settings.SITE_URL}{path}"


def read_unsubscribe_token(token: str) -> UnsubscribeTarget:
    """The person, organisation and kind a link names; NotFound for a tampered or unknown one."""
    try:
        data = _unsubscribe_payload(token)
        user_id, org_id, kind = int(data["u"]), int(data["o"]), str(data["k"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise NotFound("This unsubscribe link is not valid.") from None
    if kind not in UNSUBSCRIBABLE:
        raise NotFound("This unsubscribe link is not valid.")
    user = User.objects.filter(pk=user_id).first()
    organisation = Organisation.objects.filter(pk=org_id).first()
    if user is None or organisation is None:
        raise NotFound("This unsubscribe link is not valid.")
    return UnsubscribeTarget(user=user, organisation=organisation, kind=kind)


def unsubscribe(token: str) -> NotificationSettings:
    """Turn the kind a link names off for its person in its organisation (no sign-in: the signed link
    is the authority). Unsubscribing twice changes nothing the second time."""
    target = read_unsubscribe_token(token)
    field = KIND_SETTING[target.kind]
    with transaction.atomic():
        current = _locked_settings(target.user, target.organisation)
        if getattr(current, field):
            before = snapshot(current, SETTINGS_FIELDS)
            setattr(current, field, False)
            current.version += 1
            current.save()
            record(
                target.organisation, current, target.user, HistoryEntry.Action.UPDATED,
                diff(before, snapshot(current, SETTINGS_FIELDS)),
            )
    return current


# --- notification settings -------------------------------------------------------------------------

SETTINGS_FIELDS = ("checkin_reminders", "weekly_digest", "digest_weekday")
KIND_SETTING: dict[str, str] = {EmailKind.REMINDER: "checkin_reminders", EmailKind.DIGEST: "weekly_digest"}


def settings_for(user: User, organisation: Organisation) -> NotificationSettings:
    """The person's settings in the organisation (the defaults, unsaved, until they change them)."""
    found = NotificationSettings.objects.filter(user=user, organisation=organisation).first()
    return found or NotificationSettings(user=user, organisation=organisation)


def _locked_settings(user: User, organisation: Organisation) -> NotificationSettings:
    NotificationSettings.objects.get_or_create(user=user, organisation=organisation)
    return NotificationSettings.objects.select_for_update().get(user=user, organisation=organisation)


def my_settings(membership: Membership) -> NotificationSettings:
    return settings_for(membership.user, membership.organisation)


def update_settings(
    membership: Membership,
    *,
    checkin_reminders: Any = None,
    weekly_digest: Any = None,
    digest_weekday: Any = None,
    version: int | None = None,
) -> NotificationSettings:
    """Change the signed-in person's own settings (anyone in the organisation, stakeholders too).
    A field left None keeps its value; a stale version is refused (409); no change writes nothing."""
    user, organisation = membership.user, membership.organisation
    with transaction.atomic():
        current = _locked_settings(user, organisation)
        validate.check_version(current, version)
        before = snapshot(current, SETTINGS_FIELDS)
        if checkin_reminders is not None:
            current.checkin_reminders = _boolean(checkin_reminders, "checkin_reminders")
        if weekly_digest is not None:
            current.weekly_digest = _boolean(weekly_digest, "weekly_digest")
        if digest_weekday is not None:
            day = validate.whole(digest_weekday, "digest_weekday")
            if not 0 <= day <= 6:
                raise ValidationFailed("Choose a weekday from 0 (Monday) to 6 (Sunday).", field="digest_weekday")
            current.digest_weekday = day
        changes = diff(before, snapshot(current, SETTINGS_FIELDS))
        if changes:
            current.version += 1
            current.save()
            record(organisation, current, user, HistoryEntry.Action.UPDATED, changes)
    return current


def _boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "on", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "off", "no", ""):
        return False
    raise ValidationFailed("Give true or false.", field=field)


# --- follows ---------------------------------------------------------------------------------------


def follows_of(membership: Membership) -> QuerySet[Follow]:
    """What the signed-in person follows explicitly in this organisation."""
    return Follow.objects.filter(user=membership.user, organisation=membership.organisation).select_related(
        "product", "goal"
    )


def _target(membership: Membership, product_id: int | None, goal_id: int | None) -> tuple[Product | None, Goal | None]:
    if (product_id is None) == (goal_id is None):
        raise ValidationFailed("Follow either a product or a goal.", field="goal" if product_id is None else "product")
    if product_id is not None:
        return strategy.get_product(membership, product_id), None
    assert goal_id is not None
    return None, strategy.get_goal(membership, goal_id)


def follow(membership: Membership, *, product_id: int | None = None, goal_id: int | None = None) -> Follow:
    """Follow a product or a goal of the organisation (following it again changes nothing)."""
    product, goal = _target(membership, product_id, goal_id)
    lookup = {"user": membership.user, "organisation": membership.organisation, "product": product, "goal": goal}
    existing = Follow.objects.filter(**lookup).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            made = Follow.objects.create(**lookup)
            record(membership.organisation, made, membership.user, HistoryEntry.Action.CREATED,
                   {"follows": {"old": None, "new": str(product or goal)}})
            return made
    except IntegrityError:  # followed at the same moment from another tab
        return Follow.objects.get(**lookup)


def unfollow(membership: Membership, *, product_id: int | None = None, goal_id: int | None = None) -> bool:
    """Stop following; True when a follow was removed."""
    product, goal = _target(membership, product_id, goal_id)
    found = Follow.objects.filter(
        user=membership.user, organisation=membership.organisation, product=product, goal=goal
    ).first()
    if found is None:
        return False
    with transaction.atomic():
        record(membership.organisation, found, membership.user, HistoryEntry.Action.DELETED,
               {"follows": {"old": str(product or goal), "new": None}})
        found.delete()
    return True


def is_following(membership: Membership, *, product_id: int | None = None, goal_id: int | None = None) -> bool:
    qs = Follow.objects.filter(user_id=membership.user_id, organisation_id=membership.organisation_id)
    if product_id is not None:
        return qs.filter(product_id=product_id).exists()
    return goal_id is not None and qs.filter(goal_id=goal_id).exists()
