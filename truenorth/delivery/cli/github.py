"""Delivery command: `truenorth delivery fetch SOURCE` fetches a GitHub source from the REST API here and
now (the same fetch as the background job, with a progress bar). `--repository owner/name` and
`--token-env VAR` (the token is read from that environment variable, never from the command line, where
other users could see it) connect the source first or change its connection; `--api-url` for GitHub
Enterprise Server. A fetch that stops early (rate limit, page or time limit, refused token) prints what it
stored and then the reason, exit code 2.
"""

from __future__ import annotations

import os
from typing import Annotated

import click
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from truenorth.orgs.commandline import As, Json, Org, console, identity, print_json, show, table

app = typer.Typer(
    help="Fetch a GitHub source from the REST API (pull requests, releases, deployments, issues).",
    invoke_without_command=True,
    no_args_is_help=True,
    # A group with no subcommand: let options come after SOURCE, as with every other command.
    context_settings={"allow_interspersed_args": True},
)


@app.callback()
def fetch(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="The GitHub delivery source (name).")],
    repository: Annotated[
        str | None,
        typer.Option("--repository", metavar="OWNER/NAME", help="Connect (or change) the repository."),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option("--token-env", metavar="VAR", help="Read the token from this environment variable."),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", metavar="URL", help="https://HOST/api/v3 for GitHub Enterprise Server."),
    ] = None,
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """Fetch SOURCE from the GitHub API now (connect it first with --repository and --token-env)."""
    token: str | None = None
    if token_env is not None:
        token = os.environ.get(token_env, "")
        if not token.strip():
            raise click.UsageError(f"--token-env: the environment variable {token_env} is empty or not set")
    membership, actor = identity(org, as_user)
    from truenorth.core.errors import ValidationFailed
    from truenorth.delivery.services import github_fetch, sources
    from truenorth.orgs.services import require_writer

    require_writer(membership)
    target = sources.source_named(membership, source)
    existing = github_fetch.connection_of(membership, target.pk)
    if repository is not None or token is not None or api_url is not None:
        github_fetch.connect(
            membership,
            actor,
            target.pk,
            repository=repository if repository is not None else (existing.repository if existing else ""),
            api_url=api_url if api_url is not None else (existing.api_url if existing else None),
            token=token,
            version=existing.version if existing else None,
        )
    progress = Progress(
        TextColumn(f"Fetching {escape(target.name)} from GitHub (pages)"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal or as_json,
    )
    with progress:
        task = progress.add_task("fetch", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None)

        outcome = github_fetch.run_fetch(target, actor=actor, progress=advance)
    if as_json:
        print_json(
            {**sources.describe_import(outcome.run), "pages": outcome.pages, "stopped": outcome.stopped}
        )
    else:
        console.print(
            f"{escape(target.name)}: {escape(github_fetch.summary(outcome))} (import #{outcome.run.pk})."
        )
        problems = [e for e in outcome.run.errors if not outcome.stopped or e["message"] != outcome.stopped]
        if problems:
            show(
                table(
                    "Problems", ("Where", "Problem"), ((e["location"], e["message"]) for e in problems[:20])
                )
            )
    if outcome.stopped:
        raise ValidationFailed(outcome.stopped, field="")
