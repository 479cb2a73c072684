"""Delivery commands: metrics.

- `truenorth flow [--product ID] [--source NAME] [--since DATE] [--until DATE] [--json]`: cycle and lead time
  percentiles, throughput per week, WIP, flow efficiency, the oldest items in progress.
- `truenorth dora [--year YEAR] [--product ID] [--source NAME] [--since DATE] [--until DATE] [--json]`: the
  five DORA metrics with their performance bands (the report year's table; default the latest).
- `truenorth forecast --items N | --by DATE [--product ID] [--source NAME] [--json]`: Monte Carlo forecast
  at 50/85/95 % with its backtest.
- `truenorth forecast --goal GOAL_ID [--json]`: the goal's chance to finish its remaining work items by its
  target date, the 50/85/95 % dates, the verdict and the backtest (or why there is no forecast).

The CLI computes directly (no background job), with a progress bar on a terminal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from truenorth.orgs.commandline import As, Json, Org, ProductOpt, console, identity, print_json, show, table

if TYPE_CHECKING:
    from truenorth.delivery.services.metrics import Scope
    from truenorth.orgs.models import Membership

SourceOpt = Annotated[str | None, typer.Option("--source", metavar="NAME", help="Only this delivery source.")]
Since = Annotated[
    dt.datetime | None,
    typer.Option("--since", formats=["%Y-%m-%d"], metavar="DATE", help="First day (default: 90 days ago)."),
]
Until = Annotated[
    dt.datetime | None,
    typer.Option("--until", formats=["%Y-%m-%d"], metavar="DATE", help="Last day (default: today)."),
]


def _scope(membership: Membership, product: int | None, source: str | None) -> Scope:
    from truenorth.core.errors import ValidationFailed
    from truenorth.delivery.models import DeliverySource
    from truenorth.delivery.services.metrics import Scope

    source_id = None
    if source is not None:
        found = (
            DeliverySource.objects.filter(
                organisation_id=membership.organisation_id, name__iexact=source.strip()
            )
            .values_list("pk", flat=True)
            .first()
        )
        if found is None:
            raise ValidationFailed(f"No delivery source called “{source}”.", field="--source")
        source_id = found
    return Scope(product_id=product, source_id=source_id)


def _with_progress(label: str, work: Callable[[Callable[[int, int], None]], Any]) -> Any:
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return work(advance)


def _report(
    org: str | None,
    as_user: str | None,
    product: int | None,
    source: str | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    year: int | None,
) -> dict[str, Any]:
    membership, _ = identity(org, as_user)
    from truenorth.delivery.services import metrics as services

    scope = _scope(membership, product, source)
    start, end = services.window(since.date() if since else None, until.date() if until else None)
    services.check_year(year)
    return dict(
        _with_progress(
            "Computing",
            lambda advance: services.report(
                membership, scope, start=start, end=end, year=year, progress=advance
            ),
        )
    )


def flow(
    product: ProductOpt = None,
    source: SourceOpt = None,
    since: Since = None,
    until: Until = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Flow metrics: cycle and lead time (50/85/95), throughput per week, WIP, flow efficiency."""
    data = _report(org, as_user, product, source, since, until, None)
    data.pop("dora", None)
    if as_json:
        print_json(data)
        return
    f = data["flow"]
    show(
        table(
            f"Flow {data['start'][:10]} to {data['end'][:10]}",
            ("Measure", "50%", "85%", "95%"),
            [
                ("Cycle time (days)", *f["cycle_time_days"].values()),
                ("Lead time (days)", *f["lead_time_days"].values()),
            ],
        )
    )
    efficiency = "—" if f["flow_efficiency"] is None else f"{round(f['flow_efficiency'] * 100)} %"
    console.print(
        f"Done: {f['completed_count']} ({f['never_started']} never started) · WIP: {f['wip']} · "
        f"Flow efficiency: {efficiency}",
        markup=False,
        highlight=False,
    )
    weeks = f["throughput_per_week"]
    if weeks:
        console.print("Throughput per week: " + " ".join(str(w["items"]) for w in weeks), markup=False)
    if f["ages"]:
        show(
            table(
                "Oldest items in progress",
                ("Item", "State", "Age (days)"),
                ((a["id"], a["state"], a["age_days"]) for a in f["ages"][:10]),
            )
        )


