"""Shared API schema pieces."""

from __future__ import annotations

from typing import Annotated, Any

from ninja import Schema
from pydantic import ConfigDict, Field, field_validator


def _no_nul(value: Any) -> Any:
    """PostgreSQL cannot store NUL characters in text: refuse them as bad input (422), not a 500 later."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("Must not contain NUL characters.")
    if isinstance(value, list | tuple):
        for item in value:
            _no_nul(item)
    return value


class StrictSchema(Schema):
    """Input schema that refuses unknown fields (a typo is an error, not silently ignored) and text
    holding NUL characters."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _text_without_nul(cls, value: Any) -> Any:
        return _no_nul(value)


class FieldError(Schema):
    field: str | None
    message: str


class ErrorOut(Schema):
    detail: str
    errors: list[FieldError] = []


ERRORS = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    413: ErrorOut,  # the body is over the limit (core.middleware.RequestBodyLimitMiddleware)
    422: ErrorOut,
}
READ_ERRORS = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}


# A database id: out-of-range numbers are refused as 422 before they reach the database
# (PostgreSQL would raise on a bigint overflow).
ObjectId = Annotated[int, Field(ge=1, le=2**63 - 1)]
