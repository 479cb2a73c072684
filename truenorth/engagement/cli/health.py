"""Engagement commands: `truenorth health [--save] [--json]`, the alignment health check."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from truenorth.orgs.commandline import As, Json, Org, console, identity, print_json, show, table


def health(
    save: Annotated[bool, typer.Option("--save", help="Save the assessment (for the trend).")] = False,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """The alignment health check: scores per area, the trend since the last saved one, next steps."""
    membership, actor = identity(org, as_user)
    from truenorth.engagement import healthrules
    from truenorth.engagement.api.health import check_out
    from truenorth.engagement.services import health as services

    if save:
        services.save_assessment(membership, actor)
    check = services.current(membership)
    data: dict[str, Any] = check_out(check)
    data["saved"] = save
    if as_json:
        print_json(data)
        return
    show(
        table(
            "Alignment health check",
            ("Area", "Score", "Since last"),
            [
                (
                    healthrules.AREA_LABELS.get(k, "Overall"),
                    "—" if v is None else v,
                    "—" if check.trend.get(k) is None else f"{check.trend[k]:+d}",
                )
                for k, v in check.scores.items()
            ],
        )
    )
    if not check.next_steps:
        console.print("No next step: nothing the rules can see to improve.")
    for i, s in enumerate(check.next_steps, 1):
        console.print(f"{i}. {s.text} (+{s.gain:g} points) {s.url}", markup=False, highlight=False)
    if save:
        console.print("Saved.")
