"""Delivery commands: sources and imports.

- `truenorth import git PATH --source NAME`, `truenorth import jira FILE --source NAME`,
  `truenorth import events FILE --source NAME`: read the repository or file with that importer and store
  it in the source (the same ingest as the background jobs, run here directly, with a progress bar).
  `truenorth import github FILE --source NAME`: GitHub REST JSON files. The operator's own machine: any
  path may be read. `truenorth import azure FILE --source NAME`: Azure DevOps work item revisions.
- `truenorth import FILE …` (the first argument not an importer's name) is still the goal-tree import:
  `import` is a group that falls back to its `tree` command (truenorth/strategy/cli/exchange.py, mounted
  by truenorth/cli.py), so every old command line keeps working.
- `truenorth delivery sources list [--all] [--json]`, `truenorth delivery sources add NAME --kind KIND …`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typer.core import TyperGroup

from truenorth.orgs.commandline import As, Json, Org, console, identity, print_json, show, table

if TYPE_CHECKING:
    from truenorth.delivery.models import ImportRun

MAX_SHOWN_ERRORS = 20
FALLBACK = "tree"  # the goal-tree import, mounted by truenorth/cli.py


class ImportGroup(TyperGroup):
    """`truenorth import SUBCOMMAND …`, or `truenorth import FILE …` (the goal-tree import) when the first
    argument is not a subcommand's name."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if (
            args
            and args[0] not in self.commands
            and args[0] not in ("--help", "-h")
            and FALLBACK in self.commands
        ):
            args = [FALLBACK, *args]
        return super().parse_args(ctx, args)


import_app = typer.Typer(
    cls=ImportGroup,
    help=(
        "Import delivery data into a source (git, jira, github, events), or a goal tree: "
        "`truenorth import FILE` (same as `truenorth import tree FILE`)."
    ),
    no_args_is_help=True,
)
delivery_app = typer.Typer(help="Delivery evidence: sources of delivery data.", no_args_is_help=True)
sources_app = typer.Typer(help="Delivery sources: list, add.", no_args_is_help=True)
delivery_app.add_typer(sources_app, name="sources")

SourceName = Annotated[
    str, typer.Option("--source", metavar="NAME", help="The delivery source to import into.")
]


def _run(
    importer: str, data: Path, source_name: str, org: str | None, as_user: str | None, as_json: bool
) -> None:
    membership, actor = identity(org, as_user)
    from truenorth.delivery.services import sources
    from truenorth.orgs.services import require_writer

    require_writer(membership)
    source = sources.source_named(membership, source_name)
    sources.check_importer(source, importer)
    progress = Progress(
        TextColumn(f"Importing into {escape(source.name)}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal or as_json,
    )
    with progress:
        task = progress.add_task("import", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None)

        run = sources.run_import(source, importer, data, actor=actor, progress=advance)
    if as_json:
        print_json(sources.describe_import(run))
        return
    console.print(f"{escape(source.name)}: {escape(sources.run_summary(run))} (import #{run.pk}).")
    _print_errors(run)


def _print_errors(run: ImportRun) -> None:
    if not run.errors:
        return
    shown = run.errors[:MAX_SHOWN_ERRORS]
    show(table("Bad records", ("Where", "Problem"), ((e["location"], e["message"]) for e in shown)))
    if run.error_count > len(shown):
        console.print(f"… and {run.error_count - len(shown)} more.")


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise click.UsageError(f"{what}: {path} does not exist")
    return path


@import_app.command("git")
def import_git(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="The repository (work tree or bare).")],
    source: SourceName,
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """Import a git repository: every commit of every branch (merges flagged), tags as releases."""
    _run("git", _existing(path, "PATH").resolve(), source, org, as_user, as_json)


@import_app.command("jira")
def import_jira(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A Jira CSV export or changelog JSON.")],
    source: SourceName,
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """Import a Jira CSV export (items) or issue changelog JSON (items and status transitions)."""
    _run("jira", _existing(file, "FILE"), source, org, as_user, as_json)


@import_app.command("events")
def import_events(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Events as CSV, JSON or JSON Lines.")],
    source: SourceName,
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """Import events in the generic format (docs/delivery.md): items, transitions, deployments, incidents, commits."""
    _run("events", _existing(file, "FILE"), source, org, as_user, as_json)


@import_app.command("github")
def import_github(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="GitHub REST API JSON (pulls, releases, ...).")
    ],
    source: SourceName,
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """Import GitHub REST JSON saved to a file: pull requests, releases, deployments, issues."""
    _run("github", _existing(file, "FILE"), source, org, as_user, as_json)


@import_app.command("azure")
def import_azure(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="Azure DevOps revisions JSON (REST API answers).")
    ],
    source: SourceName,
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """Import Azure DevOps work item revisions (REST API JSON): items and their state changes."""
    _run("azure", _existing(file, "FILE"), source, org, as_user, as_json)


@sources_app.command("list")
def list_sources(
    include_archived: Annotated[bool, typer.Option("--all", help="Archived sources too.")] = False,
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """The organisation's delivery sources."""
    membership, _ = identity(org, as_user)
    from truenorth.delivery.services import sources

    rows = list(sources.sources_of(membership, include_archived=include_archived))
    if as_json:
        print_json(
            [
                {
                    "id": s.pk,
                    "name": s.name,
                    "kind": s.kind,
                    "product": s.product.name if s.product else None,
                    "team": s.team.name if s.team else None,
                    "state_mapping": s.state_mapping,
                    "production_environment": s.production_environment,
                    "archived": s.archived_at is not None,
                    "version": s.version,
                }
                for s in rows
            ]
        )
        return
    show(
        table(
            "Delivery sources",
            ("ID", "Name", "Kind", "Product", "Team", "Production"),
            (
                (
                    s.pk,
                    s.name + (" (archived)" if s.archived_at else ""),
                    s.kind,
                    s.product.name if s.product else "—",
                    s.team.name if s.team else "—",
                    s.production_environment,
                )
                for s in rows
            ),
        )
    )


States = Annotated[list[str] | None, typer.Option(metavar="STATE", help="Repeat for each state.")]


@sources_app.command("add")
def add_source(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    kind: Annotated[str, typer.Option("--kind", help="git, github, jira, azure or events.")],
    product: Annotated[
        int | None, typer.Option("--product", metavar="ID", help="The product it feeds.")
    ] = None,
    team: Annotated[int | None, typer.Option("--team", metavar="ID", help="The team it belongs to.")] = None,
    started: States = None,
    done: States = None,
    waiting: States = None,
    production_environment: Annotated[
        str, typer.Option("--production-environment", metavar="ENV", help="Deployments here count for DORA.")
    ] = "production",
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """Add a delivery source (states: `--started "In Progress" --done Done --waiting Blocked`)."""
    membership, actor = identity(org, as_user)
    from truenorth.delivery.services import sources

    mapping = {k: v for k, v in (("started", started), ("done", done), ("waiting", waiting)) if v}
    source = sources.create_source(
        membership,
        actor,
        name=name,
        kind=kind,
        product_id=product,
        team_id=team,
        state_mapping=mapping,
        production_environment=production_environment,
    )
    if as_json:
        print_json({"id": source.pk, "name": source.name, "kind": source.kind, "version": source.version})
        return
    console.print(f"Added delivery source “{escape(source.name)}” (#{source.pk}, {source.kind}).")
