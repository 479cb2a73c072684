"""Vision commands: `truenorth lint`, `products …`, `goals …`, `export`, `import`.

Registered on the main app in truenorth/cli.py. Every command acts in one organisation (`--org SLUG`
or TRUENORTH_ORG) as one person (`--as EMAIL` or TRUENORTH_USER), resolved with
orgs.services.membership_for: an organisation you do not belong to is "not found", exactly like one
that does not exist. Commands only parse and print; services.py and exchange.py do the work.
Exit codes: 0 done; 1 `lint` found an error-severity finding; 2 bad usage or input (one line on stderr).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.markup import escape

from truenorth.orgs.commandline import (
    As,
    Json,
    Org,
    ProductOpt,
    Version,
    console,
    identity,
    member_id,
    percent,
    print_json,
    show,
    table,
)

if TYPE_CHECKING:
    pass

products_app = typer.Typer(
    name="products", help="Products: list and create.", no_args_is_help=True, add_completion=False
)
goals_app = typer.Typer(
    name="goals",
    help="Goals: the tree, check-ins, proposals, endorsements, concerns and comments.",
    no_args_is_help=True,
    add_completion=False,
)


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


# --- lint -----------------------------------------------------------------------------------------


def lint(
    product: ProductOpt = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Check goal quality. Exit 0: no error-severity finding; 1: at least one; 2: bad usage."""
    membership, _ = identity(org, as_user)
    from truenorth.strategy import services

    if product is not None:
        services.get_product(membership, product)
    findings: list[dict[str, Any]] = [
        {
            "goal": goal.pk,
            "title": goal.title,
            "product": goal.product.name if goal.product else None,
            "severity": f.severity,
            "rule": f.rule,
            "message": f.message,
        }
        for goal, f in services.lint(membership, product_id=product)
    ]
    errors = sum(1 for f in findings if f["severity"] == "error")
    if as_json:
        print_json(findings)
    elif not findings:
        console.print("No findings.")
    else:
        show(
            table(
                "Goal lint",
                ("Goal", "Product", "Severity", "Rule", "Finding"),
                (
                    (
                        f"#{f['goal']} {f['title']}",
                        f["product"] or "organisation",
                        f["severity"],
                        f["rule"],
                        f["message"],
                    )
                    for f in findings
                ),
            )
        )
        console.print(f"{errors} error(s), {len(findings) - errors} warning(s).")
    if errors:
        raise typer.Exit(1)


# --- products -------------------------------------------------------------------------------------


