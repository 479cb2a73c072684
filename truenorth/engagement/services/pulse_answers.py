"""Answering a pulse: through a one-time link (no account) or signed in (a member, at most once per
round). Both spend the same single-use invitation: one conditional UPDATE (`used_at` set only when
unused and unexpired) in the transaction that stores the answer, which carries no link to the
invitation or the person, and only its day (no time of day). The rules of pulses are in
services/pulses.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.core.validate import text, whole
from truenorth.engagement.models import (
    Department,
    Pulse,
    PulseInvitation,
    PulseResponse,
    PulseRound,
    Stakeholder,
)
from truenorth.engagement.services import throttle
from truenorth.engagement.services.pulses import (
    LinkGone,
    get_round,
    is_open,
    new_invitation,
    score_answer,
    token_hash,
)
from truenorth.orgs.models import Membership
from truenorth.strategy.models import Goal, Team

MAX_ANSWER = 2000
# Answer links: at most this many page loads and submissions per address and window.
LINK_RATE_LIMIT = 30
LINK_RATE_WINDOW = 600


# --- answering -------------------------------------------------------------------------------------


def throttle_link(address: str) -> None:
    """Answer links are rate-limited per client address (429 beyond LINK_RATE_LIMIT per window)."""
    throttle.hit("pulse-link", address or "unknown", limit=LINK_RATE_LIMIT, window=LINK_RATE_WINDOW)


def invitation_for(raw: str, now: dt.datetime | None = None) -> PulseInvitation:
    """The invitation a link carries, if it can still be answered: NotFound for an unknown link
    (never saying whether it ever existed), LinkGone (410) for a used one or a closed round."""
    now = now or timezone.now()
    if not raw or len(raw) > 200:
        raise NotFound("This link is not valid.")
    invitation = (
        PulseInvitation.objects.select_related(
            "round", "round__pulse", "round__pulse__product", "stakeholder"
        )
        .filter(token_hash=token_hash(raw))
        .first()
    )
    if invitation is None:
        raise NotFound("This link is not valid. Check that you copied the whole link from the e-mail.")
    usable(invitation, now)
    return invitation


def usable(invitation: PulseInvitation, now: dt.datetime | None = None) -> None:
    """Raise LinkGone when the invitation was used or its round closed."""
    now = now or timezone.now()
    if invitation.used_at is not None:
        raise LinkGone("This link has already been used: each link answers once. Thank you for answering.")
    if invitation.expires_at <= now or invitation.round.closed_at is not None:
        raise LinkGone(
            f"This pulse closed on {invitation.expires_at:%d %B %Y}; answers are no longer collected."
        )


def group_choices(organisation_id: int) -> list[str]:
    """Groups a respondent may pick: the organisation's teams and its stakeholders' departments."""
    teams = list(
        Team.objects.filter(organisation_id=organisation_id).order_by("name").values_list("name", flat=True)
    )
    used = set(
        Stakeholder.objects.filter(organisation_id=organisation_id, archived_at__isnull=True).values_list(
            "department", flat=True
        )
    )
    labels = [str(label) for value, label in Department.choices if value in used and str(label) not in teams]
    return teams + labels


def default_group(invitation: PulseInvitation) -> str:
    if invitation.stakeholder is not None:
        return str(Department(invitation.stakeholder.department).label)
    return ""


def goal_choices(pulse: Pulse) -> QuerySet[Goal]:
    return Goal.objects.filter(
        organisation_id=pulse.organisation_id, product_id=pulse.product_id, archived_at__isnull=True
    ).order_by("position", "id")


@dataclass(frozen=True)
class Answer:
    own_words: str
    clarity: int
    commitment: int
    contribution: str
    contribution_goal: Goal | None
    group: str


def _scale(value: Any, field: str) -> int:
    if value is None or value == "":
        raise ValidationFailed("Pick a number from 1 to 5.", field=field)
    number = whole(value, field)
    if not 1 <= number <= 5:
        raise ValidationFailed("Pick a number from 1 to 5.", field=field)
    return number


def clean_answer(pulse: Pulse, values: dict[str, Any]) -> Answer:
    errors: dict[str, str] = {}

    def attempt(field: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except ValidationFailed as exc:
            errors[field] = exc.message
            return None

    own_words = attempt(
        "own_words", lambda: text(values.get("own_words"), "own_words", max_length=MAX_ANSWER)
    )
    if own_words == "":
        errors["own_words"] = "Say in a sentence what you think the goal is (a guess is fine)."
    clarity = attempt("clarity", lambda: _scale(values.get("clarity"), "clarity"))
    commitment = attempt("commitment", lambda: _scale(values.get("commitment"), "commitment"))
    contribution = attempt(
        "contribution", lambda: text(values.get("contribution"), "contribution", max_length=MAX_ANSWER)
    )
    goal: Goal | None = None
    goal_id = values.get("contribution_goal_id")
    if goal_id not in (None, ""):
        try:
            goal = goal_choices(pulse).filter(pk=whole(goal_id, "contribution_goal")).first()
        except ValidationFailed:
            goal = None
        if goal is None:
            errors["contribution_goal"] = "Pick one of the product's goals, or none."
    group = attempt("group", lambda: text(values.get("group"), "group", max_length=120)) or ""
    if group and group not in group_choices(pulse.organisation_id):
        errors["group"] = "Pick a team or department from the list, or none."
    if errors:
        first = next(iter(errors))
        raise ValidationFailed(errors[first], field=first, errors=errors)
    return Answer(own_words, clarity, commitment, contribution or "", goal, group)


def _use_and_store(
    invitation_id: int, answer: Answer, statement: str, round_id: int, now: dt.datetime
) -> PulseResponse:
    """In one transaction: spend the invitation (one conditional UPDATE) and store the anonymous answer."""
    similarity = score_answer(answer.own_words, statement)
    with transaction.atomic():
        spent = PulseInvitation.objects.filter(
            pk=invitation_id, used_at__isnull=True, expires_at__gt=now
        ).update(used_at=now)
        if spent != 1:
            invitation = PulseInvitation.objects.select_related("round").get(pk=invitation_id)
            usable(invitation, now)
            raise LinkGone("This link can no longer be used.")
        return PulseResponse.objects.create(
            round_id=round_id,
            group=answer.group,
            own_words=answer.own_words,
            clarity=answer.clarity,
            commitment=answer.commitment,
            contribution=answer.contribution,
            contribution_goal=answer.contribution_goal,
            similarity=similarity,
            submitted_at=now.replace(hour=0, minute=0, second=0, microsecond=0),
        )


def submit_answer(raw: str, values: dict[str, Any], *, now: dt.datetime | None = None) -> PulseResponse:
    """Answer through a link: once, only to the link's own round, only while it is open."""
    now = now or timezone.now()
    invitation = invitation_for(raw, now)
    rnd = invitation.round
    answer = clean_answer(rnd.pulse, values)
    return _use_and_store(invitation.pk, answer, rnd.goal_statement, rnd.pk, now)


