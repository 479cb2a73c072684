"""Engagement commands: mail — `truenorth reminders send`, `truenorth digest send` and `truenorth digest
preview`. The worker runs reminders and digests on its own; these run them now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from truenorth.orgs.commandline import As, Json, Org, console, identity, print_json, setup_django, show, table

if TYPE_CHECKING:
    from truenorth.orgs.models import Organisation

reminders_app = typer.Typer(help="Check-in reminders to goal owners.", no_args_is_help=True)
digest_app = typer.Typer(help="Weekly digests of what changed in what people follow.", no_args_is_help=True)

DryRun = Annotated[bool, typer.Option("--dry-run", help="List what would be sent; send and record nothing.")]
OrgOnly = Annotated[
    str | None,
    typer.Option("--org", envvar="TRUENORTH_ORG", metavar="SLUG", help="Only this organisation (TRUENORTH_ORG)."),
]


def _organisation(slug: str | None) -> Organisation | None:
    setup_django()
    if slug is None:
        return None
    from truenorth.core.errors import NotFound
    from truenorth.orgs.models import Organisation

    found = Organisation.objects.filter(slug=slug.strip()).first()
    if found is None:
        raise NotFound(f"No organisation '{slug}'.", field="--org")
    return found


@reminders_app.command("send")
def reminders_send(dry_run: DryRun = False, org: OrgOnly = None, as_json: Json = False) -> None:
    """Queue the check-in reminders that are due now (each goal's due time once)."""
    organisation = _organisation(org)
    from truenorth.engagement.services import mail_reminders

    done = mail_reminders.send_reminders(organisation=organisation, dry_run=dry_run)
    rows = [
        {"organisation": r.goal.organisation.slug, "goal_id": r.goal.pk, "goal": r.goal.title,
         "owner": r.goal.owner.email if r.goal.owner else None, "due": r.due.isoformat(),
         "email_id": r.email.pk if r.email else None}
        for r in done
    ]
    if as_json:
        print_json({"dry_run": dry_run, "reminders": rows})
        return
    if rows:
        show(table("Reminders" + (" (dry run)" if dry_run else ""), ["Organisation", "Goal", "Owner", "Due"],
                   [[r["organisation"], r["goal"], r["owner"], r["due"]] for r in rows]))
    verb = "would be sent" if dry_run else "queued"
    console.print(f"{len(rows)} reminder(s) {verb}.")


@digest_app.command("send")
def digest_send(
    dry_run: DryRun = False,
    org: OrgOnly = None,
    due_only: Annotated[
        bool, typer.Option("--due-only", help="Only people whose digest weekday is today (as the worker does).")
    ] = False,
    as_json: Json = False,
) -> None:
    """Send this week's digest to everyone whose digest is on (once per person per week; nothing when
    nothing changed)."""
    organisation = _organisation(org)
    from truenorth.engagement.services import mail_digest

    people = mail_digest.recipients(organisation=organisation, due_only=due_only)
    progress = Progress(
        TextColumn("Digests"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
        TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal or as_json,
    )
    with progress:
        task = progress.add_task("", total=len(people))

        def advance(outcome: mail_digest.Outcome) -> None:
            progress.update(task, advance=1, description=escape(outcome.membership.user.email))

        outcomes = mail_digest.send_digests(people=people, dry_run=dry_run, progress=advance)
    rows = [
        {"organisation": o.membership.organisation.slug, "person": o.membership.user.email, "status": o.status,
         "updates": o.digest.count if o.digest else None, "email_id": o.email.pk if o.email else None}
        for o in outcomes
    ]
    if as_json:
        print_json({"dry_run": dry_run, "digests": rows})
        return
    if rows:
        show(table("Digests" + (" (dry run)" if dry_run else ""), ["Organisation", "Person", "Outcome", "Updates"],
                   [[r["organisation"], r["person"], r["status"], r["updates"]] for r in rows]))
    sent = sum(o.status in ("sent", "would send") for o in outcomes)
    console.print(f"{sent} digest(s) {'would be sent' if dry_run else 'queued'} for {len(outcomes)} person(s).")


@digest_app.command("preview")
def digest_preview(org: Org = None, as_user: As = None, as_json: Json = False) -> None:
    """Print your digest as it would be sent now (nothing is sent or recorded)."""
    membership, _ = identity(org, as_user)
    from truenorth.engagement.services import mail_digest

    digest = mail_digest.build_digest(membership)
    if as_json:
        print_json({
            "since": digest.since.isoformat(), "until": digest.until.isoformat(), "empty": digest.empty,
            "sections": [{"title": t, "items": [{"text": i.text, "url": i.url} for i in items]}
                         for t, items in digest.sections],
        })
        return
    console.print(f"Since {digest.since:%Y-%m-%d %H:%M} UTC:")
    for title, items in digest.sections:
        if items:
            console.print(f"\n[bold]{escape(title)}[/bold]")
            for item in items:
                console.print(f"- {escape(item.text)}")
    if digest.empty:
        console.print("Nothing changed: no digest would be sent.")
