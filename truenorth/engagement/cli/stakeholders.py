"""Engagement commands: `truenorth stakeholders list|add|log|overdue`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from truenorth.orgs.commandline import (
    As,
    Json,
    Org,
    ProductOpt,
    console,
    identity,
    member_id,
    print_json,
    show,
    table,
)

stakeholders_app = typer.Typer(
    name="stakeholders",
    help="Stakeholders: list, add, log an interaction, who is overdue for a talk.",
    no_args_is_help=True,
    add_completion=False,
)


def _row(s: Any) -> dict[str, Any]:
    from truenorth.engagement.services import stakeholders as services

    return {
        "id": s.pk,
        "name": s.name,
        "email": s.email,
        "department": s.department,
        "influence": s.influence,
        "interest": s.interest,
        "quadrant": services.quadrant_of(s),
        "current_engagement": s.current_engagement,
        "desired_engagement": s.desired_engagement,
        "gap": services.gap_of(s),
        "relationship_owner": s.relationship_owner.email if s.relationship_owner else None,
        "last_contact": s.last_contact.isoformat() if getattr(s, "last_contact", None) else None,
    }


@stakeholders_app.command("list")
def stakeholders_list(
    department: Annotated[str | None, typer.Option(help="Only this department (e.g. legal).")] = None,
    quadrant: Annotated[
        str | None, typer.Option(help="manage_closely, keep_satisfied, keep_informed or monitor.")
    ] = None,
    product: ProductOpt = None,
    archived: Annotated[bool, typer.Option("--archived", help="Include archived stakeholders.")] = False,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """List the organisation's stakeholders with their quadrant and engagement gap."""
    membership, _ = identity(org, as_user)
    from truenorth.engagement.services import stakeholders as services

    qs = services.stakeholders_of(
        membership,
        services.product_filter(membership, product),
        include_archived=archived,
        department=department,
        quadrant=quadrant,
    )
    rows = [_row(s) for s in qs]
    if as_json:
        print_json(rows)
        return
    show(
        table(
            "Stakeholders",
            (
                "ID",
                "Name",
                "Department",
                "Influence",
                "Interest",
                "Quadrant",
                "Now → needed",
                "Gap",
                "Last contact",
            ),
            (
                (
                    r["id"],
                    r["name"],
                    r["department"],
                    r["influence"],
                    r["interest"],
                    r["quadrant"],
                    f"{r['current_engagement']} → {r['desired_engagement']}",
                    r["gap"],
                    r["last_contact"] or "never",
                )
                for r in rows
            ),
        )
    )


@stakeholders_app.command("add")
def stakeholders_add(
    name: Annotated[str, typer.Argument(help="The stakeholder's name.")],
    email: Annotated[str, typer.Option(help="E-mail (unique in the organisation).")] = "",
    title: Annotated[str, typer.Option(help="Their role or title.")] = "",
    company: Annotated[str, typer.Option(help="Their own organisation, when outside ours.")] = "",
    department: Annotated[str, typer.Option(help="leadership, product, engineering, … other.")] = "other",
    influence: Annotated[int, typer.Option(help="1-5.")] = 3,
    interest: Annotated[int, typer.Option(help="1-5.")] = 3,
    current: Annotated[
        str, typer.Option(help="Engagement now: unaware, resistant, neutral, supportive, leading.")
    ] = "neutral",
    desired: Annotated[str, typer.Option(help="Engagement we need (same levels).")] = "supportive",
    owner: Annotated[str | None, typer.Option(metavar="EMAIL", help="Relationship owner (a member).")] = None,
    product: Annotated[list[int] | None, typer.Option("--product", metavar="ID", help="Repeatable.")] = None,
    goal: Annotated[list[int] | None, typer.Option("--goal", metavar="ID", help="Repeatable.")] = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Add a stakeholder."""
    membership, actor = identity(org, as_user)
    from truenorth.engagement.services import stakeholders as services

    s = services.create_stakeholder(
        membership,
        actor,
        name=name,
        email=email,
        title=title,
        company=company,
        department=department,
        influence=influence,
        interest=interest,
        current_engagement=current,
        desired_engagement=desired,
        relationship_owner=member_id(membership, owner, "--owner"),
        products=product or [],
        goals=goal or [],
    )
    if as_json:
        print_json(_row(s))
        return
    console.print(f"Added stakeholder #{s.pk} {s.name} ({services.quadrant_of(s).replace('_', ' ')}).")


@stakeholders_app.command("log")
def stakeholders_log(
    stakeholder: Annotated[list[int], typer.Argument(metavar="ID...", help="Stakeholder id(s) talked to.")],
    summary: Annotated[str, typer.Option(help="What happened (required).")],
    on: Annotated[str | None, typer.Option("--on", metavar="YYYY-MM-DD", help="Default: today.")] = None,
    kind: Annotated[
        str, typer.Option(help="meeting, review, demo, message, call, workshop, other.")
    ] = "meeting",
    notes: Annotated[str, typer.Option(help="Notes.")] = "",
    goal: Annotated[
        list[int] | None, typer.Option("--goal", metavar="ID", help="A goal touched; repeatable.")
    ] = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Log an interaction with one or more stakeholders."""
    membership, actor = identity(org, as_user)
    from django.utils import timezone

    from truenorth.engagement.services import stakeholders as services

    entry = services.log_interaction(
        membership,
        actor,
        occurred_on=on if on is not None else timezone.localdate(),
        summary=summary,
        kind=kind,
        notes=notes,
        stakeholder_ids=stakeholder,
        goal_ids=goal or [],
    )
    if as_json:
        print_json(
            {"id": entry.pk, "occurred_on": entry.occurred_on, "kind": entry.kind, "summary": entry.summary}
        )
        return
    console.print(f"Logged {entry.get_kind_display().lower()} on {entry.occurred_on.isoformat()}.")


@stakeholders_app.command("overdue")
def stakeholders_overdue(
    days: Annotated[
        int | None,
        typer.Option(
            "--days", metavar="N", help="Not talked to in at least N days (instead of the intervals)."
        ),
    ] = None,
    product: ProductOpt = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Stakeholders not talked to for too long for their quadrant, most overdue first."""
    membership, _ = identity(org, as_user)
    from truenorth.engagement.services import stakeholders as services

    found = services.overdue(membership, days=days, product_id=services.product_filter(membership, product))
    rows = [
        {
            "id": r.stakeholder.pk,
            "name": r.stakeholder.name,
            "quadrant": r.quadrant,
            "days_since": r.days_since,
            "interval": r.interval,
            "score": round(r.score, 2),
            "last_contact": r.last_contact.isoformat() if isinstance(r.last_contact, dt.date) else None,
        }
        for r in found
    ]
    if as_json:
        print_json(rows)
        return
    show(
        table(
            "Not talked to" + (f" in {days} days or more" if days is not None else " for too long"),
            ("ID", "Name", "Quadrant", "Days since", "Interval", "Overdue (x interval)"),
            ((r["id"], r["name"], r["quadrant"], r["days_since"], r["interval"], r["score"]) for r in rows),
        )
    )
