"""Vision commands: `truenorth goals list|show|create|update|move|archive`: the goal tree."""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer
from rich.markup import escape

from truenorth.orgs.commandline import (
    As,
    Json,
    Org,
    Version,
    console,
    identity,
    member_id,
    percent,
    print_json,
    show,
    table,
)
from truenorth.strategy.cli.apps import goals_app


def _parse_target(spec: str) -> dict[str, Any]:
    """NAME:BASELINE:TARGET[:UNIT[:DIRECTION]] (numbers and direction are checked by the services)."""
    parts = spec.split(":")
    if not 3 <= len(parts) <= 5:
        raise click.UsageError(f"--target: '{spec}' is not NAME:BASELINE:TARGET[:UNIT[:increase|decrease]]")
    out: dict[str, Any] = {"name": parts[0], "baseline": parts[1], "target": parts[2]}
    if len(parts) > 3:
        out["unit"] = parts[3]
    if len(parts) > 4:
        out["direction"] = parts[4]
    return out


@goals_app.command("list")
def goals_list(
    product: Annotated[
        int | None,
        typer.Option(
            "--product", metavar="ID", help="This product's tree (default: organisation-level goals)."
        ),
    ] = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """The goal tree of a product, or the organisation-level goals, with progress."""
    membership, _ = identity(org, as_user)
    from truenorth.strategy import services

    title = "Organisation goals"
    if product is not None:
        title = f"Goals of {services.get_product(membership, product).name}"
    rows: list[dict[str, Any]] = [
        {
            "id": r.goal.pk,
            "depth": r.depth,
            "title": r.goal.title,
            "level": r.goal.level,
            "status": r.goal.status,
            "owner": r.goal.owner.email if r.goal.owner else None,
            "target_date": r.goal.target_date.isoformat() if r.goal.target_date else None,
            "progress": r.progress,
        }
        for r in services.whole_tree(membership, product)
    ]
    if as_json:
        print_json(rows)
        return
    show(
        table(
            title,
            ("ID", "Goal", "Level", "Status", "Owner", "Date", "Progress"),
            (
                (
                    r["id"],
                    "  " * r["depth"] + r["title"],
                    r["level"],
                    r["status"],
                    r["owner"],
                    r["target_date"],
                    percent(r["progress"]),
                )
                for r in rows
            ),
        )
    )


@goals_app.command("show")
def goals_show(
    goal_id: Annotated[int, typer.Argument(metavar="GOAL_ID", help="The goal's id.")],
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """One goal: targets, links, check-ins, proposals, endorsements, concerns and comments."""
    membership, _ = identity(org, as_user)
    from truenorth.strategy import services

    goal = services.get_goal(membership, goal_id)
    progress = services.progress_for_org(membership.organisation_id).get(goal.pk)
    targets = list(goal.targets.all())
    latest = services.latest_values(t.pk for t in targets)
    links = services.links_of(membership, goal)
    data: dict[str, Any] = {
        "id": goal.pk,
        "title": goal.title,
        "product": goal.product.name if goal.product else None,
        "parent": goal.parent_id,
        "level": goal.level,
        "status": goal.status,
        "owner": goal.owner.email if goal.owner else None,
        "target_date": goal.target_date.isoformat() if goal.target_date else None,
        "outcome": goal.outcome,
        "weight": goal.weight,
        "checkin_cadence_days": goal.checkin_cadence_days,
        "archived": goal.archived_at is not None,
        "version": goal.version,
        "progress": progress.value if progress else None,
        "targets": [
            {
                "id": t.pk,
                "name": t.name,
                "unit": t.unit,
                "baseline": t.baseline,
                "target": t.target,
                "direction": t.direction,
                "measure": t.measure_id,
                "latest": latest.get(t.pk),
            }
            for t in targets
        ],
        "links": [
            {"id": link.pk, "kind": link.kind, "goal": link.target_id, "title": link.target.title}
            for link in links["out"]
        ]
        + [
            {"id": link.pk, "kind": f"{link.kind} (in)", "goal": link.source_id, "title": link.source.title}
            for link in links["in"]
        ],
        "checkins": [
            {
                "at": c.created_at.isoformat(),
                "status": c.status,
                "confidence": c.confidence,
                "narrative": c.narrative,
            }
            for c in goal.checkins.all()[:5]
        ],
        "proposals": [
            {
                "id": p.pk,
                "state": p.state,
                "author": p.author.email if p.author else None,
                "changes": p.changes,
                "reason": p.reason,
            }
            for p in services.proposals_of(membership, goal)
        ],
        "endorsements": [
            {
                "id": e.pk,
                "kind": e.kind,
                "user": e.user.email,
                "note": e.note,
                "resolved": e.resolved_at is not None,
            }
            for e in services.endorsements_of(membership, goal)
        ],
        "comments": [
            {"at": c.created_at.isoformat(), "author": c.author.email if c.author else None, "body": c.body}
            for c in services.comments_of(membership, goal)
        ],
    }
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]#{goal.pk} {escape(goal.title)}[/bold] (version {goal.version})")
    for label, key in (
        ("Product", "product"),
        ("Level", "level"),
        ("Status", "status"),
        ("Owner", "owner"),
        ("Target date", "target_date"),
        ("Outcome", "outcome"),
    ):
        console.print(f"{label}: {escape(str(data[key] or '—'))}")
    console.print(f"Progress: {percent(data['progress'])}")
    if targets:
        show(
            table(
                "Targets",
                ("ID", "Measure", "Baseline", "Target", "Latest", "Direction"),
                (
                    (t["id"], t["name"], t["baseline"], t["target"], t["latest"], t["direction"])
                    for t in data["targets"]
                ),
            )
        )
    sections: tuple[tuple[str, list[str]], ...] = (
        ("Links", [f"#{x['id']} {x['kind']} #{x['goal']} {x['title']}" for x in data["links"]]),
        (
            "Check-ins",
            [f"{x['at'][:10]} {x['status']} {x['confidence']}/10 {x['narrative']}" for x in data["checkins"]],
        ),
        (
            "Proposals",
            [f"#{x['id']} {x['state']} by {x['author']}: {x['changes']}" for x in data["proposals"]],
        ),
        (
            "Endorsements and concerns",
            [
                f"#{x['id']} {x['kind']} by {x['user']}{' (resolved)' if x['resolved'] else ''}: {x['note']}"
                for x in data["endorsements"]
            ],
        ),
        ("Comments", [f"{x['at'][:10]} {x['author']}: {x['body']}" for x in data["comments"]]),
    )
    for heading, lines in sections:
        if lines:
            console.print(f"[bold]{heading}[/bold]")
            for line in lines:
                console.print(f"  {escape(line)}")


@goals_app.command("create")
def goals_create(
    title: Annotated[str, typer.Argument(help="The goal's title.")],
    product: Annotated[
        int | None, typer.Option("--product", metavar="ID", help="Product tree (omit: organisation level).")
    ] = None,
    parent: Annotated[int | None, typer.Option("--parent", metavar="ID", help="Parent goal.")] = None,
    level: Annotated[
        str | None,
        typer.Option(help="strategic, intermediate, tactical or sprint (default: below the parent)."),
    ] = None,
    outcome: Annotated[str, typer.Option(help="Outcome statement: why, in customer terms.")] = "",
    owner: Annotated[str | None, typer.Option(metavar="EMAIL", help="Owner (a member).")] = None,
    date: Annotated[str | None, typer.Option("--date", metavar="YYYY-MM-DD", help="Target date.")] = None,
    status: Annotated[
        str, typer.Option(help="proposed, active, achieved, missed or abandoned.")
    ] = "proposed",
    weight: Annotated[float, typer.Option(help="Weight in its parent's roll-up.")] = 1.0,
    cadence: Annotated[int, typer.Option("--cadence", help="Check-in cadence in days.")] = 7,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target", metavar="SPEC", help="NAME:BASELINE:TARGET[:UNIT[:increase|decrease]]; repeatable."
        ),
    ] = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Create a goal."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    goal = services.create_goal(
        membership,
        actor,
        title=title,
        product_id=product,
        parent_id=parent,
        level=level,
        outcome=outcome,
        owner_id=member_id(membership, owner, "--owner"),
        target_date=date,
        status=status,
        weight=weight,
        checkin_cadence_days=cadence,
        targets=[_parse_target(t) for t in target or []],
    )
    console.print(f"Created goal #{goal.pk} “{escape(goal.title)}” ({goal.level}).")