def dora(
    year: Annotated[
        int | None, typer.Option("--year", help="DORA report year of the bands (default: latest).")
    ] = None,
    product: ProductOpt = None,
    source: SourceOpt = None,
    since: Since = None,
    until: Until = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """DORA metrics with their performance bands."""
    from truenorth.delivery.services.metrics import METRIC_LABELS

    data = _report(org, as_user, product, source, since, until, year)
    data.pop("flow", None)
    if as_json:
        print_json(data)
        return
    d = data["dora"]
    rows = []
    for key, (label, unit) in METRIC_LABELS.items():
        metric = d["metrics"][key]
        value = metric["value"]
        shown = (
            "—" if value is None else (f"{round(value * 100, 1)} %" if unit == "%" else f"{value:g} {unit}")
        )
        rows.append((label, shown, metric["band"] or "—"))
    show(
        table(
            f"DORA {data['start'][:10]} to {data['end'][:10]} ({d['year']} bands)",
            ("Metric", "Value", "Band"),
            rows,
        )
    )
    console.print(
        f"{d['deployments']} production deployments, {d['failed_deployments']} failed; "
        f"{d['open_incidents']} incidents open.",
        markup=False,
    )


def forecast(
    items: Annotated[int | None, typer.Option("--items", help="When will this many items be done?")] = None,
    by: Annotated[
        dt.datetime | None,
        typer.Option("--by", formats=["%Y-%m-%d"], metavar="DATE", help="How many items by this date?"),
    ] = None,
    product: ProductOpt = None,
    source: SourceOpt = None,
    goal: Annotated[
        int | None,
        typer.Option(
            "--goal", metavar="GOAL_ID", help="Will this goal's remaining work be done by its target date?"
        ),
    ] = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Monte Carlo forecast from daily throughput (50/85/95 %), with its backtest; or a goal's forecast
    against its target date (--goal)."""
    membership, _ = identity(org, as_user)
    from truenorth.core.errors import ValidationFailed
    from truenorth.delivery.services import metrics as services

    if goal is not None:
        if items is not None or by is not None or product is not None or source is not None:
            raise ValidationFailed(
                "--goal forecasts the goal's own remaining work by its target date: "
                "leave out --items, --by, --product and --source.",
                field="--goal",
            )
        _goal_forecast(membership, goal, as_json)
        return
    day = by.date() if by else None
    try:
        services.check_forecast(items, day)
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, field=f"--{exc.field}") from None
    scope = _scope(membership, product, source)

    def work(advance: Callable[[int, int], None]) -> Any:
        advance(0, 1)
        if day is not None:
            result = services.forecast_items_by(membership, **vars(scope), by=day)
        else:
            assert items is not None
            result = services.forecast_when(membership, **vars(scope), items=items)
        advance(1, 1)
        return result

    try:
        out = services.forecast_out(_with_progress("Simulating", work))
    except ValidationFailed as exc:
        raise ValidationFailed(exc.message, field=f"--{exc.field}") from None
    if as_json:
        print_json({"scope": scope.params(), "forecast": out})
        return
    question = (
        f"Items done by {out['by']}"
        if out["question"] == "how_many"
        else f"Days until {items} items are done"
    )
    show(table(question, ("50%", "85%", "95%"), [tuple(f"{v:g}" for v in out["percentiles"].values())]))
    test = out["backtest"]
    if test:
        console.print(
            f"Backtest: the 85% figure held in {test['held_85']} of {test['forecasts']} past forecasts "
            f"({test['horizon_days']}-day horizon).",
            markup=False,
        )
    else:
        console.print("Not enough history to backtest this forecast.")


def _goal_forecast(membership: Membership, goal_id: int, as_json: bool) -> None:
    from truenorth.core.errors import ValidationFailed
    from truenorth.delivery.services import goal_forecasts

    if not 1 <= goal_id <= 2**63 - 1:
        raise ValidationFailed("No such goal.", field="--goal")
    found = goal_forecasts.forecast_goal(membership, goal_id)
    out = goal_forecasts.goal_forecast_out(found)
    if as_json:
        print_json(out)
        return
    console.print(f"{found.title} — target date {out['target_date'] or 'none'}", markup=False)
    if not found.forecast:
        console.print(f"{found.verdict_label}: {found.reason}", markup=False)
        return
    console.print(
        f"{found.verdict_label}: {found.percent} % chance to finish the {found.remaining} "
        f"remaining work items (of {found.total_items}) by {out['target_date']}.",
        markup=False,
    )
    show(
        table(
            f"{found.remaining} items done by",
            ("50%", "85%", "95%"),
            [tuple(v or "later than 3 years" for v in out["dates"].values())],
        )
    )
    if found.backtest is not None:
        console.print(f"Backtest: {found.backtest.text}.", markup=False)
    else:
        console.print("Not enough history to backtest this forecast.")
