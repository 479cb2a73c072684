"""The `truenorth` command: serve, migrate, createuser, demo, check, and the Vision commands.

Commands only parse arguments and print; the work is done by services shared with the web UI and the API.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from truenorth.delivery.cli import feed as delivery_feed_cli
from truenorth.delivery.cli import github as delivery_github_cli
from truenorth.delivery.cli import metrics as delivery_metrics_cli
from truenorth.delivery.cli import process as delivery_process_cli
from truenorth.delivery.cli import sources as delivery_sources_cli
from truenorth.engagement.cli import activity as engagement_activity_cli
from truenorth.engagement.cli import briefs as engagement_briefs_cli
from truenorth.engagement.cli import health as engagement_health_cli
from truenorth.engagement.cli import mail as engagement_mail_cli
from truenorth.engagement.cli import pulses as engagement_pulses_cli
from truenorth.engagement.cli import stakeholders as engagement_stakeholders_cli
from truenorth.engagement.cli import webhooks as engagement_webhooks_cli
from truenorth.evidence import cli as evidence_cli
from truenorth.hypotheses import cli as hypotheses_cli
from truenorth.measures import cli as measures_cli
from truenorth.measures import cli_jobs as measures_cli_jobs
from truenorth.ops import cli as ops_cli
from truenorth.stats import cli as stats_cli
from truenorth.strategy import cli as strategy_cli

app = typer.Typer(
    name="truenorth",
    help="TrueNorth: one goal for the whole organisation, run by evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


class UsageFailure(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "truenorth.settings")
    import django

    django.setup()


def _call_command(*args: str, **kwargs: Any) -> None:
    from django.core.management import call_command

    call_command(*args, **kwargs)


@app.command()
def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="Only report unapplied migrations (exit 1 if any).")
    ] = False,
) -> None:
    """Create or upgrade the database schema."""
    _setup_django()
    if check:
        _call_command("migrate", check=True, plan=True, verbosity=1)
        return
    _call_command("migrate", interactive=False, verbosity=1)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default: from TRUENORTH_WEB_BIND, 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="TCP port [default: from TRUENORTH_WEB_BIND, 8000].", show_default=False),
    ] = None,
    bind: Annotated[
        str | None,
        typer.Option(help="HOST:PORT or unix:PATH, instead of --host/--port [default: TRUENORTH_WEB_BIND]."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes [default: TRUENORTH_WEB_WORKERS, one per core, 2 to 8]."),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            help="Threads per worker; above 1, gunicorn's threaded worker [default: TRUENORTH_WEB_THREADS, 8]."
        ),
    ] = None,
    timeout: Annotated[
        int | None,
        typer.Option(help="Seconds before a silent worker is killed [default: TRUENORTH_WEB_TIMEOUT, 60]."),
    ] = None,
    graceful_timeout: Annotated[
        int | None,
        typer.Option(
            help="Seconds workers get to finish on restart or stop [default: TRUENORTH_WEB_GRACEFUL_TIMEOUT, 30]."
        ),
    ] = None,
    keep_alive: Annotated[
        int | None,
        typer.Option(
            help="Seconds an idle connection stays open, threaded workers [default: TRUENORTH_WEB_KEEPALIVE, 5]."
        ),
    ] = None,
    keep_alive_requests: Annotated[
        int | None,
        typer.Option(
            help="Requests before a kept-alive connection is closed, 0 never "
            "[default: TRUENORTH_WEB_KEEPALIVE_REQUESTS, 100]."
        ),
    ] = None,
    max_requests: Annotated[
        int | None,
        typer.Option(
            help="Requests before a worker is replaced, 0 never [default: TRUENORTH_WEB_MAX_REQUESTS, 50000]."
        ),
    ] = None,
    max_requests_jitter: Annotated[
        int | None,
        typer.Option(
            help="Random extra requests per worker [default: TRUENORTH_WEB_MAX_REQUESTS_JITTER, 5000]."
        ),
    ] = None,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations before serving.")
    ] = True,
) -> None:
    """Serve the web app and API with gunicorn (production-grade; not Django's runserver)."""
    # Settings only: django.setup() opens no database connection, so the master still holds none.
    _setup_django()
    from truenorth.core.telemetry import prepare_multiprocess

    # Prometheus multiprocess mode (truenorth/ops/metrics.py): every gunicorn worker writes its samples
    # under metrics/web/, emptied here, before any worker forks.
    prepare_multiprocess("web")
    from truenorth.ops.serving import (
        ServeOptionError,
        ServeOverrides,
        gunicorn_options,
        requests_per_connection,
    )

    overrides = ServeOverrides(
        bind=bind,
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        timeout=timeout,
        graceful_timeout=graceful_timeout,
        keep_alive=keep_alive,
        keep_alive_requests=keep_alive_requests,
        max_requests=max_requests,
        max_requests_jitter=max_requests_jitter,
    )
    try:
        options = gunicorn_options(overrides)
        per_connection = requests_per_connection(overrides)
    except ServeOptionError as exc:
        raise UsageFailure(str(exc)) from None
    # Migrate and collect static files in a child process, so the gunicorn master never holds a database
    # connection its forked workers could inherit and share (answers for the wrong user on PostgreSQL).
    prepare = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell, no user input
        [
            sys.executable,
            "-c",
            f"import sys, truenorth.cli as c; sys.exit(c._prepare_to_serve({migrate_first}))",
        ],
        check=False,
    )
    if prepare.returncode != 0:
        raise typer.Exit(prepare.returncode)
    from django.db import connections
    from django.urls import get_resolver
    from gunicorn.app.base import BaseApplication

    from truenorth.wsgi import GUNICORN_HOOKS, application, close_connections_after

    # Import every view before forking (no database needed): workers share the modules, and no first
    # request pays seconds of imports (which, on a busy machine, could exceed the timeout).
    get_resolver().url_patterns  # noqa: B018 - loading the URLconf is the point

    class _Server(BaseApplication):
        def load_config(self) -> None:
            hooks = {**GUNICORN_HOOKS, "pre_request": close_connections_after(per_connection)}
            for name, value in {**options, **hooks}.items():
                self.cfg.set(name, value)
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn 25.1+ opens a control socket at one path per user ($HOME/.gunicorn/): two
                # servers of one account would take each other's. Nothing here uses it.
                self.cfg.set("control_socket_disable", True)

        def load(self) -> Any:
            return application

    connections.close_all()
    where = options["bind"][0]
    address = where if where.startswith("unix:") else f"http://{where}/"
    console.print(
        f"TrueNorth serving on {address} ({options['workers']} workers x {options['threads']} threads, "
        f"timeout {options['timeout']} s; Ctrl+C to stop)",
        soft_wrap=True,  # one line in a log, whatever the width
    )
    _Server().run()