@goals_app.command("update")
def goals_update(
    goal_id: Annotated[int, typer.Argument(metavar="GOAL_ID", help="The goal's id.")],
    title: Annotated[str | None, typer.Option(help="New title.")] = None,
    outcome: Annotated[str | None, typer.Option(help="New outcome statement.")] = None,
    level: Annotated[str | None, typer.Option(help="New level.")] = None,
    status: Annotated[str | None, typer.Option(help="New status.")] = None,
    owner: Annotated[str | None, typer.Option(metavar="EMAIL", help="New owner.")] = None,
    no_owner: Annotated[bool, typer.Option("--no-owner", help="Clear the owner.")] = False,
    date: Annotated[str | None, typer.Option("--date", metavar="YYYY-MM-DD", help="New target date.")] = None,
    no_date: Annotated[bool, typer.Option("--no-date", help="Clear the target date.")] = False,
    weight: Annotated[float | None, typer.Option(help="New weight.")] = None,
    cadence: Annotated[int | None, typer.Option("--cadence", help="New check-in cadence in days.")] = None,
    version: Version = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Change a goal's fields (only those given)."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    if owner is not None and no_owner:
        raise click.UsageError("--owner and --no-owner: give one of them")
    if date is not None and no_date:
        raise click.UsageError("--date and --no-date: give one of them")
    fields: dict[str, Any] = {
        k: v
        for k, v in {
            "title": title,
            "outcome": outcome,
            "level": level,
            "status": status,
            "weight": weight,
            "checkin_cadence_days": cadence,
            "target_date": date,
        }.items()
        if v is not None
    }
    if no_date:
        fields["target_date"] = None
    if no_owner:
        fields["owner_id"] = None
    elif owner is not None:
        fields["owner_id"] = member_id(membership, owner, "--owner")
    if not fields:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    goal = services.update_goal(membership, actor, goal_id, version=version, **fields)
    console.print(f"Updated goal #{goal.pk} “{escape(goal.title)}” (now version {goal.version}).")


@goals_app.command("move")
def goals_move(
    goal_id: Annotated[int, typer.Argument(metavar="GOAL_ID", help="The goal's id.")],
    parent: Annotated[int | None, typer.Option("--parent", metavar="ID", help="New parent goal.")] = None,
    root: Annotated[bool, typer.Option("--root", help="Make it a root of its tree.")] = False,
    position: Annotated[int | None, typer.Option(min=0, help="Place among its siblings (0 = first).")] = None,
    version: Version = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Move a goal under another parent in its tree, or reorder it among its siblings."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    if parent is not None and root:
        raise click.UsageError("--parent and --root: give one of them")
    if parent is None and not root:
        if position is None:
            raise click.UsageError("give --parent ID, --root or --position N")
        parent = services.get_goal(membership, goal_id).parent_id
    goal = services.move_goal(
        membership, actor, goal_id, parent_id=parent, position=position, version=version
    )
    where = f"under #{goal.parent_id}" if goal.parent_id else "at the root"
    console.print(f"Moved goal #{goal.pk} {where}, position {goal.position}.")


@goals_app.command("archive")
def goals_archive(
    goal_id: Annotated[int, typer.Argument(metavar="GOAL_ID", help="The goal's id.")],
    restore: Annotated[bool, typer.Option("--restore", help="Restore an archived goal.")] = False,
    version: Version = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Archive a goal (kept with its history) or restore it."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    goal = services.archive_goal(membership, actor, goal_id, archived=not restore, version=version)
    console.print(f"{'Restored' if restore else 'Archived'} goal #{goal.pk} “{escape(goal.title)}”.")
