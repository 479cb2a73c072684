"""Engagement commands: `truenorth activity`, the organisation's activity feed."""

from __future__ import annotations

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


def activity(
    kind: Annotated[str | None, typer.Option(help="Only this kind of object, e.g. strategy.goal.")] = None,
    action: Annotated[str | None, typer.Option(help="created, updated, deleted or archived.")] = None,
    person: Annotated[str | None, typer.Option(metavar="EMAIL", help="Only what this member did.")] = None,
    goal: Annotated[
        int | None, typer.Option(metavar="ID", help="Only this goal (its targets, proposals).")
    ] = None,
    product: ProductOpt = None,
    limit: Annotated[int, typer.Option(help="How many entries (1 to 200).")] = 50,
    before: Annotated[str | None, typer.Option(help="The cursor printed after the previous page.")] = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """What happened in the organisation, newest first."""
    membership, _ = identity(org, as_user)
    from truenorth.engagement.services import activity as services

    filters = services.clean_filters(
        kind=kind, action=action, person=member_id(membership, person, "--person"), goal=goal, product=product
    )
    page = services.activity(membership, filters, before=before, limit=limit)
    rows: list[dict[str, Any]] = [
        {
            "id": e.entry.pk,
            "at": e.entry.at.isoformat(),
            "actor": e.entry.actor_name,
            "action": e.entry.action,
            "kind": e.entry.object_type,
            "object_id": e.entry.object_id,
            "object": e.entry.object_repr,
            "changes": e.entry.changes,
        }
        for e in page.entries
    ]
    if as_json:
        print_json({"entries": rows, "next": page.next_cursor})
        return
    if not rows:
        console.print("Nothing happened yet that matches.")
        return
    show(
        table(
            "Activity",
            ("When", "Who", "What", "Changed"),
            [
                (
                    r["at"][:16],
                    r["actor"],
                    f"{r['action']} {r['kind']} {r['object']}",
                    ", ".join(r["changes"]),
                )
                for r in rows
            ],
        )
    )
    if page.next_cursor:
        console.print(f"Older: --before {page.next_cursor}", markup=False, highlight=False)
