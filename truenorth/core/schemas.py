"""Shared API schema pieces."""

from __future__ import annotations

from typing import Annotated

from ninja import Schema
from pydantic import ConfigDict, Field


class StrictSchema(Schema):
    """Input schema that refuses unknown fields, so a typo is an error and not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class FieldError(Schema):
    field: str | None
    message: str


class ErrorOut(Schema):
    detail: str
    errors: list[FieldError] = []


ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}
READ_ERRORS = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut}


# A database id: out-of-range numbers are refused as 422 before they reach the database
# (PostgreSQL would raise on a bigint overflow).
ObjectId = Annotated[int, Field(ge=1, le=2**63 - 1)]
