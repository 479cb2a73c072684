"""Vision commands: `truenorth products list|create`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from truenorth.orgs.commandline import As, Json, Org, console, identity, member_id, print_json, show, table
from truenorth.strategy.cli.apps import products_app


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
