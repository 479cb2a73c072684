"""Value commands: `truenorth measure list`, `push`, `import`, `export` (`refresh` is in cli_jobs.py).

Registered on the main app in truenorth/cli.py as `truenorth measure`. Identity (`--org`/`--as`) works
as for the Vision commands (truenorth/strategy/cli/). Commands only parse and print; measures.services
and measures.imports do the work. Exit codes: 0 done; 2 bad usage or input (one line on stderr).
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from truenorth.orgs.commandline import As, Json, Org, ProductOpt, console, identity, print_json, show, table

measure_app = typer.Typer(
    name="measure",
    help="Value: measures and their observations: list, push, import, export, refresh.",
    no_args_is_help=True,
    add_completion=False,
)

EXPORT_FORMATS = ("csv", "json")
MAX_SHOWN_ERRORS = 50


def _number(text: str, name: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise click.UsageError(f"{name}: '{text[:50]}' is not a number") from None
    if not math.isfinite(value):
        raise click.UsageError(f"{name}: '{text[:50]}' is not a finite number")
    return value


def _when(text: str | None, name: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.UsageError(
            f"{name}: '{text[:50]}' is not an ISO 8601 time (e.g. 2026-01-31 or 2026-01-31T09:30:00Z)"
        ) from None
    if when.tzinfo is None:
        from django.utils import timezone

        when = timezone.make_aware(when)
    return when


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


@measure_app.command("list")
def measure_list(
    product: ProductOpt = None,
    kva: Annotated[
        str | None,
        typer.Option(
            metavar="KVA",
            help="Only this Key Value Area: current_value, unrealized_value, time_to_market, "
            "ability_to_innovate.",
        ),
    ] = None,
    stale: Annotated[bool, typer.Option("--stale", help="Only measures with stale evidence.")] = False,
    archived: Annotated[bool, typer.Option("--archived", help="Include archived measures.")] = False,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """List measures with their latest value and staleness."""
    membership, _ = identity(org, as_user)
    from django.utils import timezone

    from truenorth.measures import maths, services
    from truenorth.measures.models import KVA

    if kva is not None and kva not in KVA.values:
        raise click.UsageError(f"--kva: '{kva}' is not one of {', '.join(KVA.values)}")
    if product is not None:
        from truenorth.strategy import services as strategy_services

        strategy_services.get_product(membership, product)
    measures = services.with_latest(
        services.measures_of(membership, product_id=product, kva=kva, include_archived=archived)
    )
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    for x in measures:
        last_at = getattr(x, "latest_at", None)
        is_stale = maths.is_stale(last_at, x.cadence_days, now)
        if stale and not is_stale:
            continue
        rows.append(
            {
                "id": x.pk,
                "name": x.name,
                "product": x.product.name if x.product else None,
                "kva": x.kva,
                "unit": x.unit,
                "source": x.source,
                "latest_value": getattr(x, "latest_value", None),
                "latest_observed_at": last_at.isoformat() if last_at else None,
                "stale": is_stale,
                "archived": x.archived_at is not None,
                "last_refresh_error": x.last_refresh_error,
            }
        )
    if as_json:
        print_json(rows)
    elif not rows:
        console.print("No measures.")
    else:
        show(
            table(
                "Measures",
                ("Id", "Measure", "Product", "KVA", "Latest", "Observed", "Evidence"),
                (
                    (
                        r["id"],
                        r["name"] + (" (archived)" if r["archived"] else ""),
                        r["product"] or "organisation",
                        r["kva"],
                        f"{_value(r['latest_value'])} {r['unit']}".strip(),
                        (r["latest_observed_at"] or "never")[:10],
                        "stale" if r["stale"] else "fresh",
                    )
                    for r in rows
                ),
            )
        )


@measure_app.command("push")
def measure_push(
    measure_id: Annotated[int, typer.Argument(metavar="MEASURE_ID", help="The measure's id.")],
    value: Annotated[str, typer.Argument(metavar="VALUE", help="The observed value (a number).")],
    at: Annotated[
        str | None, typer.Option("--at", metavar="ISO", help="When it was observed (default: now).")
    ] = None,
    note: Annotated[str, typer.Option("--note", help="A note on the value.")] = "",
    org: Org = None,
    as_user: As = None,
) -> None:
    """Record one observation of a measure."""
    number = _number(value, "VALUE")
    membership, actor = identity(org, as_user)
    when = _when(at, "--at")
    from truenorth.measures import services
    from truenorth.measures.models import MeasureSource

    observation = services.add_observation(
        membership, actor, measure_id, number, observed_at=when, note=note, source=MeasureSource.API
    )
    console.print(
        f"Recorded {observation.value:g} for measure #{measure_id} at {observation.observed_at.isoformat()}."
    )


def import_(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A CSV or Excel (.xlsx) file.")],
    key: Annotated[
        str,
        typer.Option(
            "--key", metavar="IDEMPOTENCY_KEY", help="Running the import again with it saves nothing twice."
        ),
    ] = "",
    preview: Annotated[bool, typer.Option("--preview", help="Check the file only; save nothing.")] = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Import observations from a CSV or Excel file; bad rows are listed by line, good rows saved.

    Columns: measure (name or id), observed_at, value and optionally note."""
    membership, actor = identity(org, as_user)
    from truenorth.measures import imports

    try:
        limit = imports.max_file_bytes()  # TRUENORTH_IMPORT_MAX_FILE_BYTES, as for the API
        if file.stat().st_size > limit:
            raise click.UsageError(f"FILE: {file} is larger than {imports.size_text(limit)}")
        content = file.read_bytes()
    except OSError as exc:
        raise click.UsageError(f"FILE: cannot read {file}: {exc.strerror}") from None

    if preview:
        report = imports.preview_import(membership, file.name, content)
        console.print(
            f"{report.total} rows: {report.valid} would be saved, {report.invalid} have errors "
            "(nothing saved: preview)."
        )
        for name, count in report.measures.items():
            console.print(f"  {escape(name)}: {count} rows")
        _print_errors(report.errors)
        return
    progress = Progress(
        TextColumn("Importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with progress:
        task = progress.add_task("import", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = imports.run_import(
            membership, actor, file.name, content, idempotency_key=key, progress=advance
        )
    skipped = f", {result.skipped} already imported (same key)" if result.skipped else ""
    console.print(
        f"Imported {result.created} of {result.total} rows{skipped}; "
        f"{result.rejected} {'row' if result.rejected == 1 else 'rows'} rejected."
    )
    _print_errors(result.errors)


def _print_errors(errors: list[Any]) -> None:
    if not errors:
        return
    shown = errors[:MAX_SHOWN_ERRORS]
    show(table("Bad rows", ("Line", "Field", "Problem"), ((e.line, e.field, e.message) for e in shown)))
    if len(errors) > len(shown):
        console.print(f"… and {len(errors) - len(shown)} more.")


measure_app.command("import")(import_)


@measure_app.command("export")
def measure_export(
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    measure: Annotated[
        int | None, typer.Option("--measure", metavar="ID", help="Only this measure (default: all).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Write here instead of stdout.")
    ] = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Export measures and every observation (corrections flagged) as CSV or JSON."""
    if fmt not in EXPORT_FORMATS:
        raise click.UsageError(f"--format: '{fmt}' is not one of {', '.join(EXPORT_FORMATS)}")
    membership, _ = identity(org, as_user)
    from truenorth.measures import services

    text = services.export_observations(membership, measure, fmt)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"-o: cannot write {output}: {exc.strerror}") from None
    what = f"measure #{measure}" if measure else "all measures"
    console.print(f"Exported {what} to {escape(str(output))} ({fmt}).")


@measure_app.command("rollups")
def measure_rollups(
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Recompute every roll-up from the observations (in one transaction)."),
    ] = False,
) -> None:
    """Check the value dashboard's daily roll-ups against the observations (exit 1 if any differs), or
    rebuild them (after changing TIME_ZONE, a restore, or any doubt). Every organisation, as the system."""
    from truenorth.orgs.commandline import setup_django

    setup_django()
    from django.conf import settings

    from truenorth.measures import rollups

    if rebuild:
        done = rollups.rebuild()
        console.print(
            f"Rebuilt the daily roll-ups ({settings.TIME_ZONE}): {done.measures} measure(s), {done.days} "
            f"day row(s), {done.observations} current observation(s)."
        )
        return
    wrong = rollups.check()
    if not wrong:
        console.print(f"The daily roll-ups ({settings.TIME_ZONE}) match the observations.")
        return
    for measure_id, days in sorted(rollups.by_measure(wrong).items()):
        console.print(f"measure {measure_id}: {days} day(s) differ")
    console.print(f"{len(wrong)} day row(s) differ: run `truenorth measure rollups --rebuild`.")
    raise typer.Exit(1)
