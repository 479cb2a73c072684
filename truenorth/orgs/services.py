"""Organisations, memberships and invitations: the tenant workflows used by views, API and CLI."""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import slugify

from truenorth.accounts.models import User, hash_token
from truenorth.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from truenorth.history.models import HistoryEntry
from truenorth.history.services import diff, record, snapshot
from truenorth.orgs.models import ROLE_RANK, Invitation, Membership, Organisation, Role

ORG_FIELDS = ("name", "slug")
# Settings changed after creation are recorded too (creation records only the fields above).
ORG_SETTINGS_FIELDS = (*ORG_FIELDS, "require_two_factor")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?$")
RESERVED_SLUGS = {"new", "switch", "api", "static", "admin", "accounts", "invite"}


# --- access -----------------------------------------------------------------------------------


def membership_for(user: User, slug: str) -> Membership:
    """The user's membership in the organisation, or NotFound (never reveal it exists)."""
    if not user.is_authenticated:
        raise NotFound()
    try:
        return Membership.objects.select_related("organisation").get(user=user, organisation__slug=slug)
    except Membership.DoesNotExist:
        raise NotFound() from None


def require_role(membership: Membership, minimum: str) -> None:
    if not membership.has_role(minimum):
        raise Forbidden(f"This needs the {minimum} role or higher; you are {membership.role}.")


def require_writer(membership: Membership) -> None:
    """Members and above write; stakeholders only read."""
    require_role(membership, Role.MEMBER)


def member_by_email(membership: Membership, email: str, field: str = "owner") -> User:
    """A person of the caller's organisation by e-mail address; an outsider is "no member"."""
    found = (
        Membership.objects.filter(
            organisation_id=membership.organisation_id, user__email__iexact=email.strip()
        )
        .select_related("user")
        .first()
    )
    if found is None:
        raise ValidationFailed(f"No member with e-mail {email} in this organisation.", field=field)
    return found.user


def memberships_of(user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user)
        .select_related("organisation")
        .order_by("organisation__name", "organisation_id")
    )


# --- organisations ----------------------------------------------------------------------------


def _validate_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Name is required.", field="name")
    if len(name) > 120:
        raise ValidationFailed("Name must be at most 120 characters.", field="name")
    return name


def _validate_slug(slug: str) -> str:
    slug = (slug or "").strip().lower()
    if not SLUG_RE.match(slug):
        raise ValidationFailed(
            "Use 1 to 60 lower-case letters, digits and hyphens, not starting or ending with a hyphen.",
            field="slug",
        )
    if slug in RESERVED_SLUGS:
        raise ValidationFailed(f"'{slug}' is reserved; choose another.", field="slug")
    return slug


def _unique_slug(base: str) -> str:
    # slugify keeps underscores, which an address typed in may not have: same rule for both.
    base = slugify(base).replace("_", "-")[:50].strip("-") or "org"
    if base in RESERVED_SLUGS:
        base = f"{base}-org"
    candidate, n = base, 2
    while Organisation.objects.filter(slug=candidate).exists():
        candidate, n = f"{base}-{n}", n + 1
    return candidate


@transaction.atomic
def create_organisation(owner: User, name: str, slug: str | None = None) -> Organisation:
    """Create an organisation with owner as its first owner."""
    name = _validate_name(name)
    slug = _validate_slug(slug) if slug else _unique_slug(name)
    if Organisation.objects.filter(slug=slug).exists():
        raise Conflict(f"The address '{slug}' is taken.", field="slug")
    try:
        with transaction.atomic():
            org = Organisation.objects.create(name=name, slug=slug)
    except IntegrityError:
        raise Conflict(f"The address '{slug}' is taken.", field="slug") from None
    membership = Membership.objects.create(organisation=org, user=owner, role=Role.OWNER)
    record(org, org, owner, HistoryEntry.Action.CREATED, diff({}, snapshot(org, ORG_FIELDS)))
    record(org, membership, owner, HistoryEntry.Action.CREATED, {"role": {"old": None, "new": Role.OWNER}})
    return org


@transaction.atomic
def update_organisation(
    membership: Membership,
    actor: User,
    *,
    name: str | None = None,
    slug: str | None = None,
    require_two_factor: bool | None = None,
    version: int | None = None,
) -> Organisation:
    """Rename an organisation, change its address or its two-factor policy (None: unchanged); a stale
    version is refused (409)."""
    require_role(membership, Role.ADMIN)
    org = Organisation.objects.select_for_update().get(pk=membership.organisation_id)
    if version is not None and version != org.version:
        raise Conflict(
            "Someone else changed this organisation since you loaded it; reload and try again.",
            field="version",
        )
    before = snapshot(org, ORG_SETTINGS_FIELDS)
    if name is not None:
        org.name = _validate_name(name)
    if require_two_factor is not None:
        org.require_two_factor = bool(require_two_factor)
    if slug is not None and slug != org.slug:
        new_slug = _validate_slug(slug)
        if Organisation.objects.filter(slug=new_slug).exclude(pk=org.pk).exists():
            raise Conflict(f"The address '{new_slug}' is taken.", field="slug")
        org.slug = new_slug
    changes = diff(before, snapshot(org, ORG_SETTINGS_FIELDS))
    if changes:
        org.version += 1
        org.save()
        record(org, org, actor, HistoryEntry.Action.UPDATED, changes)
    membership.organisation = org
    return org


# --- members ----------------------------------------------------------------------------------


def members_of(membership: Membership) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(organisation_id=membership.organisation_id)
        .select_related("user")
        .order_by("user__email")
    )


