"""Delivery commands: process changes tested as experiments (`truenorth delivery change …`).

- `add --title TEXT --date YYYY-MM-DD --product ID|NAME [--team ID] [--before DAYS] [--after DAYS]`: mark a
  change (recorded as a hypothesis of the product);
- `list [--product ID|NAME] [--json]`;
- `compare ID [--json]`: compare flow and DORA before and after (a rich table; a large scope is queued as
  a background job);
- `decide ID persevere|pivot|stop --learning TEXT [--outcome …]`: conclude its hypothesis.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from truenorth.orgs.commandline import As, Json, Org, console, identity, print_json, show, table

app = typer.Typer(
    help="Process changes tested as experiments: add, list, compare, decide.", no_args_is_help=True
)

Product = Annotated[str, typer.Option("--product", metavar="ID|NAME", help="The product (id or name).")]


def _num(value: Any, kind: str = "difference") -> str:
    if value is None:
        return "—"
    return f"\u00d7{value:.2f}" if kind == "ratio" else f"{value:.2f}"


def _change_json(change: Any) -> dict[str, Any]:
    return {
        "id": change.pk,
        "title": change.title,
        "product": change.product.name,
        "team": change.team.name if change.team else None,
        "changed_on": change.changed_on.isoformat(),
        "before_days": change.before_days,
        "after_days": change.after_days,
        "hypothesis_id": change.hypothesis_id,
        "computed_at": change.computed_at.isoformat() if change.computed_at else None,
        "comparison": change.comparison or {},
        "version": change.version,
    }


@app.command("add")
def add(
    title: Annotated[str, typer.Option("--title", help="What changed.")],
    date: Annotated[str, typer.Option("--date", metavar="YYYY-MM-DD", help="When it changed.")],
    product: Product,
    description: Annotated[str, typer.Option("--description")] = "",
    team: Annotated[
        int | None, typer.Option("--team", metavar="ID", help="Only this team's sources.")
    ] = None,
    before: Annotated[int, typer.Option("--before", help="Days before the change.")] = 42,
    after: Annotated[int, typer.Option("--after", help="Days after the change.")] = 42,
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """Mark a process change; it is recorded as a hypothesis of the product."""
    membership, actor = identity(org, as_user)
    from truenorth.delivery.services import process

    found = process.product_named(membership, product)
    change = process.create_change(
        membership,
        actor,
        product_id=found.pk,
        title=title,
        changed_on=date,
        description=description,
        team_id=team,
        before_days=before,
        after_days=after,
    )
    if as_json:
        print_json(_change_json(change))
        return
    console.print(
        f"Marked process change #{change.pk} “{change.title}” (hypothesis #{change.hypothesis_id})."
    )


@app.command("list")
def list_changes(
    product: Annotated[str | None, typer.Option("--product", metavar="ID|NAME")] = None,
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """The organisation's process changes, newest first."""
    membership, _ = identity(org, as_user)
    from truenorth.delivery.services import process

    product_id = process.product_named(membership, product).pk if product else None
    rows = list(process.changes_of(membership, product_id)[:500])
    if as_json:
        print_json([_change_json(c) for c in rows])
        return
    show(
        table(
            "Process changes",
            ("ID", "Changed on", "Title", "Product", "Compared", "Hypothesis"),
            (
                (
                    c.pk,
                    c.changed_on.isoformat(),
                    c.title,
                    c.product.name,
                    c.computed_at.strftime("%Y-%m-%d %H:%M") if c.computed_at else "not yet",
                    f"#{c.hypothesis_id} {c.hypothesis.state}" if c.hypothesis else "—",
                )
                for c in rows
            ),
        )
    )


@app.command("compare")
def compare(
    change_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**63 - 1)],
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """Compare flow and DORA before and after the change (stored on it)."""
    membership, actor = identity(org, as_user)
    from truenorth.delivery.services import process
    from truenorth.jobs.models import Job

    out = process.compare_change(membership, actor, change_id)
    if isinstance(out, Job):
        console.print(f"Too large to compare here: queued as background job #{out.pk} ({out.status}).")
        return
    comparison = out.comparison
    if as_json:
        print_json(_change_json(out))
        return
    show(
        table(
            f"{out.title}: before and after {out.changed_on.isoformat()}",
            ("Measure", "Before", "After", "Effect", "95 % interval", "Verdict", "n before/after"),
            (
                (
                    f"{e['label']} ({e['unit']})",
                    _num(e["before"]),
                    _num(e["after"]),
                    _num(e["effect"], e["effect_kind"]),
                    "—"
                    if e["low"] is None
                    else f"{_num(e['low'], e['effect_kind'])} to {_num(e['high'], e['effect_kind'])}",
                    e["verdict"] + (f": {e['reason']}" if e["reason"] else ""),
                    f"{e['n_before']}/{e['n_after']}",
                )
                for e in comparison["effects"]
            ),
        )
    )
    partial = " (the after window is still running)" if comparison["after"]["partial"] else ""
    console.print(f"Suggested outcome: {comparison['outcome']}{partial}.")


@app.command("decide")
def decide(
    change_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**63 - 1)],
    decision: Annotated[str, typer.Argument(metavar="persevere|pivot|stop")],
    learning: Annotated[str, typer.Option("--learning", help="What we learned.")],
    outcome: Annotated[
        str | None, typer.Option("--outcome", metavar="validated|invalidated|inconclusive")
    ] = None,
    next_step: Annotated[str, typer.Option("--next", help="Therefore we will …")] = "",
    org: Org = None,
    as_user: As = None,
) -> None:
    """Record the decision on the change's hypothesis (it is concluded like any other)."""
    membership, actor = identity(org, as_user)
    from truenorth.delivery.services import process

    made = process.decide(
        membership,
        actor,
        change_id,
        decision=decision,
        learning=learning,
        outcome=outcome,
        next_step=next_step,
    )
    console.print(f"Decision recorded: {made.decision} ({made.outcome}) on hypothesis #{made.hypothesis_id}.")
