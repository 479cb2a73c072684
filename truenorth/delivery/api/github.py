"""Delivery API: a GitHub source's connection to the REST API (repository, API address, token — never
shown back) and fetching from it as a background job. Every rule lives in
delivery/services/github_fetch.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Router, Schema, Status
from pydantic import Field

from truenorth.core.schemas import ERRORS, READ_ERRORS, ObjectId, StrictSchema
from truenorth.delivery.services import github_fetch
from truenorth.delivery.services.sources import get_source
from truenorth.jobs.schemas import SUBMIT_ERRORS, JobOut, accepted
from truenorth.orgs.scoping import scope

router = Router(tags=["delivery"])


class GitHubOut(Schema):
    source_id: int
    connected: bool
    repository: str = Field(description='"owner/name"; empty when not connected.')
    api_url: str
    token_set: bool = Field(description="Whether a token is stored (it is never shown).")
    last_fetched_at: dt.datetime | None = Field(
        description="Start of the last complete fetch: the next one asks for what changed since."
    )
    last_error: str = Field(description="Why the last fetch stopped early, if it did.")
    last_import_id: int | None = Field(description="The latest fetch's import (GET delivery/imports/{id}).")
    version: int = Field(description="0 when not connected.")
    page: str


class GitHubConnectIn(StrictSchema):
    repository: str = Field(min_length=1, max_length=300, description='"owner/name".')
    api_url: str | None = Field(
        None,
        max_length=2000,
        description="https://api.github.com (the default) or https://HOST/api/v3 for GitHub Enterprise Server.",
    )
    token: str | None = Field(
        None, max_length=1000, description="Required: a token that can read the repository."
    )


class GitHubChangeIn(StrictSchema):
    repository: str = Field(min_length=1, max_length=300, description='"owner/name".')
    api_url: str | None = Field(
        None,
        max_length=2000,
        description="https://api.github.com (the default) or https://HOST/api/v3 for GitHub Enterprise Server.",
    )
    token: str | None = Field(
        None, max_length=1000, description="Left out or empty: the stored token is kept."
    )
    version: int = Field(description="The connection's version you read (stale: 409).")


def _out(request_slug: str, data: dict[str, Any]) -> dict[str, Any]:
    page = reverse(
        "delivery:source_github", kwargs={"org_slug": request_slug, "source_id": data["source_id"]}
    )
    return {**data, "page": page}


@router.get(
    "/{slug}/delivery/sources/{source_id}/github",
    response={200: GitHubOut, **READ_ERRORS},
    summary="A GitHub source's API connection (never the token)",
)
def get_connection(request: HttpRequest, slug: str, source_id: ObjectId) -> dict[str, Any]:
    m, _ = scope(request, slug)
    source = get_source(m, source_id)
    return _out(slug, github_fetch.describe(source, github_fetch.connection_of(m, source_id)))


@router.post(
    "/{slug}/delivery/sources/{source_id}/github",
    response={201: GitHubOut, **ERRORS},
    summary="Connect a GitHub source to the REST API (members and above)",
    description=(
        "The token is stored encrypted and never shown again. 422 names the field (`repository`, "
        "`api_url`, `token`, `source`); 409 when the source is already connected (change it with PUT)."
    ),
)
def post_connection(
    request: HttpRequest, slug: str, source_id: ObjectId, payload: GitHubConnectIn
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    connection = github_fetch.connect(
        m,
        user,
        source_id,
        repository=payload.repository,
        api_url=payload.api_url,
        token=payload.token,
        create_only=True,
    )
    return Status(201, _out(slug, github_fetch.describe(connection.source, connection)))


@router.put(
    "/{slug}/delivery/sources/{source_id}/github",
    response={200: GitHubOut, **ERRORS},
    summary="Change a GitHub source's API connection (members and above)",
    description=(
        "Leave `token` out to keep the stored one. 404 when the source is not connected (POST connects); "
        "422 names the field; 409 on a stale `version`."
    ),
)
def put_connection(
    request: HttpRequest, slug: str, source_id: ObjectId, payload: GitHubChangeIn
) -> dict[str, Any]:
    m, user = scope(request, slug)
    connection = github_fetch.connect(
        m,
        user,
        source_id,
        repository=payload.repository,
        api_url=payload.api_url,
        token=payload.token,
        version=payload.version,
        change_only=True,
    )
    return _out(slug, github_fetch.describe(connection.source, connection))


@router.delete(
    "/{slug}/delivery/sources/{source_id}/github",
    response={204: None, **ERRORS},
    summary="Disconnect a GitHub source from the API (the token is forgotten; fetched data stays)",
)
def delete_connection(request: HttpRequest, slug: str, source_id: ObjectId, version: int) -> Status[None]:
    m, user = scope(request, slug)
    github_fetch.disconnect(m, user, source_id, version=version)
    return Status(204, None)


@router.post(
    "/{slug}/delivery/sources/{source_id}/github/fetch",
    response={202: JobOut, **SUBMIT_ERRORS},
    summary="Fetch a GitHub source from the API as a background job",
    description=(
        "202 with the job (`Location`); while a fetch of this source is queued or running, that job. Its "
        "`result` has `import_id`; a fetch stopped early (rate limit, page or time limit, refused token) "
        "fails with the reason and keeps what it stored."
    ),
)
def fetch(
    request: HttpRequest, response: HttpResponse, slug: str, source_id: ObjectId
) -> Status[dict[str, Any]]:
    m, user = scope(request, slug)
    return accepted(response, github_fetch.submit_fetch(m, user, source_id))
