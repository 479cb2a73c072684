"""Vision commands: `truenorth goals target-add|target-update`: a goal's target measures."""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer
from rich.markup import escape

from truenorth.orgs.commandline import As, Org, Version, console, identity
from truenorth.strategy.cli.apps import goals_app

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