def get_member(membership: Membership, member_id: int) -> Membership:
    try:
        return Membership.objects.select_related("user").get(
            pk=member_id, organisation_id=membership.organisation_id
        )
    except Membership.DoesNotExist:
        raise NotFound() from None


def _validate_role(role: str) -> str:
    if role not in ROLE_RANK:
        raise ValidationFailed(f"Unknown role '{role}'; choose one of {', '.join(ROLE_RANK)}.", field="role")
    return role


def _owner_count(org_id: int) -> int:
    return Membership.objects.filter(organisation_id=org_id, role=Role.OWNER).count()


def _check_can_assign(actor: Membership, target_role: str, current_role: str | None = None) -> None:
    """Admins manage members and stakeholders; only owners grant or take away owner/admin."""
    require_role(actor, Role.ADMIN)
    touches_high = ROLE_RANK[target_role] >= ROLE_RANK[Role.ADMIN] or (
        current_role is not None and ROLE_RANK[current_role] >= ROLE_RANK[Role.ADMIN]
    )
    if touches_high and actor.role != Role.OWNER:
        raise Forbidden("Only an owner can grant or change the owner and admin roles.")


@transaction.atomic
def change_role(actor_membership: Membership, actor: User, member_id: int, role: str) -> Membership:
    role = _validate_role(role)
    target = get_member(actor_membership, member_id)
    _check_can_assign(actor_membership, role, target.role)
    if target.role == role:
        return target
    if target.role == Role.OWNER and _owner_count(target.organisation_id) <= 1:
        raise Conflict(
            "An organisation needs at least one owner; make someone else owner first.", field="role"
        )
    old = target.role
    target.role = role
    target.save(update_fields=["role"])
    record(
        target.organisation, target, actor, HistoryEntry.Action.UPDATED, {"role": {"old": old, "new": role}}
    )
    return target


@transaction.atomic
def remove_member(actor_membership: Membership, actor: User, member_id: int) -> None:
    target = get_member(actor_membership, member_id)
    if target.user_id != actor.pk:  # leaving yourself needs no admin rights
        _check_can_assign(actor_membership, target.role, target.role)
    if target.role == Role.OWNER and _owner_count(target.organisation_id) <= 1:
        raise Conflict("The last owner cannot leave; make someone else owner first.", field="member")
    record(
        target.organisation,
        target,
        actor,
        HistoryEntry.Action.DELETED,
        {"role": {"old": target.role, "new": None}},
    )
    target.delete()


# --- invitations ------------------------------------------------------------------------------


def invitations_of(membership: Membership) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        organisation_id=membership.organisation_id,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).select_related("invited_by")


def _validate_email(email: str) -> str:
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed("Enter a valid e-mail address.", field="email") from None
    return email


@transaction.atomic
def invite(membership: Membership, actor: User, email: str, role: str) -> tuple[Invitation, str]:
    """Create an invitation and e-mail its link; returns the invitation and the link."""
    email = _validate_email(email)
    role = _validate_role(role)
    _check_can_assign(membership, role)
    org = membership.organisation
    if Membership.objects.filter(organisation=org, user__email=email).exists():
        raise Conflict(f"{email} is already a member.", field="email")
    raw = Invitation.generate_token()
    invitation = Invitation.objects.create(
        organisation=org,
        email=email,
        role=role,
        token_hash=hash_token(raw),
        invited_by=actor,
        expires_at=timezone.now() + dt.timedelta(days=settings.INVITATION_VALID_DAYS),
    )
    link = f"{settings.SITE_URL}/invite/{raw}/"
    send_mail(
        subject=f"You are invited to {org.name} on TrueNorth",
        message=(
            f"{actor.display_name} invited you to join {org.name} on TrueNorth as {role}.\n\n"
            f"Accept the invitation: {link}\n\n"
            f"The link works for {settings.INVITATION_VALID_DAYS} days."
        ),
        from_email=None,
        recipient_list=[email],
    )
    record(
        org,
        invitation,
        actor,
        HistoryEntry.Action.CREATED,
        {"email": {"old": None, "new": email}, "role": {"old": None, "new": role}},
    )
    return invitation, link


@transaction.atomic
def revoke_invitation(membership: Membership, actor: User, invitation_id: int) -> None:
    require_role(membership, Role.ADMIN)
    try:
        invitation = Invitation.objects.get(pk=invitation_id, organisation_id=membership.organisation_id)
    except Invitation.DoesNotExist:
        raise NotFound() from None
    if invitation.revoked_at is None and invitation.accepted_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        record(
            invitation.organisation,
            invitation,
            actor,
            HistoryEntry.Action.ARCHIVED,
            {"revoked": {"old": False, "new": True}},
        )


def pending_invitation(raw_token: str) -> Invitation:
    try:
        invitation = Invitation.objects.select_related("organisation", "invited_by").get(
            token_hash=hash_token(raw_token)
        )
    except Invitation.DoesNotExist:
        raise NotFound("This invitation link is not valid.") from None
    if not invitation.is_pending:
        raise NotFound("This invitation has expired, was revoked or was already used.")
    return invitation


@transaction.atomic
def accept_invitation(user: User, raw_token: str) -> Membership:
    invitation = pending_invitation(raw_token)
    existing = Membership.objects.filter(organisation=invitation.organisation, user=user).first()
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    if existing:
        return existing
    membership = Membership.objects.create(
        organisation=invitation.organisation, user=user, role=invitation.role
    )
    record(
        invitation.organisation,
        membership,
        user,
        HistoryEntry.Action.CREATED,
        {"role": {"old": None, "new": membership.role}},
    )
    return membership