def in_app_invitation(
    membership: Membership, round_id: int, now: dt.datetime | None = None, *, pulse_id: int | None = None
) -> PulseInvitation:
    """A signed-in member's invitation to an open round they are asked in (created on first use)."""
    now = now or timezone.now()
    rnd = get_round(membership, round_id, pulse_id)
    if not is_open(rnd, now):
        raise LinkGone(f"Round {rnd.number} is closed; answers are no longer collected.")
    user = membership.user
    invitation = (
        PulseInvitation.objects.filter(round=rnd, user=user).select_related("round", "stakeholder").first()
    )
    if invitation is None:
        pulse = rnd.pulse
        if not pulse.all_members and not pulse.members.filter(pk=user.pk).exists():
            raise NotFound("You are not asked in this pulse.")
        email_clash = (
            PulseInvitation.objects.filter(round=rnd, email__iexact=user.email)
            .select_related("round", "stakeholder")
            .first()
        )
        if email_clash is not None:
            return email_clash
        try:
            with transaction.atomic():
                invitation, _ = new_invitation(rnd, None, user)
        except IntegrityError:  # the same member in another tab
            invitation = PulseInvitation.objects.select_related("round", "stakeholder").get(
                round=rnd, user=user
            )
    return invitation


def submit_in_app(
    membership: Membership, round_id: int, values: dict[str, Any], *, now: dt.datetime | None = None
) -> PulseResponse:
    """Answer as a signed-in member: at most once per round (the same single-use invitation)."""
    now = now or timezone.now()
    invitation = in_app_invitation(membership, round_id, now)
    usable(invitation, now)
    rnd = invitation.round
    pulse = Pulse.objects.select_related("product").get(pk=rnd.pulse_id)
    answer = clean_answer(pulse, values)
    return _use_and_store(invitation.pk, answer, rnd.goal_statement, rnd.pk, now)


def open_rounds_for(membership: Membership, now: dt.datetime | None = None) -> list[tuple[PulseRound, bool]]:
    """Open rounds of the organisation the member may answer, with whether they already did."""
    now = now or timezone.now()
    rounds = PulseRound.objects.filter(
        pulse__organisation_id=membership.organisation_id, closed_at__isnull=True, closes_at__gt=now
    ).select_related("pulse", "pulse__product")
    used = set(
        PulseInvitation.objects.filter(
            round__in=rounds, user=membership.user, used_at__isnull=False
        ).values_list("round_id", flat=True)
    )
    out = []
    for rnd in rounds.order_by("closes_at"):
        asked = rnd.pulse.all_members or rnd.pulse.members.filter(pk=membership.user_id).exists()
        if asked:
            out.append((rnd, rnd.pk in used))
    return out
