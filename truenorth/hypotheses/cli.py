"""Validation commands: `truenorth hypotheses list|show|create|move|rank|conclude` and `truenorth learnings`.

Registered on the main app in truenorth/cli.py; same conventions as strategy/cli/ (`--org`/`--as`,
one-line errors with exit code 2). Commands only parse and print; hypotheses.services does the work.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from truenorth.core.validate import choice
from truenorth.orgs.commandline import As, Json, Org, Version, identity, member_id, print_json, show, table
from truenorth.stats.engine import format_p_value

hypotheses_app = typer.Typer(
    name="hypotheses",
    help="Hypotheses: the board, ranking, lifecycle moves and decisions.",
    no_args_is_help=True,
    add_completion=False,
)

ProductArg = Annotated[int, typer.Option("--product", metavar="ID", help="The product.")]


def _row(h: Any) -> dict[str, Any]:
    from truenorth.hypotheses.schemas import hypothesis_out

    data = hypothesis_out(h)
    return {**data, "owner": data["owner"]["email"] if data["owner"] else None}


@hypotheses_app.command("list")
def hypotheses_list(
    product: ProductArg,
    state: Annotated[str | None, typer.Option("--state", help="draft, ready, testing or concluded.")] = None,
    goal: Annotated[
        int | None, typer.Option("--goal", metavar="ID", help="Only hypotheses serving this goal.")
    ] = None,
    q: Annotated[str, typer.Option("--q", help="Text in the title, capability or outcome.")] = "",
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """A product's hypotheses by lifecycle column."""
    membership, _ = identity(org, as_user)
    from truenorth.hypotheses import services

    columns = services.board(membership, product, goal_id=goal, q=q)
    if state is not None and state not in columns:
        choice(state, columns, "--state")
    rows = [_row(h) for s in ([state] if state else columns) for h in columns[s]]
    if as_json:
        print_json(rows)
        return
    show(
        table(
            "Hypotheses",
            ("ID", "State", "Hypothesis", "Goal", "Owner", "Measurable"),
            (
                (r["id"], r["state"], r["title"], r["goal"], r["owner"], "yes" if r["measurable"] else "NO")
                for r in rows
            ),
        )
    )


