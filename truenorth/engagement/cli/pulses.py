"""Engagement commands: `truenorth pulse send|list|results`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from truenorth.orgs.commandline import As, Json, Org, console, identity, percent, print_json, show, table

pulse_app = typer.Typer(
    name="pulse",
    help="Alignment pulses: open due rounds now (sending the invitations), list pulses, show results.",
    no_args_is_help=True,
    add_completion=False,
)


def _num(value: float | None, digits: int = 1) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


@pulse_app.command("send")
def pulse_send(
    pulse: Annotated[
        int | None,
        typer.Option("--pulse", metavar="ID", help="Open this pulse's next round now, due or not."),
    ] = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Open the organisation's due rounds now and send their invitations (or one pulse's, with --pulse)."""
    membership, user = identity(org, as_user)
    from rich.progress import Progress

    from truenorth.core.errors import DomainError
    from truenorth.engagement.models import PulseRound
    from truenorth.engagement.services import pulses as services
    from truenorth.orgs.services import require_writer

    require_writer(membership)
    opened: list[PulseRound] = []
    if pulse is not None:
        services.check_can_open(membership, pulse)
        rnd, _ = services.open_round_now(membership, user, pulse)
        opened.append(rnd)
    else:
        services.close_expired_rounds()
        due = list(services.due_pulses().filter(organisation_id=membership.organisation_id))
        with Progress(console=console, transient=as_json, disable=as_json) as bar:
            task = bar.add_task("Opening rounds", total=len(due))
            for item in due:
                try:
                    rnd, _ = services.open_round_now(membership, user, item.pk)
                    opened.append(rnd)
                except DomainError as exc:  # one pulse's refusal does not stop the others
                    console.print(f"[yellow]{item.title}: {exc.message}[/]")
                bar.advance(task)
    rows = [
        {
            "pulse": r.pulse_id,
            "title": r.pulse.title,
            "round": r.number,
            "invited": r.invitations.count(),
            "closes_at": r.closes_at.isoformat(),
        }
        for r in opened
    ]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No round was due.")
        return
    show(
        table(
            "Rounds opened",
            ("Pulse", "Title", "Round", "Invited", "Closes"),
            ((r["pulse"], r["title"], r["round"], r["invited"], r["closes_at"]) for r in rows),
        )
    )


@pulse_app.command("list")
def pulse_list(as_json: Json = False, org: Org = None, as_user: As = None) -> None:
    """List the organisation's pulses with their latest index."""
    membership, _ = identity(org, as_user)
    from truenorth.engagement.services import pulse_results as results
    from truenorth.engagement.services import pulses as services

    rows: list[dict[str, Any]] = []
    for p in services.pulses_of(membership):
        trend = results.trend(membership, p.pk)
        latest = trend[-1] if trend else None
        rows.append(
            {
                "id": p.pk,
                "title": p.title,
                "product": p.product.name,
                "cadence_days": p.cadence_days,
                "active": p.active,
                "next_run_at": p.next_run_at.isoformat() if p.next_run_at else None,
                "rounds": len(trend),
                "latest_index": latest.index if latest else None,
                "latest_hidden": latest.hidden if latest else None,
            }
        )
    if as_json:
        print_json(rows)
        return
    show(
        table(
            "Alignment pulses",
            ("ID", "Title", "Product", "Every (days)", "Active", "Next round", "Rounds", "Latest index"),
            (
                (
                    r["id"],
                    r["title"],
                    r["product"],
                    r["cadence_days"] or "once",
                    "yes" if r["active"] else "no",
                    r["next_run_at"],
                    r["rounds"],
                    "hidden" if r["latest_hidden"] else _num(r["latest_index"]),
                )
                for r in rows
            ),
        )
    )


@pulse_app.command("results")
def pulse_results(
    pulse_id: Annotated[int, typer.Argument(metavar="ID", help="The pulse.")],
    round_number: Annotated[
        int | None, typer.Option("--round", metavar="N", help="This round (default: the latest).")
    ] = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """A pulse's round results (hidden below the minimum group size) and its trend."""
    membership, _ = identity(org, as_user)
    from truenorth.core.errors import NotFound
    from truenorth.engagement.services import pulse_results as results
    from truenorth.engagement.services import pulses as services

    pulse = services.get_pulse(membership, pulse_id)
    rounds = pulse.rounds.order_by("number")
    rnd = rounds.filter(number=round_number).first() if round_number is not None else rounds.last()
    if rnd is None:
        raise NotFound(
            "No such round." if round_number is not None else "This pulse has no round yet.", "--round"
        )
    r = results.round_results(membership, rnd.pk)
    parts = r.figures.components
    data: dict[str, Any] = {
        "pulse": pulse.pk,
        "title": pulse.title,
        "round": rnd.number,
        "goal_statement": rnd.goal_statement,
        "invited": r.figures.invited,
        "responses": r.figures.responses,
        "response_rate": r.figures.response_rate,
        "hidden": r.hidden,
        "index": parts.index,
        "clarity": parts.clarity,
        "commitment": parts.commitment,
        "similarity": parts.similarity,
        "groups": [
            {
                "name": g.name,
                "responses": g.responses,
                "hidden": g.hidden,
                "clarity_mean": g.clarity.mean if g.clarity else None,
                "commitment_mean": g.commitment.mean if g.commitment else None,
                "index": g.index,
            }
            for g in r.groups
        ],
        "divergent": [{"own_words": d.own_words, "similarity": d.similarity} for d in r.divergent],
        "trend": [
            {"round": t.number, "index": t.index, "response_rate": t.response_rate, "hidden": t.hidden}
            for t in results.trend(membership, pulse.pk)
        ],
    }
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{pulse.title}[/], round {rnd.number}: “{rnd.goal_statement}”")
    console.print(
        f"{r.figures.responses} answers of {r.figures.invited} invited ({percent(r.figures.response_rate)})"
    )
    if r.hidden:
        console.print(f"Results {r.note}.")
    else:
        console.print(
            f"Alignment index {_num(parts.index)} (clarity {_num(parts.clarity, 2)}, "
            f"commitment {_num(parts.commitment, 2)}, similarity {_num(parts.similarity, 2)})"
        )
        show(
            table(
                "By team or department",
                ("Group", "Answers", "Clarity", "Commitment", "Index"),
                (
                    (g["name"], g["responses"], "hidden", "hidden", "hidden")
                    if g["hidden"]
                    else (
                        g["name"],
                        g["responses"],
                        _num(g["clarity_mean"], 2),
                        _num(g["commitment_mean"], 2),
                        _num(g["index"]),
                    )
                    for g in data["groups"]
                ),
            )
        )
        show(
            table(
                "Answers furthest from the goal",
                ("Similarity", "Answer"),
                ((f"{d['similarity']:.2f}", d["own_words"]) for d in data["divergent"]),
            )
        )
    show(
        table(
            "Trend",
            ("Round", "Index", "Response rate"),
            (
                (t["round"], "hidden" if t["hidden"] else _num(t["index"]), percent(t["response_rate"]))
                for t in data["trend"]
            ),
        )
    )
