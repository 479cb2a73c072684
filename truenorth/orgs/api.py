"""API: organisations, members and invitations."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from truenorth.accounts.models import User
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema
from truenorth.orgs import services
from truenorth.orgs.models import Invitation, Membership, Organisation, Role

router = Router(tags=["organisations"])


class OrganisationOut(Schema):
    slug: str
    name: str
    created_at: dt.datetime
    version: int
    require_two_factor: bool = Field(
        description="Members signing in with a password must use two-factor sign-in; their API tokens "
        "are refused (403) on this organisation's endpoints until they set it up."
    )
    role: str | None = Field(None, description="Your role in this organisation.")


class OrganisationIn(StrictSchema):
    name: str = Field(min_length=1, max_length=120)
    slug: str | None = Field(None, max_length=60, description="Address; derived from the name if omitted.")


class OrganisationPatch(StrictSchema):
    name: str | None = Field(None, min_length=1, max_length=120)
    slug: str | None = Field(None, max_length=60)
    require_two_factor: bool | None = Field(None, description="Admins only: require two-factor sign-in.")
    version: int = Field(description="Required: the version you read; a stale one is refused with 409.")


class MemberOut(Schema):
    id: int
    email: str
    name: str
    role: str
    joined_at: dt.datetime


class MemberPatch(StrictSchema):
    role: Role


class InvitationIn(StrictSchema):
    email: str = Field(max_length=254)
    role: Role = Role.MEMBER


class InvitationOut(Schema):
    id: int
    email: str
    role: str
    created_at: dt.datetime
    expires_at: dt.datetime


class InvitationCreatedOut(InvitationOut):
    link: str = Field(description="The invitation link, also e-mailed to the invitee.")


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _org_out(org: Organisation, role: str | None) -> dict[str, object]:
    return {
        "slug": org.slug,
        "name": org.name,
        "created_at": org.created_at,
        "version": org.version,
        "require_two_factor": org.require_two_factor,
        "role": role,
    }


def _member_out(m: Membership) -> dict[str, object]:
    return {"id": m.pk, "email": m.user.email, "name": m.user.name, "role": m.role, "joined_at": m.joined_at}


@router.get("", response={200: list[OrganisationOut], **READ_ERRORS}, summary="List my organisations")
def list_organisations(request: HttpRequest) -> list[dict[str, object]]:
    return [_org_out(m.organisation, m.role) for m in services.memberships_of(_user(request))]


@router.post("", response={201: OrganisationOut, **ERRORS}, summary="Create an organisation")
def create_organisation(request: HttpRequest, payload: OrganisationIn) -> Status[dict[str, object]]:
    org = services.create_organisation(_user(request), payload.name, payload.slug)
    return Status(201, _org_out(org, Role.OWNER))


@router.get("/{slug}", response={200: OrganisationOut, **READ_ERRORS}, summary="Get an organisation")
def get_organisation(request: HttpRequest, slug: str) -> dict[str, object]:
    m = services.membership_for(_user(request), slug)
    return _org_out(m.organisation, m.role)


@router.patch(
    "/{slug}", response={200: OrganisationOut, **ERRORS}, summary="Change an organisation's settings"
)
def update_organisation(request: HttpRequest, slug: str, payload: OrganisationPatch) -> dict[str, object]:
    m = services.membership_for(_user(request), slug)
    org = services.update_organisation(
        m,
        _user(request),
        name=payload.name,
        slug=payload.slug,
        require_two_factor=payload.require_two_factor,
        version=payload.version,
    )
    return _org_out(org, m.role)


@router.get("/{slug}/members", response={200: list[MemberOut], **READ_ERRORS}, summary="List members")
def list_members(request: HttpRequest, slug: str) -> list[dict[str, object]]:
    m = services.membership_for(_user(request), slug)
    return [_member_out(x) for x in services.members_of(m)]


@router.patch(
    "/{slug}/members/{member_id}", response={200: MemberOut, **ERRORS}, summary="Change a member's role"
)
def change_role(
    request: HttpRequest, slug: str, member_id: ObjectId, payload: MemberPatch
) -> dict[str, object]:
    m = services.membership_for(_user(request), slug)
    return _member_out(services.change_role(m, _user(request), member_id, payload.role))


@router.delete("/{slug}/members/{member_id}", response={204: None, **ERRORS}, summary="Remove a member")
def remove_member(request: HttpRequest, slug: str, member_id: ObjectId) -> Status[None]:
    m = services.membership_for(_user(request), slug)
    services.remove_member(m, _user(request), member_id)
    return Status(204, None)


@router.get(
    "/{slug}/invitations", response={200: list[InvitationOut], **ERRORS}, summary="List pending invitations"
)
def list_invitations(request: HttpRequest, slug: str) -> list[Invitation]:
    m = services.membership_for(_user(request), slug)
    services.require_role(m, Role.ADMIN)
    return list(services.invitations_of(m))


@router.post(
    "/{slug}/invitations", response={201: InvitationCreatedOut, **ERRORS}, summary="Invite by e-mail"
)
def invite(request: HttpRequest, slug: str, payload: InvitationIn) -> Status[dict[str, object]]:
    m = services.membership_for(_user(request), slug)
    invitation, link = services.invite(m, _user(request), payload.email, payload.role)
    return Status(201, {**InvitationOut.model_validate(invitation).model_dump(), "link": link})


@router.delete(
    "/{slug}/invitations/{invitation_id}", response={204: None, **ERRORS}, summary="Revoke an invitation"
)
def revoke_invitation(request: HttpRequest, slug: str, invitation_id: ObjectId) -> Status[None]:
    m = services.membership_for(_user(request), slug)
    services.revoke_invitation(m, _user(request), invitation_id)
    return Status(204, None)