@hypotheses_app.command("show")
def hypotheses_show(
    hypothesis_id: Annotated[int, typer.Argument(metavar="ID")],
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """One hypothesis as a Test Card (and a Learning Card once concluded)."""
    membership, _ = identity(org, as_user)
    from truenorth.hypotheses.schemas import hypothesis_detail_out

    data = hypothesis_detail_out(membership, hypothesis_id)
    if as_json:
        print_json(data)
        return
    h = data
    lines = [
        f"#{h['id']} {h['title']} [{h['state']}] (version {h['version']})",
        f"We believe that {h['capability'] or '[capability]'} for {h['who'] or '[who]'} "
        f"will result in {h['outcome'] or '[outcome]'}.",
        f"Metric: {h['metric_name'] or h['measure'] or '[measure]'} from {h['baseline']} to {h['target']}"
        f" by {h['by_date'] or '[date]'}",
        "Scores: "
        + ", ".join(f"{k.upper()} {'—' if v is None else f'{v:g}'}" for k, v in h["scores"].items()),
    ]
    for e in h["experiments"]:
        variations = ", ".join(f"{v['name']} {v['allocation']:g}" for v in e["variations"])
        lines.append(f"Experiment #{e['id']} {e['name']} ({e['kind']}, {e['state']}): {variations}")
    d = h["decision"]
    if d:
        lines += [
            f"Decision: {d['outcome']}, {d['decision']}",
            f"We observed: {d['observed'] or '—'}",
            f"We learned: {d['learning']}",
            f"Therefore we will: {d['next_step'] or '—'}",
        ]
    typer.echo("\n".join(lines))


@hypotheses_app.command("create")
def hypotheses_create(
    product: ProductArg,
    title: Annotated[str, typer.Option("--title", help="A short name.")],
    goal: Annotated[int | None, typer.Option("--goal", metavar="ID", help="The goal it serves.")] = None,
    capability: Annotated[str, typer.Option("--capability", help="We believe that …")] = "",
    who: Annotated[str, typer.Option("--who", help="for …")] = "",
    outcome: Annotated[str, typer.Option("--outcome", help="will result in …")] = "",
    measure: Annotated[
        int | None, typer.Option("--measure", metavar="ID", help="A measure it moves.")
    ] = None,
    metric: Annotated[str, typer.Option("--metric", help="Or a metric by name.")] = "",
    baseline: Annotated[float | None, typer.Option("--baseline")] = None,
    target: Annotated[float | None, typer.Option("--target")] = None,
    by: Annotated[str | None, typer.Option("--by", metavar="YYYY-MM-DD", help="By this date.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", metavar="EMAIL")] = None,
    impact: Annotated[int | None, typer.Option("--impact", help="1 to 10.")] = None,
    confidence: Annotated[int | None, typer.Option("--confidence", help="1 to 10.")] = None,
    ease: Annotated[int | None, typer.Option("--ease", help="1 to 10.")] = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Write a hypothesis (it starts in draft)."""
    membership, user = identity(org, as_user)
    from truenorth.hypotheses import services
    from truenorth.hypotheses.schemas import hypothesis_detail_out

    made = services.create_hypothesis(
        membership,
        user,
        product,
        title=title,
        goal_id=goal,
        capability=capability,
        who=who,
        outcome=outcome,
        measure_id=measure,
        metric_name=metric,
        baseline=baseline,
        target=target,
        by_date=by,
        owner_id=member_id(membership, owner, "--owner") if owner else user.pk,
        impact=impact,
        confidence=confidence,
        ease=ease,
    )
    if as_json:
        print_json(hypothesis_detail_out(membership, made.pk))
        return
    typer.echo(f"Created hypothesis #{made.pk} “{made.title}” (draft).")


@hypotheses_app.command("move")
def hypotheses_move(
    hypothesis_id: Annotated[int, typer.Argument(metavar="ID")],
    state: Annotated[str, typer.Argument(metavar="STATE", help="draft, ready or testing.")],
    version: Version = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Move a hypothesis along its lifecycle (the rules are the board's)."""
    membership, user = identity(org, as_user)
    from truenorth.hypotheses import services

    moved = services.move_hypothesis(membership, user, hypothesis_id, state, version=version)
    typer.echo(f"#{moved.pk} “{moved.title}” is now {moved.state}.")


@hypotheses_app.command("rank")
def hypotheses_rank(
    product: ProductArg,
    method: Annotated[str, typer.Option("--method", help="ice, rice, wsjf or cd3.")] = "ice",
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """A product's open hypotheses by the chosen score, highest first."""
    membership, _ = identity(org, as_user)
    from truenorth.hypotheses import services

    rows = [
        {"rank": i, "score": score, "id": h.pk, "title": h.title, "state": h.state}
        for i, (h, score) in enumerate(services.ranked(membership, product, method), 1)
    ]
    if as_json:
        print_json(rows)
        return
    show(
        table(
            f"Ranked by {method.upper()}",
            ("#", "Score", "ID", "Hypothesis", "State"),
            (
                (r["rank"], "—" if r["score"] is None else f"{r['score']:g}", r["id"], r["title"], r["state"])
                for r in rows
            ),
        )
    )


@hypotheses_app.command("conclude")
def hypotheses_conclude(
    hypothesis_id: Annotated[int, typer.Argument(metavar="ID")],
    outcome: Annotated[str, typer.Option("--outcome", help="validated, invalidated or inconclusive.")],
    decision: Annotated[str, typer.Option("--decision", help="persevere, pivot or stop.")],
    learning: Annotated[str, typer.Option("--learning", help="We learned … (required).")],
    observed: Annotated[str, typer.Option("--observed", help="We observed …")] = "",
    next_step: Annotated[str, typer.Option("--next", help="Therefore we will …")] = "",
    version: Version = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Conclude a tested hypothesis with an outcome, a decision and a learning note."""
    membership, user = identity(org, as_user)
    from truenorth.hypotheses import services

    made = services.conclude(
        membership,
        user,
        hypothesis_id,
        outcome=outcome,
        decision=decision,
        learning=learning,
        observed=observed,
        next_step=next_step,
        version=version,
    )
    typer.echo(f"Concluded #{hypothesis_id}: {made.outcome}, {made.decision}.")


def learnings(
    q: Annotated[str, typer.Option("--q", help="Words to search for.")] = "",
    product: Annotated[int | None, typer.Option("--product", metavar="ID", help="Only this product.")] = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Search the learning log: what each concluded hypothesis taught us."""
    membership, _ = identity(org, as_user)
    from truenorth.hypotheses import services
    from truenorth.hypotheses.schemas import decision_out

    rows = [decision_out(d) for d in services.learnings(membership, product, q)[:1000]]
    if as_json:
        print_json(rows)
        return
    show(
        table(
            "Learning log",
            ("Date", "Hypothesis", "Outcome", "Decision", "Learned"),
            (
                (r["decided_at"].date(), r["hypothesis_title"], r["outcome"], r["decision"], r["learning"])
                for r in rows
            ),
        )
    )


POWER_OPTIONS = {
    "baseline_rate": "--rate",
    "baseline_mean": "--mean",
    "baseline_sd": "--sd",
    "daily_traffic": "--daily",
}


def power(
    mde: Annotated[float, typer.Option("--mde", help="Minimum detectable effect (0.05: a 5 % lift).")],
    rate: Annotated[
        float | None, typer.Option("--rate", help="Baseline conversion rate, 0..1 (proportion metrics).")
    ] = None,
    mean: Annotated[float | None, typer.Option("--mean", help="Baseline mean (mean metrics).")] = None,
    sd: Annotated[
        float | None, typer.Option("--sd", help="Per-unit standard deviation (mean metrics).")
    ] = None,
    absolute: Annotated[bool, typer.Option("--absolute", help="The MDE is an absolute change.")] = False,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level, in (0, 0.5].")] = 0.05,
    power_: Annotated[float, typer.Option("--power", help="Power, in (0, 1).")] = 0.8,
    variations: Annotated[int, typer.Option("--variations", help="Variations, the control included.")] = 2,
    daily: Annotated[
        float | None, typer.Option("--daily", help="Units entering per day (prints the days needed).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Power calculator: units per variation to detect the MDE (no server or database needed)."""
    from truenorth.core.errors import ValidationFailed
    from truenorth.hypotheses import planning

    try:
        plan = planning.plan_sample_size(
            metric_kind="proportion" if sd is None and mean is None else "mean",
            baseline_rate=rate,
            baseline_mean=mean,
            baseline_sd=sd,
            mde=mde,
            relative=not absolute,
            alpha=alpha,
            power=power_,
            variations=variations,
            daily_traffic=daily,
        )
    except ValidationFailed as exc:  # name the option, not the service's field
        field = exc.field or ""
        raise ValidationFailed(exc.message, field=POWER_OPTIONS.get(field, f"--{field}")) from None
    if as_json:
        print_json(plan.as_dict())
        return
    effect = f"{plan.mde:g} absolute" if not plan.relative else f"{plan.mde:.4g} relative ({plan.mde:.2%})"
    typer.echo(
        f"{plan.metric_kind.capitalize()} metric, MDE {effect}, alpha {plan.alpha:g}, power {plan.power:g}, "
        f"{plan.variations} variations."
    )
    typer.echo(f"Units per variation: {', '.join(f'{n:,}' for n in plan.per_variation)}")
    typer.echo(f"Total units: {plan.total:,}")
    if plan.days is not None:
        typer.echo(f"Days needed at {plan.daily_traffic:g} units a day: {plan.days:,}")


@hypotheses_app.command("results")
def hypotheses_results(
    experiment_id: Annotated[int, typer.Argument(metavar="EXPERIMENT_ID")],
    method: Annotated[
        str, typer.Option("--method", help="frequentist, sequential or bayesian.")
    ] = "frequentist",
    correction: Annotated[str, typer.Option("--correction", help="holm, bh or none.")] = "holm",
    family: Annotated[
        str,
        typer.Option(
            "--family", help="role (correct within primary, secondary and guardrail metrics) or all."
        ),
    ] = "role",
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Compute an experiment's results from its raw events (stored as a new snapshot) and print them."""
    membership, user = identity(org, as_user)
    from truenorth.hypotheses import results

    made = results.compute_results(
        membership,
        user,
        experiment_id,
        method=method,
        correction=None if correction == "none" else correction,
        family=family,
    )
    if as_json:
        print_json({"id": made.pk, "method": made.method, "results": made.results})
        return
    srm = made.results.get("srm", {})
    typer.echo(
        f"Snapshot #{made.pk}: {made.method}; data up to {made.results.get('freshness') or 'unknown'}; "
        f"units {srm.get('units')}."
    )
    if made.results.get("correction_applied"):
        typer.echo(f"Correction: {made.results['correction_applied']}")
    if srm.get("mismatch"):
        typer.echo(f"Warning: sample ratio mismatch ({format_p_value(float(srm['p_value']))}).")
    for row in made.results.get("rows", []):
        guard = f" [guardrail {row['guardrail']}]" if row.get("guardrail") else ""
        typer.echo(f"- {row['metric']} ({row['role']}){guard}: {row['sentence']}")
