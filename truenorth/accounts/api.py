"""API: the signed-in user and their personal API tokens."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from truenorth.accounts import services
from truenorth.accounts.models import APIToken, User
from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema

router = Router(tags=["account"])


class MeOut(Schema):
    id: int
    email: str
    name: str


class TokenOut(Schema):
    id: int
    name: str
    scope: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The secret. Shown only in this response; store it now.")


class TokenIn(StrictSchema):
    name: str = Field(max_length=100)
    scope: APIToken.Scope = APIToken.Scope.READ


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@router.get("/me", response={200: MeOut, **READ_ERRORS}, summary="Who am I")
def me(request: HttpRequest) -> User:
    return _user(request)


@router.get("/tokens", response={200: list[TokenOut], **READ_ERRORS}, summary="List my API tokens")
def list_tokens(request: HttpRequest) -> list[APIToken]:
    return list(services.tokens_of(_user(request)))


@router.post("/tokens", response={201: TokenCreatedOut, **ERRORS}, summary="Create an API token")
def create_token(request: HttpRequest, payload: TokenIn) -> Status[dict[str, object]]:
    token, raw = services.create_token(_user(request), payload.name, payload.scope)
    data = TokenOut.model_validate(token).model_dump()
    return Status(201, {**data, "token": raw})


@router.delete("/tokens/{token_id}", response={204: None, **ERRORS}, summary="Revoke an API token")
def revoke_token(request: HttpRequest, token_id: ObjectId) -> Status[None]:
    services.revoke_token(_user(request), token_id)
    return Status(204, None)