def _prepare_to_serve(migrate_first: bool) -> int:
    """`serve`'s preparation, run in a child process: migrate (unless --no-migrate), collect static files
    (hashed names and compressed copies, truenorth/ops/serving.py)."""
    from truenorth.env import ConfigError

    try:
        _setup_django()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if migrate_first:
        _call_command("migrate", interactive=False, verbosity=0)
    _call_command("collectstatic", interactive=False, verbosity=0)
    return 0


@app.command()
def createuser(
    email: Annotated[str, typer.Argument(help="E-mail address (the sign-in name).")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password: Annotated[
        str | None,
        typer.Option(
            help="Password; prompted for if omitted (or read from TRUENORTH_PASSWORD).",
            envvar="TRUENORTH_PASSWORD",
        ),
    ] = None,
    org: Annotated[str | None, typer.Option(help="Add the user to this organisation (its address).")] = None,
    role: Annotated[str, typer.Option(help="Role in --org: owner, admin, member or stakeholder.")] = "member",
    create_org: Annotated[
        str | None,
        typer.Option("--create-org", help="Create an organisation with this name, owned by the user."),
    ] = None,
) -> None:
    """Create a user, optionally in an organisation."""
    _setup_django()
    from django.db import transaction

    from truenorth.accounts.services import create_user
    from truenorth.history.models import HistoryEntry
    from truenorth.history.services import record
    from truenorth.orgs.models import ROLE_RANK, Membership, Organisation
    from truenorth.orgs.services import create_organisation

    if role not in ROLE_RANK:
        raise UsageFailure(f"--role: unknown role '{role}'; choose one of {', '.join(ROLE_RANK)}")
    target = None
    if org:
        target = Organisation.objects.filter(slug=org).first()
        if target is None:
            raise UsageFailure(f"--org: no organisation with the address '{org}'")
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with transaction.atomic():
        user = create_user(email, password, name)
        if target is not None:
            membership = Membership.objects.create(organisation=target, user=user, role=role)
            record(
                target, membership, None, HistoryEntry.Action.CREATED, {"role": {"old": None, "new": role}}
            )
        if create_org:
            create_organisation(user, create_org)
    console.print(f"Created {user.email}.")


@app.command()
def demo() -> None:
    """Load the demo organisations and users (safe to run twice) and print how to sign in."""
    _setup_django()
    _call_command("migrate", interactive=False, verbosity=0)
    from truenorth.demo import DEMO_PASSWORD, load_demo

    users = load_demo()
    table = Table(title="Demo sign-ins (password for all: " + DEMO_PASSWORD + ")")
    table.add_column("E-mail")
    table.add_column("Role in Acme Outdoor")
    for spec in users:
        table.add_row(spec.email, spec.role)
    console.print(table)


@app.command()
def check() -> None:
    """Check the configuration, the database and the front-end assets; exit 1 on any problem."""
    _setup_django()
    from truenorth.core.health import run_checks

    results = run_checks()
    table = Table(title="TrueNorth check")
    table.add_column("Check")
    table.add_column("Status")
    table.add_column("Detail")
    for result in results:
        colour = {"ok": "green", "warning": "yellow", "error": "red"}[result.status]
        # Details quote error messages (e.g. a failed SQL refresh): never read them as markup.
        table.add_row(escape(result.name), f"[{colour}]{result.status}[/{colour}]", escape(result.detail))
    console.print(table)
    if any(r.status == "error" for r in results):
        raise typer.Exit(1)


@app.command("purge-sign-ins")
def purge_sign_ins() -> None:
    """Delete failed sign-ins older than the throttling window (`truenorth worker` does it every hour)."""
    _setup_django()
    from truenorth.accounts.services import purge_old_login_attempts

    console.print(f"Deleted {purge_old_login_attempts()} old failed sign-in(s).")


@app.command()
def reindex() -> None:
    """Rebuild the search index (SQLite FTS5 or PostgreSQL full text) from every organisation's objects."""
    _setup_django()
    from truenorth.search.services import reindex as rebuild

    console.print(f"Indexed {rebuild()} object(s) for search.")


# Operations (truenorth/ops/cli.py): backup and restore.
app.command("backup")(ops_cli.backup)
app.command("restore")(ops_cli.restore)

# Vision (truenorth/strategy/cli/): lint, products, goals, export, import.
app.command("lint")(strategy_cli.lint)
app.add_typer(strategy_cli.products_app, name="products")
app.add_typer(strategy_cli.goals_app, name="goals")
app.command("export")(strategy_cli.export)
# `import`: delivery importers (truenorth/delivery/cli/sources.py) and, for any other first argument,
# the goal-tree import as before (its `tree` subcommand).
app.add_typer(delivery_sources_cli.import_app, name="import")
delivery_sources_cli.import_app.command("tree")(strategy_cli.import_)

# Value (truenorth/measures/cli.py): measure list, push, import, export.
app.add_typer(measures_cli.measure_app, name="measure")
# Jobs (truenorth/measures/cli_jobs.py): the worker, and `measure refresh`.
measures_cli.measure_app.command("refresh")(measures_cli_jobs.measure_refresh)
app.command("worker")(measures_cli_jobs.worker)

# Statistics (truenorth/stats/cli.py): results from a summary or raw-event file, no database.
app.command("analyze")(stats_cli.analyze)
# Evidence queries (truenorth/evidence/cli.py): `evidence run`.
app.add_typer(evidence_cli.evidence_app, name="evidence")

# Validation (truenorth/hypotheses/cli.py): hypotheses list|show|create|move|rank|conclude, learnings.
app.add_typer(hypotheses_cli.hypotheses_app, name="hypotheses")
app.command("learnings")(hypotheses_cli.learnings)
app.command("power")(hypotheses_cli.power)

# Delivery (truenorth/delivery/cli/metrics.py): flow, DORA and forecasts.
app.command("flow")(delivery_metrics_cli.flow)
app.command("dora")(delivery_metrics_cli.dora)
app.command("forecast")(delivery_metrics_cli.forecast)
# Delivery sources (truenorth/delivery/cli/sources.py): `delivery sources list|add`.
app.add_typer(delivery_sources_cli.delivery_app, name="delivery")
# `delivery feed` (truenorth/delivery/cli/feed.py): delivery metrics into Value measures.
delivery_sources_cli.delivery_app.command("feed")(delivery_feed_cli.feed_command)
# `delivery fetch` (cli/github.py): GitHub REST API with a token; `delivery change` (cli/process.py):
# process changes tested as experiments.
delivery_sources_cli.delivery_app.add_typer(delivery_github_cli.app, name="fetch")
delivery_sources_cli.delivery_app.add_typer(delivery_process_cli.app, name="change")

# Engagement (truenorth/engagement/cli/): the product brief.
app.command("brief")(engagement_briefs_cli.brief)

# Engagement: the activity feed and the alignment health check (truenorth/engagement/cli/).
app.command("activity")(engagement_activity_cli.activity)
app.command("health")(engagement_health_cli.health)
app.add_typer(engagement_stakeholders_cli.stakeholders_app, name="stakeholders")  # list|add|log|overdue
# Engagement: check-in reminders and weekly digests (truenorth/engagement/cli/mail.py).
app.add_typer(engagement_mail_cli.reminders_app, name="reminders")
app.add_typer(engagement_mail_cli.digest_app, name="digest")
# Engagement: outgoing webhooks (truenorth/engagement/cli/webhooks.py): list|add|deliveries|replay|test.
app.add_typer(engagement_webhooks_cli.webhooks_app, name="webhooks")
# Engagement: alignment pulses (truenorth/engagement/cli/pulses.py): send|list|results.
app.add_typer(engagement_pulses_cli.pulse_app, name="pulse")


def main(argv: list[str] | None = None) -> int:
    """Entry point: usage and input errors are one line on stderr with exit code 2."""
    from truenorth.core.errors import DomainError
    from truenorth.env import ConfigError
    from truenorth.orgs import pagecache

    command = typer.main.get_command(app)
    try:
        # A command is a write boundary of the kept pages: what it wrote renews every organisation's.
        with pagecache.boundary(pagecache.every_organisation):
            result = command.main(
                args=argv if argv is not None else sys.argv[1:], prog_name="truenorth", standalone_mode=False
            )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        # The help text is already printed; only add a line when there is something to say.
        if exc.format_message().strip():
            print(f"error: {exc.format_message()}", file=sys.stderr)
        return 2
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        print(f"error: {exc.format_message()}{hint}", file=sys.stderr)
        return 2
    except click.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return 2
    except (UsageFailure, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        prefix = f"{exc.field}: " if exc.field else ""
        print(f"error: {prefix}{exc.message}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
