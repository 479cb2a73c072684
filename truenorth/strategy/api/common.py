"""Vision API: the router every endpoint module registers on, and what they share: reading ids named
in a body, and the outputs that carry values computed beside the model (progress, latest values, counts,
lint findings). Every other output is a model object validated by its schema (strategy/schemas.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ninja import Router

from truenorth.core.errors import NotFound, ValidationFailed
from truenorth.orgs.models import Membership
from truenorth.strategy import services
from truenorth.strategy.lint import Finding
from truenorth.strategy.models import Goal, Product, TargetMeasure
from truenorth.strategy.progress import Progress

router = Router(tags=["vision"])


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
        "owner": p.owner,
        "teams": list(p.teams.all()),
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


def goal_out(g: Goal, progress: Mapping[int, Progress]) -> dict[str, Any]:
    p = progress.get(g.pk)
    return {
        "id": g.pk,
        "product": g.product_id,
        "parent": g.parent_id,
        "level": g.level,
        "title": g.title,
        "outcome": g.outcome,
        "owner": g.owner,
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
        "children": list(children),
        "links_out": list(links["out"]),
        "links_in": list(links["in"]),
        "findings": findings_out(services.lint(m, goal_id=goal.pk)),
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