@products_app.command("list")
def products_list(
    archived: Annotated[bool, typer.Option("--archived", help="Include archived products.")] = False,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """List the organisation's products."""
    membership, _ = identity(org, as_user)
    from truenorth.strategy import services

    counts = services.product_counts(membership)
    rows: list[dict[str, Any]] = [
        {
            "id": p.pk,
            "name": p.name,
            "owner": p.owner.email if p.owner else None,
            "teams": [t.name for t in p.teams.all()],
            "goals": counts.get(p.pk, {}).get("goals", 0),
            "work_items": counts.get(p.pk, {}).get("work", 0),
            "archived": p.archived_at is not None,
        }
        for p in services.products_of(membership, include_archived=archived)
    ]
    if as_json:
        print_json(rows)
        return
    show(
        table(
            "Products",
            ("ID", "Name", "Owner", "Teams", "Goals", "Work items"),
            (
                (r["id"], r["name"], r["owner"], ", ".join(r["teams"]), r["goals"], r["work_items"])
                for r in rows
            ),
        )
    )


@products_app.command("create")
def products_create(
    name: Annotated[str, typer.Argument(help="Product name (unique in the organisation).")],
    vision: Annotated[str, typer.Option(help="The product vision.")] = "",
    product_goal: Annotated[str, typer.Option("--product-goal", help="The product goal.")] = "",
    owner: Annotated[str | None, typer.Option(metavar="EMAIL", help="Product owner (a member).")] = None,
    team: Annotated[
        list[str] | None, typer.Option("--team", metavar="NAME", help="A team (created if new); repeatable.")
    ] = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Create a product."""
    membership, actor = identity(org, as_user)
    from django.db import transaction

    from truenorth.strategy import services

    with transaction.atomic():
        team_ids = []
        for team_name in team or []:
            found = services.teams_of(membership).filter(name__iexact=team_name.strip()).first()
            team_ids.append((found or services.create_team(membership, actor, team_name)).pk)
        product = services.create_product(
            membership,
            actor,
            name=name,
            vision=vision,
            product_goal=product_goal,
            owner_id=member_id(membership, owner, "--owner"),
            team_ids=team_ids,
        )
    console.print(f"Created product #{product.pk} “{escape(product.name)}”.")


# --- goals: the tree ------------------------------------------------------------------------------


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


# --- goals: target measures ----------------------------------------------------------------------

MeasureOpt = Annotated[
    int | None,
    typer.Option(
        "--measure",
        metavar="ID",
        help="A Value measure of the organisation to track: its observations give the target's values, "
        "progress and staleness.",
    ),
]


@goals_app.command("target-add")
def goals_target_add(
    goal_id: Annotated[int, typer.Argument(metavar="GOAL_ID", help="The goal's id.")],
    baseline: Annotated[str, typer.Option(help="Where it starts.")],
    target: Annotated[str, typer.Option("--target", help="Where it should get to.")],
    name: Annotated[
        str, typer.Option(help="The target measure's name (default: the tracked measure's).")
    ] = "",
    unit: Annotated[str, typer.Option(help="Unit (default: the tracked measure's).")] = "",
    direction: Annotated[str, typer.Option(help="increase or decrease.")] = "increase",
    measure: MeasureOpt = None,
    version: Version = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Add a target measure to a goal, optionally tracking a Value measure."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    spec = {
        "name": name,
        "unit": unit,
        "baseline": baseline,
        "target": target,
        "direction": direction,
        "measure_id": measure,
    }
    added = services.add_target(membership, actor, goal_id, spec, version=version)
    tracks = f", tracking measure #{added.measure_id}" if added.measure_id else ""
    console.print(f"Added target measure #{added.pk} “{escape(added.name)}” to goal #{goal_id}{tracks}.")


@goals_app.command("target-update")
def goals_target_update(
    target_id: Annotated[int, typer.Argument(metavar="TARGET_ID", help="The target measure's id.")],
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    unit: Annotated[str | None, typer.Option(help="New unit.")] = None,
    baseline: Annotated[str | None, typer.Option(help="New baseline.")] = None,
    target: Annotated[str | None, typer.Option("--target", help="New target value.")] = None,
    direction: Annotated[str | None, typer.Option(help="increase or decrease.")] = None,
    measure: MeasureOpt = None,
    no_measure: Annotated[
        bool, typer.Option("--no-measure", help="Stop tracking a measure (values recorded on the target).")
    ] = False,
    version: Version = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Change a target measure (only the options given), including the Value measure it tracks."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    if measure is not None and no_measure:
        raise click.UsageError("--measure and --no-measure: give one of them")
    spec: dict[str, Any] = {
        k: v
        for k, v in {
            "name": name,
            "unit": unit,
            "baseline": baseline,
            "target": target,
            "direction": direction,
        }.items()
        if v is not None
    }
    if measure is not None or no_measure:
        spec["measure_id"] = measure
    if not spec:
        raise click.UsageError("nothing to change: give at least one option (see --help)")
    changed = services.update_target(membership, actor, target_id, spec, version=version)
    tracks = f", tracking measure #{changed.measure_id}" if changed.measure_id else ""
    console.print(f"Updated target measure #{changed.pk} “{escape(changed.name)}”{tracks}.")


# --- goals: check-ins -----------------------------------------------------------------------------


@goals_app.command("checkin")
def goals_checkin(
    goal_id: Annotated[int, typer.Argument(metavar="GOAL_ID", help="The goal's id.")],
    status: Annotated[str, typer.Option(help="on_track, at_risk or off_track.")],
    confidence: Annotated[int, typer.Option(help="Confidence 0 to 10.")],
    narrative: Annotated[str, typer.Option(help="What happened, what is next.")] = "",
    target: Annotated[
        int | None, typer.Option("--target", metavar="ID", help="Target measure to record a value for.")
    ] = None,
    value: Annotated[str | None, typer.Option(help="The target measure's new value.")] = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Record a check-in on an active goal you own (admins may check in for others)."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    checkin = services.check_in(
        membership,
        actor,
        goal_id,
        status=status,
        confidence=confidence,
        narrative=narrative,
        target_id=target,
        value=value,
    )
    console.print(
        f"Checked in on #{goal_id}: {checkin.get_status_display()}, confidence {checkin.confidence}/10."
    )


@goals_app.command("overdue")
def goals_overdue(
    product: ProductOpt = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only goals I own.")] = False,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Active goals whose check-in is overdue."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    if product is not None:
        services.get_product(membership, product)
    rows: list[dict[str, Any]] = [
        {
            "goal": o.goal.pk,
            "title": o.goal.title,
            "product": o.goal.product.name if o.goal.product else None,
            "owner": o.goal.owner.email if o.goal.owner else None,
            "last_checkin": o.last_checkin.isoformat() if o.last_checkin else None,
            "days_overdue": o.days_overdue,
        }
        for o in services.overdue_checkins(
            membership, product_id=product, owner_id=actor.pk if mine else None
        )
    ]
    if as_json:
        print_json(rows)
    elif not rows:
        console.print("No check-ins overdue.")
    else:
        show(
            table(
                "Overdue check-ins",
                ("Goal", "Product", "Owner", "Last check-in", "Days overdue"),
                (
                    (
                        f"#{r['goal']} {r['title']}",
                        r["product"] or "organisation",
                        r["owner"],
                        (r["last_checkin"] or "never")[:10],
                        r["days_overdue"],
                    )
                    for r in rows
                ),
            )
        )


# --- goals: co-authoring --------------------------------------------------------------------------


@goals_app.command("propose")
def goals_propose(
    goal_id: Annotated[int, typer.Argument(metavar="GOAL_ID", help="The goal's id.")],
    title: Annotated[str | None, typer.Option(help="Proposed title.")] = None,
    outcome: Annotated[str | None, typer.Option(help="Proposed outcome statement.")] = None,
    date: Annotated[
        str | None, typer.Option("--date", metavar="YYYY-MM-DD", help="Proposed target date.")
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", metavar="ID=VALUE", help="Proposed target value of a measure; repeatable."),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    org: Org = None,
    as_user: As = None,
) -> None:
    """Propose a change to a goal (anyone may; its owner accepts or rejects)."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    changes: dict[str, Any] = {
        k: v for k, v in {"title": title, "outcome": outcome, "target_date": date}.items() if v is not None
    }
    targets: dict[str, dict[str, str]] = {}
    for spec in target or []:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise click.UsageError(f"--target: '{spec}' is not ID=VALUE")
        targets[key.strip()] = {"target": value.strip()}
    if targets:
        changes["targets"] = targets
    if not changes:
        raise click.UsageError("nothing proposed: give --title, --outcome, --date or --target")
    proposal = services.propose_change(membership, actor, goal_id, changes, reason)
    console.print(f"Proposal #{proposal.pk} on goal #{goal_id} is open for its owner to decide.")


@goals_app.command("accept")
def goals_accept(
    proposal_id: Annotated[int, typer.Argument(metavar="PROPOSAL_ID", help="The proposal's id.")],
    reason: Annotated[str, typer.Option(help="A note on the decision.")] = "",
    org: Org = None,
    as_user: As = None,
) -> None:
    """Accept a change proposal (the goal's owner or an admin): the change is applied."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    proposal = services.decide_proposal(membership, actor, proposal_id, accept=True, reason=reason)
    console.print(f"Accepted proposal #{proposal.pk}; goal #{proposal.goal_id} is changed.")


@goals_app.command("reject")
def goals_reject(
    proposal_id: Annotated[int, typer.Argument(metavar="PROPOSAL_ID", help="The proposal's id.")],
    reason: Annotated[str, typer.Option(help="Why it is rejected (required).")] = "",
    org: Org = None,
    as_user: As = None,
) -> None:
    """Reject a change proposal (the goal's owner or an admin), saying why."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    proposal = services.decide_proposal(membership, actor, proposal_id, accept=False, reason=reason)
    console.print(f"Rejected proposal #{proposal.pk}.")


@goals_app.command("endorse")
def goals_endorse(
    goal_id: Annotated[int, typer.Argument(metavar="GOAL_ID", help="The goal's id.")],
    note: Annotated[str, typer.Option(help="Optional note.")] = "",
    org: Org = None,
    as_user: As = None,
) -> None:
    """Say you understand and support a goal."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    services.endorse(membership, actor, goal_id, note)
    console.print(f"You endorse goal #{goal_id}.")


@goals_app.command("concern")
def goals_concern(
    goal_id: Annotated[int, typer.Argument(metavar="GOAL_ID", help="The goal's id.")],
    note: Annotated[str, typer.Argument(help="The concern.")],
    org: Org = None,
    as_user: As = None,
) -> None:
    """Raise a concern about a goal (its owner is notified)."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    concern = services.raise_concern(membership, actor, goal_id, note)
    console.print(f"Concern #{concern.pk} raised on goal #{goal_id}.")


@goals_app.command("comment")
def goals_comment(
    goal_id: Annotated[int, typer.Argument(metavar="GOAL_ID", help="The goal's id.")],
    body: Annotated[str, typer.Argument(help="The comment; @e-mail mentions notify members.")],
    org: Org = None,
    as_user: As = None,
) -> None:
    """Comment on a goal."""
    membership, actor = identity(org, as_user)
    from truenorth.strategy import services

    comment = services.add_comment(membership, actor, goal_id, body)
    console.print(f"Comment #{comment.pk} added to goal #{goal_id}.")


# --- export and import ----------------------------------------------------------------------------

EXPORT_FORMATS = ("json", "yaml", "markdown")
EXTENSIONS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def export(
    product_id: Annotated[int, typer.Argument(metavar="PRODUCT_ID", help="The product's id.")],
    fmt: Annotated[str, typer.Option("--format", help="json, yaml or markdown.")] = "json",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Write here instead of stdout.")
    ] = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Export a product's goal tree (JSON or YAML to import elsewhere, or a Markdown archive)."""
    if fmt not in EXPORT_FORMATS:
        raise click.UsageError(f"--format: '{fmt}' is not one of {', '.join(EXPORT_FORMATS)}")
    membership, _ = identity(org, as_user)
    from truenorth.strategy import exchange

    if fmt == "markdown":
        text = exchange.to_markdown(membership, product_id)
    else:
        text = exchange.dump(exchange.export_tree(membership, product_id), fmt)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"-o: cannot write {output}: {exc.strerror}") from None
    console.print(f"Exported product #{product_id} to {escape(str(output))} ({fmt}).")


def _count(goals: list[dict[str, Any]]) -> dict[str, int]:
    totals = {"goals": 0, "archived": 0, "targets": 0, "observations": 0, "links": 0}
    stack = list(goals)
    while stack:
        goal = stack.pop()
        totals["goals"] += 1
        totals["archived"] += bool(goal.get("archived"))
        totals["links"] += len(goal.get("links") or [])
        for t in goal.get("targets") or []:
            totals["targets"] += 1
            totals["observations"] += len(t.get("observations") or [])
        stack.extend(goal.get("children") or [])
    return totals


def import_(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A goal tree exported as .json or .yaml.")],
    name: Annotated[str | None, typer.Option(help="Name of the new product (default: the file's).")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="json or yaml (default: from the file's extension).")
    ] = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Import a goal tree as a new product (all or nothing)."""
    fmt = fmt or EXTENSIONS.get(file.suffix.lower())
    if fmt not in ("json", "yaml"):
        raise click.UsageError(f"--format: give json or yaml (cannot tell from '{file.name}')")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise click.UsageError(f"FILE: cannot read {file}: {reason}") from None
    membership, actor = identity(org, as_user)
    from truenorth.strategy import exchange

    data = exchange.load(text, fmt)
    product = exchange.import_tree(membership, actor, data, name=name)
    n = _count(data.get("goals") or [])
    console.print(
        f"Imported “{escape(product.name)}” as product #{product.pk}: {n['goals']} goals "
        f"({n['archived']} archived), {n['targets']} targets, {n['observations']} observations, "
        f"{n['links']} links."
    )
