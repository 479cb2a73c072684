"""Vision commands: `truenorth goals checkin|overdue`: check-ins."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from truenorth.orgs.commandline import As, Json, Org, ProductOpt, console, identity, print_json, show, table
from truenorth.strategy.cli.apps import goals_app


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
