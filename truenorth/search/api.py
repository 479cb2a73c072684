"""API: search an organisation's goals, measures, hypotheses, experiments, work items and learnings."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from truenorth.accounts.models import User
from truenorth.core.schemas import READ_ERRORS
from truenorth.orgs.services import membership_for
from truenorth.search import services
from truenorth.search.models import SearchKind

router = Router(tags=["search"])


class SearchQuery(Schema):
    q: str = Field("", max_length=200, description="Words to find; operators and quotes are taken as text.")
    limit: int = Field(services.DEFAULT_LIMIT, ge=1, le=services.MAX_LIMIT)


class SearchResultOut(Schema):
    kind: SearchKind
    kind_label: str
    id: int = Field(description="The object's id (a learning: the decision's id).")
    title: str
    title_html: str = Field(description="The title, HTML-escaped, matched words in <mark>.")
    snippet: str = Field(description="The matching part of the text, plain.")
    snippet_html: str = Field(description="The snippet, HTML-escaped, matched words in <mark>.")
    url: str = Field(description="The object's web page.")
    score: float = Field(description="Relevance (higher is better); results come best first.")


@router.get(
    "/{slug}/search",
    response={200: list[SearchResultOut], **READ_ERRORS},
    summary="Search the organisation (ranked; archived goals and measures left out)",
)
def search(request: HttpRequest, slug: str, query: Query[SearchQuery]) -> list[dict[str, Any]]:
    assert isinstance(request.user, User)
    membership = membership_for(request.user, slug)
    return [services.describe(r) for r in services.search(membership, query.q, query.limit)]
