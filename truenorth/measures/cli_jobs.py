"""`truenorth worker` (the background job consumer) and `truenorth measure refresh`.

Registered in truenorth/cli.py: `worker` on the main app, `refresh` on the `measure` sub-app.
`measure refresh` without `--org`/`--as` acts as the system over every organisation (the server
operator's view, like `truenorth check`); with them, only in that organisation, as that person.
Exit codes: 0 every refresh succeeded; 1 at least one failed (each printed with its reason); 2 bad
usage or input.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from truenorth.orgs.commandline import As, Org, console, identity, setup_django

if TYPE_CHECKING:
    from truenorth.measures.refresh import RefreshResult

err_console = Console(stderr=True, soft_wrap=True)


def worker(
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=32,
            help="Worker threads (keep it above TRUENORTH_JOBS_PER_ORGANISATION, so one organisation "
            "cannot occupy them all).",
        ),
    ] = 4,
    periodic: Annotated[
        bool,
        typer.Option(
            "--periodic/--no-periodic", help="Also run the periodic jobs (the refresh of due measures)."
        ),
    ] = True,
) -> None:
    """Run the background jobs: measure refreshes every 5 minutes and on demand (Ctrl+C to stop)."""
    setup_django()
    from truenorth.core import telemetry
    from truenorth.jobs import services as job_services
    from truenorth.jobs import tasks  # noqa: F401  # registers run_job with the consumer
    from truenorth.measures import jobs

    huey = jobs.HUEY
    if huey.immediate:
        raise click.UsageError(
            "TRUENORTH_JOBS_IMMEDIATE is on: jobs run inline in the web process, there is no queue to consume"
        )
    job_services.discover()
    from django.conf import settings

    if workers <= settings.TRUENORTH_JOBS_PER_ORGANISATION:
        console.print(
            f"[yellow]Warning:[/] {workers} thread(s) and TRUENORTH_JOBS_PER_ORGANISATION="
            f"{settings.TRUENORTH_JOBS_PER_ORGANISATION}: one organisation's long jobs can hold every thread "
            "and delay everyone else's; give --workers more threads than that."
        )
    # One worker per instance: a job still "running" was left by a worker that was killed.
    if interrupted := job_services.fail_interrupted():
        console.print(f"Marked {interrupted} job(s) left running by a stopped worker as failed.")
    logging.getLogger("huey").setLevel(logging.INFO)
    # Metrics: this process's counters (failed refreshes, webhook attempts) go to files the web's /metrics adds up.
    telemetry.prepare_multiprocess("worker")
    console.print(
        f"TrueNorth worker: {escape(jobs.queue_description())}, {workers} thread(s) (Ctrl+C to stop)"
    )
    # flush_locks: a worker killed mid-run must not leave the periodic refresh locked for good.
    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=periodic, flush_locks=True
    )
    consumer.run()


def measure_refresh(
    measure: Annotated[
        int | None,
        typer.Option("--measure", metavar="ID", help="Refresh this measure now, due or not."),
    ] = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Refresh SQL and computed measures: the due ones (or one); exit 1 if any refresh failed."""
    if (org is None) != (as_user is None):
        raise click.UsageError(
            "give both --org and --as, or neither (then: every organisation, as the system)"
        )
    if org is not None:
        membership, actor = identity(org, as_user)
    else:
        setup_django()
        membership, actor = None, None
    from truenorth.core.errors import NotFound
    from truenorth.measures import refresh, services
    from truenorth.measures.models import Measure

    if measure is not None:
        if membership is not None:
            target: Measure | None = services.get_measure(membership, measure)
        else:
            target = (
                Measure.objects.select_related("organisation", "data_source", "product")
                .filter(pk=measure)
                .first()
            )
        if target is None:
            raise NotFound("No such measure.", field="--measure")
        results = [refresh.refresh_measure(target, actor=actor)]
    else:
        progress = Progress(
            TextColumn("Refreshing"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        with progress:
            task = progress.add_task("", total=None)

            def advance(done: int, total: int, result: RefreshResult | None) -> None:
                name = escape(result.measure.name) if result is not None else ""
                progress.update(task, completed=done, total=total, description=name)

            results = refresh.refresh_due(
                progress=advance,
                organisation_id=membership.organisation_id if membership is not None else None,
                actor=actor,
            )
    _report(results)


def _report(results: list[RefreshResult]) -> None:
    failed = [r for r in results if not r.ok]
    for result in results:
        where = f"“{escape(result.measure.name)}” (id {result.measure.pk})"
        if result.ok:
            console.print(f"{where}: {escape(result.summary())}")
    for result in failed:
        err_console.print(
            f"[red]failed[/red]: “{escape(result.measure.name)}” (id {result.measure.pk}): {escape(result.error)}"
        )
    if not results:
        console.print("No measure is due for a refresh.")
    else:
        created = sum(r.created for r in results)
        console.print(
            f"Refreshed {len(results)} measure(s): {created} new observation(s), {len(failed)} failed."
        )
    if failed:
        raise typer.Exit(1)
