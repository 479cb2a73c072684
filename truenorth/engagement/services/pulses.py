"""Alignment pulses: every rule of the part lives here (views, API, CLI and jobs translate).

A pulse asks a product's audience (the organisation's members, all or chosen, and the product's
stakeholders with an e-mail address) four questions, round after round. Opening a round copies the
official goal statement (the product goal, else the vision) into it, creates one single-use
invitation per person (only the sha256 of its token is stored; the raw token only travels in the
e-mail) and queues the e-mails. Answers are anonymous: using an invitation is one conditional UPDATE
(`used_at` set only if unused and unexpired), and the answer is then stored without any link to the
invitation or the person, in the same transaction, with its day only (no time of day).

Results (engagement/services/pulse_results.py) hide every group, and the whole round, with fewer
answers than the pulse's `min_group_size`.

Public for other parts: `product_alignment`, `organisation_alignment` and `AlignmentSummary`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, QuerySet
from django.urls import reverse
from django.utils import timezone

from truenorth.accounts.models import User
from truenorth.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from truenorth.core.validate import check_version, text, whole
from truenorth.engagement import alignment
from truenorth.engagement.models import (
    Pulse,
    PulseInvitation,
    PulseResponse,
    PulseRound,
    Stakeholder,
)
from truenorth.engagement.similarity import lexical_similarity
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.orgs.models import Membership
from truenorth.orgs.services import require_writer
from truenorth.strategy.models import Product

PULSE_FIELDS = (
    "title",
    "product",
    "cadence_days",
    "open_days",
    "next_run_at",
    "active",
    "all_members",
    "include_stakeholders",
    "min_group_size",
)
MAX_CADENCE_DAYS = 366
MAX_OPEN_DAYS = 90


class LinkGone(DomainError):
    """A pulse link that was valid but can no longer be used (used, or its round closed)."""

    status = 410


# --- similarity ------------------------------------------------------------------------------------


def similarity_method() -> str:
    return str(getattr(settings, "TRUENORTH_SIMILARITY", "lexical"))


def similarity_scale() -> float:
    return alignment.SCALES.get(similarity_method(), alignment.SCALES["lexical"])


def score_answer(answer: str, statement: str) -> float:
    """Similarity 0..1 of an answer to the goal statement, by the configured method."""
    if similarity_method() == "semantic":
        from truenorth.engagement import semantic

        return semantic.similarity(answer, statement)
    return lexical_similarity(answer, statement)


# --- pulses ----------------------------------------------------------------------------------------


def pulses_of(membership: Membership, *, product_id: int | None = None) -> QuerySet[Pulse]:
    qs = Pulse.objects.filter(organisation_id=membership.organisation_id).select_related("product")
    if product_id is not None:
        qs = qs.filter(product_id=product_id)
    return qs.annotate(round_count=Count("rounds")).order_by("title", "id")


def get_pulse(membership: Membership, pulse_id: int) -> Pulse:
    try:
        return Pulse.objects.select_related("product").get(
            pk=pulse_id, organisation_id=membership.organisation_id
        )
    except (Pulse.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such pulse.") from None


def _product(membership: Membership, product_id: Any) -> Product:
    pid = whole(product_id, "product")
    product = Product.objects.filter(
        pk=pid, organisation_id=membership.organisation_id, archived_at__isnull=True
    ).first()
    if product is None:
        raise ValidationFailed("No such product in this organisation.", field="product")
    return product


def _members(membership: Membership, user_ids: Iterable[Any]) -> list[User]:
    ids = list(dict.fromkeys(whole(u, "members") for u in user_ids))
    users = list(
        User.objects.filter(pk__in=ids, memberships__organisation_id=membership.organisation_id).distinct()
    )
    if len(users) != len(ids):
        raise ValidationFailed("One of the chosen members is not in this organisation.", field="members")
    return users


def _bounded(value: Any, field: str, low: int, high: int) -> int:
    number = whole(value, field)
    if not low <= number <= high:
        raise ValidationFailed(f"Must be between {low} and {high} (got {number}).", field=field)
    return number


def default_min_group() -> int:
    return int(settings.TRUENORTH_PULSE_MIN_GROUP_SIZE)


def _min_group(value: Any) -> int:
    floor = int(settings.TRUENORTH_PULSE_MIN_GROUP_SIZE)
    number = whole(value, "min_group_size")
    if number < floor:
        raise ValidationFailed(
            f"At least {floor}: smaller groups could identify people (TRUENORTH_PULSE_MIN_GROUP_SIZE).",
            field="min_group_size",
        )
    if number > 1000:
        raise ValidationFailed("Must be at most 1000.", field="min_group_size")
    return number


def to_minute(when: dt.datetime) -> dt.datetime:
    """Schedules are kept to the minute (what a datetime-local field shows and sends back)."""
    return when.replace(second=0, microsecond=0)


def _when(value: Any, field: str) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValidationFailed("Enter a date and time such as 2027-03-31T09:00.", field=field) from None
    if not isinstance(value, dt.datetime):
        raise ValidationFailed("Enter a date and time.", field=field)
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    if not dt.datetime(1900, 1, 1, tzinfo=dt.UTC) <= value <= dt.datetime(2200, 12, 31, tzinfo=dt.UTC):
        raise ValidationFailed("Enter a date between 1900 and 2200.", field=field)
    return to_minute(value)


def _snapshot(pulse: Pulse) -> dict[str, Any]:
    data = snapshot(pulse, PULSE_FIELDS)
    data["members"] = sorted(u.email for u in pulse.members.all()) if pulse.pk else []
    return data


def _apply(membership: Membership, pulse: Pulse, values: dict[str, Any]) -> list[User] | None:
    """Validate and set the given fields; returns the chosen members when they were given."""
    if "title" in values:
        pulse.title = text(values["title"], "title", required=True, max_length=200)
    if "product_id" in values:
        pulse.product = _product(membership, values["product_id"])
    if "cadence_days" in values:
        pulse.cadence_days = _bounded(values["cadence_days"], "cadence_days", 0, MAX_CADENCE_DAYS)
    if "open_days" in values:
        pulse.open_days = _bounded(values["open_days"], "open_days", 1, MAX_OPEN_DAYS)
    if pulse.cadence_days and pulse.open_days > pulse.cadence_days:
        raise ValidationFailed(
            "A round must close before the next one opens: open days at most the cadence.", field="open_days"
        )
    if "next_run_at" in values:
        pulse.next_run_at = _when(values["next_run_at"], "next_run_at")
    for flag in ("active", "all_members", "include_stakeholders"):
        if flag in values and values[flag] is not None:
            setattr(pulse, flag, bool(values[flag]))
    if "min_group_size" in values and values["min_group_size"] is not None:
        pulse.min_group_size = _min_group(values["min_group_size"])
    chosen = _members(membership, values["member_ids"]) if values.get("member_ids") is not None else None
    if not pulse.all_members and chosen is not None and not chosen and not pulse.include_stakeholders:
        raise ValidationFailed("Choose who is asked: members or the product's stakeholders.", field="members")
    return chosen


EDITABLE = (
    "title",
    "product_id",
    "cadence_days",
    "open_days",
    "next_run_at",
    "active",
    "all_members",
    "member_ids",
    "include_stakeholders",
    "min_group_size",
)


def _only_editable(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValidationFailed(f"Unknown field {sorted(unknown)[0]}.", field=sorted(unknown)[0])
    return values


@transaction.atomic
def create_pulse(
    membership: Membership, actor: User, *, now: dt.datetime | None = None, **values: Any
) -> Pulse:
    """A new pulse; its first round is due at `next_run_at` (default: now, for the periodic task)."""
    require_writer(membership)
    values = _only_editable(values)
    if "product_id" not in values:
        raise ValidationFailed("Product is required.", field="product")
    pulse = Pulse(organisation_id=membership.organisation_id, created_by=actor)
    values.setdefault("title", "")
    chosen = _apply(membership, pulse, values)
    if "next_run_at" not in values:
        pulse.next_run_at = to_minute(now or timezone.now())
    if now is not None:
        pulse.created_at = now
    pulse.save()
    if chosen is not None:
        pulse.members.set(chosen)
    record(membership.organisation, pulse, actor, HistoryEntry.Action.CREATED, diff({}, _snapshot(pulse)))
    return pulse


@transaction.atomic
def update_pulse(
    membership: Membership, actor: User, pulse_id: int, *, version: int | None = None, **values: Any
) -> Pulse:
    """Change the given fields; a stale version is 409; an unchanged save writes nothing."""
    require_writer(membership)
    get_pulse(membership, pulse_id)
    pulse = Pulse.objects.select_for_update().select_related("product").get(pk=pulse_id)
    check_version(pulse, version)
    values = _only_editable(values)
    before = _snapshot(pulse)
    chosen = _apply(membership, pulse, values)
    after = _snapshot(pulse)
    if chosen is not None:
        after["members"] = sorted(u.email for u in chosen)
    changes = diff(before, after)
    if changes:
        pulse.version += 1
        pulse.save()
        if chosen is not None:
            pulse.members.set(chosen)
        record(membership.organisation, pulse, actor, HistoryEntry.Action.UPDATED, changes)
    return pulse


@transaction.atomic
def delete_pulse(membership: Membership, actor: User, pulse_id: int, *, version: int | None = None) -> None:
    """Delete a pulse with its rounds and answers (history keeps that it existed)."""
    require_writer(membership)
    pulse = get_pulse(membership, pulse_id)
    check_version(pulse, version)
    record(membership.organisation, pulse, actor, HistoryEntry.Action.DELETED, diff(_snapshot(pulse), {}))
    pulse.delete()


# --- audience and rounds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    email: str
    user: User | None
    stakeholder: Stakeholder | None


def audience(pulse: Pulse) -> list[Recipient]:
    """Who a new round asks: members (all, or the chosen) and the product's stakeholders with an
    e-mail address; one invitation per address (a stakeholder who is also a member is asked once)."""
    by_email: dict[str, Recipient] = {}
    if pulse.all_members:
        users = [
            m.user
            for m in Membership.objects.filter(organisation_id=pulse.organisation_id).select_related("user")
        ]
    else:
        users = list(pulse.members.filter(memberships__organisation_id=pulse.organisation_id).distinct())
    for user in sorted(users, key=lambda u: u.pk):
        if user.email and user.is_active:
            by_email.setdefault(user.email.lower(), Recipient(user.email, user, None))
    if pulse.include_stakeholders:
        people = Stakeholder.objects.filter(
            organisation_id=pulse.organisation_id, products=pulse.product_id, archived_at__isnull=True
        ).exclude(email="")
        for person in people.order_by("id"):
            key = person.email.lower()
            known = by_email.get(key)
            by_email[key] = Recipient(person.email, known.user if known else None, person)
    return list(by_email.values())


def goal_statement(product: Product) -> str:
    """The official statement a round asks about: the product goal, else the vision."""
    return (product.product_goal or "").strip() or (product.vision or "").strip()


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def answer_url(raw: str) -> str:
    return f"{settings.SITE_URL}{reverse('engagement:pulse-answer', args=[raw])}"


def is_open(rnd: PulseRound, now: dt.datetime | None = None) -> bool:
    return rnd.closed_at is None and rnd.closes_at > (now or timezone.now())


def new_invitation(
    rnd: PulseRound, recipient: Recipient | None, user: User | None = None
) -> tuple[PulseInvitation, str]:
    raw = secrets.token_urlsafe(32)
    invitation = PulseInvitation.objects.create(
        round=rnd,
        token_hash=token_hash(raw),
        user=recipient.user if recipient else user,
        stakeholder=recipient.stakeholder if recipient else None,
        email=recipient.email if recipient else "",
        created_at=rnd.opened_at,
        expires_at=rnd.closes_at,
    )
    return invitation, raw


def _mail(pulse: Pulse, rnd: PulseRound, invitation: PulseInvitation, raw: str) -> None:
    from truenorth.engagement.services.mail import queue_email

    closes = rnd.closes_at.strftime("%A %d %B %Y, %H:%M UTC")
    link = answer_url(raw)
    body = (
        f"Hello,\n\n{pulse.organisation.name} asks four short questions about where {pulse.product.name} "
        f"is heading (about two minutes; answers are anonymous and shown only in groups of "
        f"{pulse.min_group_size} or more).\n\nAnswer here (this link works once, until {closes}):\n{link}\n\n"
        f"Please do not forward this e-mail: the link is yours alone.\n"
    )
    queue_email(
        pulse.organisation,
        to=invitation.email,
        subject=f"{pulse.title}: four questions about {pulse.product.name}",
        text=body,
        kind="pulse",
        dedupe_key=f"pulse-invitation-{invitation.pk}",
        user=invitation.user,
        now=rnd.opened_at,
    )


@transaction.atomic
def open_round(
    pulse: Pulse, *, now: dt.datetime | None = None, send: bool = True, actor: User | None = None
) -> tuple[PulseRound, list[tuple[PulseInvitation, str]]]:
    """Open the pulse's next round now: snapshot the goal statement, invite the audience and queue
    their e-mails (send=False: no e-mail, the demo's raw tokens are returned and forgotten).
    Refused while a round of the pulse is still open, or when the product has no statement."""
    now = now or timezone.now()
    pulse = Pulse.objects.select_for_update().select_related("product", "organisation").get(pk=pulse.pk)
    statement = goal_statement(pulse.product)
    if not statement:
        raise ValidationFailed(
            f"“{pulse.product.name}” has neither a product goal nor a vision to ask about; write one first.",
            field="product",
        )
    for previous in pulse.rounds.filter(closed_at__isnull=True):
        if previous.closes_at > now:
            raise Conflict(
                f"Round {previous.number} is still open until {previous.closes_at:%Y-%m-%d %H:%M}."
            )
    number = (pulse.rounds.aggregate(n=Max("number"))["n"] or 0) + 1
    try:
        with transaction.atomic():
            rnd = PulseRound.objects.create(
                pulse=pulse,
                number=number,
                goal_statement=statement,
                opened_at=now,
                closes_at=now + dt.timedelta(days=pulse.open_days),
            )
    except IntegrityError:
        raise Conflict("Another round of this pulse was opened at the same time.") from None
    invitations = [new_invitation(rnd, recipient) for recipient in audience(pulse)]
    pulse.next_run_at = to_minute(now + dt.timedelta(days=pulse.cadence_days)) if pulse.cadence_days else None
    pulse.save(update_fields=["next_run_at"])
    if send:
        for invitation, raw in invitations:
            if invitation.email:
                _mail(pulse, rnd, invitation, raw)
    record(
        pulse.organisation,
        rnd,
        actor,
        HistoryEntry.Action.CREATED,
        {"opened": {"old": None, "new": f"round {number}, {len(invitations)} invited"}},
    )
    return rnd, invitations


def open_round_now(membership: Membership, actor: User, pulse_id: int) -> tuple[PulseRound, int]:
    """A writer opens the next round at once (the API and pages run this on the worker)."""
    require_writer(membership)
    pulse = get_pulse(membership, pulse_id)
    rnd, invitations = open_round(pulse, actor=actor)
    return rnd, len(invitations)


def check_can_open(membership: Membership, pulse_id: int, now: dt.datetime | None = None) -> Pulse:
    """The checks of open_round_now, before a job is queued (403/404/409/422 at once)."""
    require_writer(membership)
    pulse = get_pulse(membership, pulse_id)
    if not goal_statement(pulse.product):
        raise ValidationFailed(
            f"“{pulse.product.name}” has neither a product goal nor a vision to ask about; write one first.",
            field="product",
        )
    current = pulse.rounds.filter(closed_at__isnull=True, closes_at__gt=now or timezone.now()).first()
    if current is not None:
        raise Conflict(f"Round {current.number} is still open until {current.closes_at:%Y-%m-%d %H:%M}.")
    return pulse


def due_pulses(now: dt.datetime | None = None, pulse_id: int | None = None) -> QuerySet[Pulse]:
    qs = Pulse.objects.filter(active=True, next_run_at__lte=now or timezone.now())
    if pulse_id is not None:
        qs = qs.filter(pk=pulse_id)
    return qs.order_by("next_run_at", "id")


def open_due_rounds(
    now: dt.datetime | None = None,
    *,
    pulse_id: int | None = None,
    progress: Callable[[int, int, Pulse], None] | None = None,
) -> list[PulseRound]:
    """Open a round of every due, active pulse (all organisations); a pulse that cannot open now
    (round still open, no statement) is skipped and tried again later."""
    now = now or timezone.now()
    close_expired_rounds(now)
    pulses = list(due_pulses(now, pulse_id))
    opened: list[PulseRound] = []
    for i, pulse in enumerate(pulses, start=1):
        try:
            rnd, _ = open_round(pulse, now=now)
            opened.append(rnd)
        except (Conflict, ValidationFailed):
            pass
        if progress is not None:
            progress(i, len(pulses), pulse)
    return opened


def close_expired_rounds(now: dt.datetime | None = None) -> int:
    """Mark the rounds whose time ran out as closed; returns how many."""
    now = now or timezone.now()
    closed = 0
    for rnd in PulseRound.objects.filter(closed_at__isnull=True, closes_at__lte=now).select_related(
        "pulse__product", "pulse__organisation"
    ):
        if PulseRound.objects.filter(pk=rnd.pk, closed_at__isnull=True).update(closed_at=rnd.closes_at):
            closed += 1
            announce_closed(rnd)
    return closed


def announce_closed(rnd: PulseRound) -> None:
    """The "pulse.closed" event for the organisation's webhooks: the round's figures (the index only
    when the round reached its minimum group size; never an answer)."""
    from truenorth.engagement.services import webhooks

    pulse = rnd.pulse
    fig = figures(rnd, pulse.min_group_size)
    payload = webhooks.event_payload(
        pulse.organisation,
        "pulse.closed",
        obj={"type": "pulse", "id": pulse.pk, "name": pulse.title or pulse.product.name},
        action="closed",
        data={
            "product": pulse.product.name,
            "round": rnd.number,
            "invited": fig.invited,
            "responses": fig.responses,
            "alignment_index": fig.components.index,
            "hidden": fig.hidden,
        },
    )
    webhooks.emit(pulse.organisation, "pulse.closed", payload)


@transaction.atomic
def close_round(
    membership: Membership,
    actor: User,
    round_id: int,
    *,
    pulse_id: int | None = None,
    now: dt.datetime | None = None,
) -> PulseRound:
    """Close an open round early: its unused links stop working at once."""
    require_writer(membership)
    now = now or timezone.now()
    rnd = get_round(membership, round_id, pulse_id)
    if not is_open(rnd, now):
        raise Conflict(f"Round {rnd.number} is already closed.")
    PulseRound.objects.filter(pk=rnd.pk).update(closed_at=now, closes_at=now)
    PulseInvitation.objects.filter(round=rnd, expires_at__gt=now).update(expires_at=now)
    rnd.refresh_from_db()
    record(
        membership.organisation,
        rnd,
        actor,
        HistoryEntry.Action.UPDATED,
        {"closed_at": {"old": None, "new": now.isoformat()}},
    )
    announce_closed(rnd)
    return rnd


def rounds_of(membership: Membership, pulse_id: int) -> QuerySet[PulseRound]:
    pulse = get_pulse(membership, pulse_id)
    return pulse.rounds.annotate(
        invited=Count("invitations", distinct=True), answered=Count("responses", distinct=True)
    ).order_by("number")


def get_round(membership: Membership, round_id: int, pulse_id: int | None = None) -> PulseRound:
    """A round of the caller's organisation (and of the given pulse, when one is given)."""
    qs = PulseRound.objects.select_related("pulse", "pulse__product")
    if pulse_id is not None:
        qs = qs.filter(pulse_id=pulse_id)
    try:
        return qs.get(pk=round_id, pulse__organisation_id=membership.organisation_id)
    except (PulseRound.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such round.") from None


# --- alignment summaries (public) ------------------------------------------------------------------


@dataclass
class AlignmentSummary:
    index: float | None
    clarity: float | None
    commitment: float | None
    similarity: float | None
    responses: int
    invited: int
    response_rate: float | None
    round_closed_at: dt.datetime | None
    previous_index: float | None
    hidden: bool


@dataclass(frozen=True)
class RoundFigures:
    """A round's headline figures; the component means and index are None when hidden."""

    round: PulseRound
    invited: int
    responses: int
    hidden: bool
    components: alignment.Components

    @property
    def response_rate(self) -> float | None:
        return self.responses / self.invited if self.invited else None


def figures(rnd: PulseRound, min_group_size: int, invited: int | None = None) -> RoundFigures:
    rows = list(rnd.responses.values_list("clarity", "commitment", "similarity"))
    if invited is None:
        invited = rnd.invitations.count()
    return _figures_of(rnd, rows, invited, min_group_size)


def _figures_of(
    rnd: PulseRound, rows: list[tuple[int, int, float]], invited: int, min_group_size: int
) -> RoundFigures:
    hidden = len(rows) < min_group_size
    parts = alignment.components(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], scale=similarity_scale()
    )
    if hidden:
        parts = alignment.Components(None, None, None, None)
    return RoundFigures(rnd, invited, len(rows), hidden, parts)


def _closed_at(rnd: PulseRound) -> dt.datetime | None:
    return rnd.closed_at or (rnd.closes_at if rnd.closes_at <= timezone.now() else None)


def _summaries_by_product(rounds: QuerySet[PulseRound]) -> dict[int, AlignmentSummary]:
    """For each product among `rounds`: its latest round with answers (across its pulses) and the
    previous answered round of the same pulse, summarised. Three queries, whatever the number of
    products, pulses and rounds."""
    answered = (
        rounds.annotate(answered=Count("responses"))
        .filter(answered__gt=0)
        .select_related("pulse")
        .order_by("-opened_at", "-id")
    )
    chosen: dict[int, list[PulseRound | None]] = {}
    for rnd in answered:
        pair = chosen.setdefault(rnd.pulse.product_id, [rnd, None])
        latest = pair[0]
        if latest is not None and rnd is not latest and pair[1] is None and rnd.pulse_id == latest.pulse_id:
            pair[1] = rnd
    ids = [r.pk for pair in chosen.values() for r in pair if r is not None]
    rows: dict[int, list[tuple[int, int, float]]] = {i: [] for i in ids}
    for round_id, clarity, commitment, sim in PulseResponse.objects.filter(round_id__in=ids).values_list(
        "round_id", "clarity", "commitment", "similarity"
    ):
        rows[round_id].append((clarity, commitment, sim))
    invited = dict(
        PulseInvitation.objects.filter(round_id__in=ids)
        .values("round_id")
        .annotate(n=Count("id"))
        .values_list("round_id", "n")
    )

    def fig(rnd: PulseRound) -> RoundFigures:
        return _figures_of(rnd, rows[rnd.pk], invited.get(rnd.pk, 0), rnd.pulse.min_group_size)

    summaries = {}
    for product_id, (latest_round, previous_round) in chosen.items():
        assert latest_round is not None
        figs = fig(latest_round)
        parts = figs.components
        summaries[product_id] = AlignmentSummary(
            index=parts.index,
            clarity=parts.clarity,
            commitment=parts.commitment,
            similarity=parts.similarity,
            responses=figs.responses,
            invited=figs.invited,
            response_rate=figs.response_rate,
            round_closed_at=_closed_at(figs.round),
            previous_index=fig(previous_round).components.index if previous_round is not None else None,
            hidden=figs.hidden,
        )
    return summaries


NO_ANSWERS = AlignmentSummary(None, None, None, None, 0, 0, None, None, None, False)


def product_alignment(membership: Membership, product: Product) -> AlignmentSummary | None:
    """The product's latest round with answers (open or closed), across its pulses; None without a pulse.
    A round below its pulse's minimum group size is hidden (hidden=True, index None)."""
    if product.organisation_id != membership.organisation_id:
        return None
    if not Pulse.objects.filter(product=product).exists():
        return None
    rounds = PulseRound.objects.filter(pulse__product=product)
    return _summaries_by_product(rounds).get(product.pk, NO_ANSWERS)


def organisation_alignment(membership: Membership) -> AlignmentSummary | None:
    """Each product's latest summary combined, weighted by responses (hidden products only count in
    responses and invited); None when the organisation has no pulse."""
    product_ids = list(
        Pulse.objects.filter(organisation_id=membership.organisation_id)
        .values_list("product_id", flat=True)
        .distinct()
    )
    if not product_ids:
        return None
    by_product = _summaries_by_product(
        PulseRound.objects.filter(pulse__organisation_id=membership.organisation_id)
    )
    summaries = [by_product.get(pid, NO_ANSWERS) for pid in sorted(product_ids)]
    shown = [s for s in summaries if s.index is not None]

    def mean(attr: str) -> float | None:
        pairs = [(float(getattr(s, attr)), s.responses) for s in shown if getattr(s, attr) is not None]
        return alignment.weighted_mean(pairs)

    with_previous = [(s.previous_index, s.responses) for s in shown if s.previous_index is not None]
    responses = sum(s.responses for s in summaries)
    invited = sum(s.invited for s in summaries)
    index = mean("index")
    previous = alignment.weighted_mean([(float(p), n) for p, n in with_previous])
    closed = [s.round_closed_at for s in summaries if s.round_closed_at is not None]
    return AlignmentSummary(
        index=round(index, 1) if index is not None else None,
        clarity=mean("clarity"),
        commitment=mean("commitment"),
        similarity=mean("similarity"),
        responses=responses,
        invited=invited,
        response_rate=responses / invited if invited else None,
        round_closed_at=max(closed) if closed else None,
        previous_index=None if previous is None else round(previous, 1),
        hidden=responses > 0 and not shown,
    )
