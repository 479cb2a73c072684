"""Vision API: alignment and lint (a goal's and the organisation's lint findings, the organisation-level
tree, which product goals serve which organisation goal)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query

from truenorth.core.schemas import READ_ERRORS, ObjectId
from truenorth.orgs.scoping import scope
from truenorth.strategy import services
from truenorth.strategy.api.common import findings_out, goal_out, router, tree
from truenorth.strategy.schemas import AlignmentOut, FindingOut, LintFilter, TreeOut


@router.get(
    "/{slug}/goals/{goal_id}/lint",
    response={200: list[FindingOut], **READ_ERRORS},
    summary="Lint findings of one goal",
)
def goal_lint(request: HttpRequest, slug: str, goal_id: ObjectId) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    goal = services.get_goal(m, goal_id)
    return findings_out(services.lint(m, goal_id=goal.pk))


@router.get(
    "/{slug}/tree", response={200: TreeOut, **READ_ERRORS}, summary="The organisation-level goal tree"
)
def org_tree(request: HttpRequest, slug: str) -> dict[str, Any]:
    m, _ = scope(request, slug)
    return {"product": None, "goals": tree(m, None)}


@router.get(
    "/{slug}/alignment",
    response={200: AlignmentOut, **READ_ERRORS},
    summary="Which product goals serve which organisation goal",
)
def alignment(request: HttpRequest, slug: str) -> dict[str, Any]:
    m, _ = scope(request, slug)
    view = services.alignment(m)
    progress = services.progress_for_org(m.organisation_id)

    return {
        "org_goals": [{"goal": goal_out(g, progress), "served_by": served} for g, served in view.org_goals],
        "unaligned": view.unaligned,
    }


@router.get(
    "/{slug}/lint", response={200: list[FindingOut], **READ_ERRORS}, summary="Lint findings over all goals"
)
def org_lint(request: HttpRequest, slug: str, filters: Query[LintFilter]) -> list[dict[str, Any]]:
    m, _ = scope(request, slug)
    return findings_out(services.lint(m, org_level=filters.org_level))
