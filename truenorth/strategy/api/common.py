"""Vision API: the router every endpoint module registers on, and the JSON builders they share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ninja import Router

from truenorth.accounts.models import User
from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.orgs.models import Membership
from truenorth.strategy import services
from truenorth.strategy.lint import Finding
from truenorth.strategy.models import (
    ChangeProposal,
    CheckIn,
    Comment,
    Endorsement,
    Goal,
    GoalLink,
    Product,
    TargetMeasure,
    TargetObservation,
    WorkItem,
)
from truenorth.strategy.progress import Progress

router = Router(tags=["vision"])


def user_ref(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "email": user.email, "name": user.name}


def owner_from(m: Membership, owner: int | None, owner_email: str | None) -> int | None:
    if owner_email:
        return services.member_by_email(m, owner_email).pk
    return owner


def product_in_body(m: Membership, product_id: int | None) -> int | None:
    """A product named in a request body: an unknown one is bad input (422), not a missing page."""
    if product_id is None:
        return None
    try:
        return services.get_product(m, product_id).pk
    except NotFound:
        raise ValidationFailed("No such product in this organisation.", field="product") from None


def product_out(p: Product, counts: Mapping[str, int] | None = None) -> dict[str, Any]:
    counts = counts or {}
    return {
        "id": p.pk,
        "name": p.name,
        "vision": p.vision,
        "product_goal": p.product_goal,
        "owner": user_ref(p.owner),
        "teams": [{"id": t.pk, "name": t.name} for t in p.teams.all()],
        "created_at": p.created_at,
        "archived_at": p.archived_at,
        "version": p.version,
        "goals": counts.get("goals", 0),
        "work_items": counts.get("work", 0),
    }


def product_detail(m: Membership, product_id: int) -> dict[str, Any]:
    product = services.get_product(m, product_id)
    counts = services.product_counts(m).get(product.pk, {})
    report = services.orphan_report(m, product.pk)
    findings = services.lint(m, product_id=product.pk)
    return {
        **product_out(product, counts),
        "orphan_work_items": report.orphans,
        "findings": len(findings),
    }


def goal_ref(g: Goal) -> dict[str, Any]:
    return {"id": g.pk, "title": g.title, "level": g.level, "status": g.status, "product": g.product_id}


def goal_out(g: Goal, progress: Mapping[int, Progress]) -> dict[str, Any]:
    p = progress.get(g.pk)
    return {
        "id": g.pk,
        "product": g.product_id,
        "parent": g.parent_id,
        "level": g.level,
        "title": g.title,
        "outcome": g.outcome,
        "owner": user_ref(g.owner),
        "target_date": g.target_date,
        "status": g.status,
        "weight": g.weight,
        "position": g.position,
        "checkin_cadence_days": g.checkin_cadence_days,
        "created_at": g.created_at,
        "updated_at": g.updated_at,
        "archived_at": g.archived_at,
        "version": g.version,
        "progress": p.value if p else None,
    }


def target_out(t: TargetMeasure, latest: Mapping[int, float]) -> dict[str, Any]:
    current = latest.get(t.pk)
    return {
        "id": t.pk,
        "name": t.name,
        "unit": t.unit,
        "baseline": t.baseline,
        "target": t.target,
        "direction": t.direction,
        "position": t.position,
        "measure": t.measure_id,
        "current": current,
        "progress": services.target_progress_of(t, current),
    }


def link_out(link: GoalLink) -> dict[str, Any]:
    return {
        "id": link.pk,
        "kind": link.kind,
        "source": goal_ref(link.source),
        "target": goal_ref(link.target),
        "created_at": link.created_at,
    }


def findings_out(rows: Iterable[tuple[Goal, Finding]]) -> list[dict[str, Any]]:
    return [
        {
            "goal": g.pk,
            "goal_title": g.title,
            "product": g.product_id,
            "rule": f.rule,
            "severity": f.severity,
            "message": f.message,
        }
        for g, f in rows
    ]


def goal_detail(m: Membership, goal_id: int) -> dict[str, Any]:
    goal = services.get_goal(m, goal_id)
    progress = services.progress_for_org(m.organisation_id)
    targets = list(goal.targets.all())
    latest = services.latest_values(t.pk for t in targets)
    links = services.links_of(m, goal)
    p = progress.get(goal.pk)
    children = goal.children.filter(archived_at__isnull=True).order_by("position", "id")
    return {
        **goal_out(goal, progress),
        "measured": p.measured if p else None,
        "rollup": p.rollup if p else None,
        "targets": [target_out(t, latest) for t in targets],
        "children": [goal_ref(c) for c in children],
        "links_out": [link_out(x) for x in links["out"]],
        "links_in": [link_out(x) for x in links["in"]],
        "findings": findings_out(services.lint(m, goal_id=goal.pk)),
    }


def observation_out(o: TargetObservation) -> dict[str, Any]:
    return {
        "id": o.pk,
        "target": o.target_measure_id,
        "value": o.value,
        "observed_at": o.observed_at,
        "note": o.note,
        "recorded_by": o.recorded_by.email if o.recorded_by else None,
    }


def checkin_out(c: CheckIn) -> dict[str, Any]:
    return {
        "id": c.pk,
        "goal": c.goal_id,
        "author": user_ref(c.author),
        "status": c.status,
        "confidence": c.confidence,
        "narrative": c.narrative,
        "observation": observation_out(c.observation) if c.observation else None,
        "measure_observation": c.measure_observation_id,
        "created_at": c.created_at,
    }


def comment_out(c: Comment) -> dict[str, Any]:
    return {
        "id": c.pk,
        "goal": c.goal_id,
        "author": user_ref(c.author),
        "body": c.body,
        "created_at": c.created_at,
    }


def proposal_out(p: ChangeProposal) -> dict[str, Any]:
    return {
        "id": p.pk,
        "goal": p.goal_id,
        "author": user_ref(p.author),
        "changes": p.changes,
        "reason": p.reason,
        "state": p.state,
        "goal_version": p.goal_version,
        "decided_by": user_ref(p.decided_by),
        "decided_at": p.decided_at,
        "decision_reason": p.decision_reason,
        "created_at": p.created_at,
    }


def endorsement_out(e: Endorsement) -> dict[str, Any]:
    return {
        "id": e.pk,
        "goal": e.goal_id,
        "kind": e.kind,
        "user": user_ref(e.user),
        "note": e.note,
        "created_at": e.created_at,
        "resolved_at": e.resolved_at,
        "resolved_by": user_ref(e.resolved_by),
        "resolution": e.resolution,
    }


def work_item_out(w: WorkItem) -> dict[str, Any]:
    return {
        "id": w.pk,
        "product": w.product_id,
        "title": w.title,
        "external_key": w.external_key,
        "url": w.url,
        "status": w.status,
        "team": {"id": w.team.pk, "name": w.team.name} if w.team else None,
        "goal": goal_ref(w.goal) if w.goal else None,
        "created_at": w.created_at,
    }


def tree(m: Membership, product_id: int | None) -> list[dict[str, Any]]:
    rows = services.whole_tree(m, product_id)
    progress = services.progress_for_org(m.organisation_id)
    latest = services.latest_values(t.pk for row in rows for t in row.goal.targets.all())
    nodes: dict[int, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for row in rows:  # depth-first: a parent always comes before its children
        goal = row.goal
        node = {
            **goal_out(goal, progress),
            "targets": [
                {k: v for k, v in target_out(t, latest).items() if k != "position"}
                for t in goal.targets.all()
            ],
            "children": [],
        }
        nodes[goal.pk] = node
        parent = nodes.get(goal.parent_id) if goal.parent_id else None
        (parent["children"] if parent is not None else roots).append(node)
    return roots
