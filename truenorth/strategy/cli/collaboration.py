"""Vision commands: `truenorth goals propose|accept|reject|endorse|concern|comment`: co-authoring."""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer

from truenorth.orgs.commandline import As, Org, console, identity
from truenorth.strategy.cli.apps import goals_app


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
