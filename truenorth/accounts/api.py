"""API: the signed-in user and their personal API tokens."""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from truenorth.accounts import services, twofactor
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


# --- two-factor sign-in (accounts/twofactor.py) ---------------------------------------------------


class TwoFactorOut(Schema):
    enabled: bool
    confirmed_at: dt.datetime | None
    recovery_codes_left: int
    required_by: list[str] = Field(description="Slugs of your organisations that require two-factor sign-in.")


class TwoFactorStartOut(Schema):
    secret: str = Field(description="The base32 key, for entering by hand.")
    otpauth_uri: str = Field(description="The otpauth:// URI (what the QR code holds).")
    setup_token: str = Field(description="Send it back with a code to confirm; valid 30 minutes.")


class TwoFactorConfirmIn(StrictSchema):
    setup_token: str = Field(max_length=2000)
    code: str = Field(max_length=40, description="The authenticator's current 6-digit code.")


class TwoFactorCodeIn(StrictSchema):
    code: str = Field(max_length=40, description="The authenticator's current 6-digit code.")


class TwoFactorDisableIn(StrictSchema):
    password: str = Field(max_length=4096)
    code: str = Field(max_length=40, description="An authenticator code or a recovery code.")


class RecoveryCodesOut(Schema):
    recovery_codes: list[str] = Field(description="Single-use codes. Shown only in this response.")


@router.get(
    "/account/two-factor", response={200: TwoFactorOut, **READ_ERRORS}, summary="My two-factor sign-in"
)
def two_factor_status(request: HttpRequest) -> dict[str, object]:
    return twofactor.status(_user(request))


@router.post(
    "/account/two-factor/start",
    response={200: TwoFactorStartOut, **ERRORS},
    summary="Start setting up two-factor sign-in",
)
def two_factor_start(request: HttpRequest) -> dict[str, object]:
    user = _user(request)
    twofactor.require_setup_possible(user)
    secret = twofactor.new_secret()
    return {
        "secret": secret,
        "otpauth_uri": twofactor.provisioning_uri(user, secret),
        "setup_token": twofactor.setup_token(user, secret),
    }


@router.post(
    "/account/two-factor/confirm",
    response={201: RecoveryCodesOut, **ERRORS},
    summary="Turn two-factor sign-in on with a code",
)
def two_factor_confirm(request: HttpRequest, payload: TwoFactorConfirmIn) -> Status[dict[str, object]]:
    user = _user(request)
    secret = twofactor.secret_from_setup_token(user, payload.setup_token)
    return Status(201, {"recovery_codes": twofactor.confirm(user, secret, payload.code)})


@router.post(
    "/account/two-factor/recovery-codes",
    response={200: RecoveryCodesOut, **ERRORS},
    summary="Replace my recovery codes",
)
def two_factor_recovery_codes(request: HttpRequest, payload: TwoFactorCodeIn) -> dict[str, object]:
    return {"recovery_codes": twofactor.regenerate_recovery_codes(_user(request), payload.code)}


@router.delete("/account/two-factor", response={204: None, **ERRORS}, summary="Turn two-factor sign-in off")
def two_factor_disable(request: HttpRequest, payload: TwoFactorDisableIn) -> Status[None]:
    twofactor.disable(_user(request), payload.password, payload.code)
    return Status(204, None)
