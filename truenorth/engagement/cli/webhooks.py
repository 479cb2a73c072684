"""Engagement commands: `truenorth webhooks list|add|deliveries|replay|test`.

Identity (`--org`/`--as`) as for every command; admins add, replay and test. Sending happens on the
worker (`truenorth worker`), as from the web pages; these commands only queue it. Bad input: one line on
stderr, exit code 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import click
import typer

from truenorth.orgs.commandline import As, Json, Org, console, identity, print_json, show, table

webhooks_app = typer.Typer(
    help="Outgoing webhooks: list, add, deliveries, replay, test.", no_args_is_help=True, add_completion=False
)


def _hook_row(hook: Any, admin: bool) -> dict[str, Any]:
    from truenorth.engagement.services import webhooks

    return {
        "id": hook.pk,
        "name": hook.name,
        "url": hook.url if admin else webhooks.masked_url(hook.url),
        "format": hook.format,
        "events": list(hook.events),
        "active": hook.active,
        "version": hook.version,
    }


def _delivery_row(d: Any) -> dict[str, Any]:
    return {
        "id": d.pk,
        "uid": str(d.uid),
        "webhook": d.webhook.name,
        "kind": d.kind,
        "status": d.status,
        "attempts": d.attempts,
        "created_at": d.created_at.isoformat(),
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "last_error": d.last_error,
        "replay_of": d.replay_of_id,
    }


@webhooks_app.command("list")
def webhooks_list(as_json: Json = False, org: Org = None, as_user: As = None) -> None:
    """The organisation's webhooks (full URLs for admins)."""
    membership, _ = identity(org, as_user)
    from truenorth.engagement.services import webhooks
    from truenorth.orgs.models import Role

    rows = [_hook_row(h, membership.has_role(Role.ADMIN)) for h in webhooks.webhooks_of(membership)]
    if as_json:
        print_json(rows)
        return
    show(
        table(
            "Webhooks",
            ["Id", "Name", "URL", "Format", "Events", "State"],
            [
                [
                    r["id"],
                    r["name"],
                    r["url"],
                    r["format"],
                    ", ".join(r["events"]) or "all",
                    "active" if r["active"] else "paused",
                ]
                for r in rows
            ],
        )
    )


@webhooks_app.command("add")
def webhooks_add(
    name: Annotated[str, typer.Argument(help="A name for people.")],
    url: Annotated[str, typer.Argument(help="The receiver's https:// URL.")],
    fmt: Annotated[str, typer.Option("--format", help="json, slack or teams.")] = "json",
    events: Annotated[
        list[str] | None, typer.Option("--event", help="An event kind to send (repeat); none: all.")
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Add it paused (sends nothing).")] = False,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Add a webhook (admins). Prints its signing secret once."""
    membership, user = identity(org, as_user)
    from truenorth.engagement.services import webhooks

    hook, secret = webhooks.create_webhook(
        membership, user, name=name, url=url, format=fmt, events=events or [], active=not paused
    )
    if as_json:
        print_json({**_hook_row(hook, True), "secret": secret})
        return
    console.print(f"Webhook {hook.pk} “{hook.name}” added.")
    console.print(f"Signing secret (shown once): {secret}", highlight=False)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    status: Annotated[
        str | None, typer.Option(help="Only this status: pending, sending, retrying, delivered, failed.")
    ] = None,
    webhook: Annotated[int | None, typer.Option("--webhook", metavar="ID", help="Only this webhook.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 50,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """The delivery log, newest first."""
    membership, _ = identity(org, as_user)
    from truenorth.engagement.services import webhooks

    if webhook is not None:
        webhooks.get_webhook(membership, webhook)
    rows = [
        _delivery_row(d)
        for d in webhooks.deliveries_of(membership, webhook_id=webhook, status=status)[:limit]
    ]
    if as_json:
        print_json(rows)
        return
    show(
        table(
            "Webhook deliveries",
            ["Id", "Created", "Webhook", "Event", "Status", "Attempts", "Last error"],
            [
                [
                    r["id"],
                    r["created_at"][:19],
                    r["webhook"],
                    r["kind"],
                    r["status"],
                    r["attempts"],
                    r["last_error"],
                ]
                for r in rows
            ],
        )
    )


@webhooks_app.command("replay")
def webhooks_replay(
    delivery: Annotated[int, typer.Argument(metavar="DELIVERY_ID", help="The delivery to send again.")],
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Send a delivery's payload again as a new delivery (admins; queued on the worker)."""
    membership, user = identity(org, as_user)
    from truenorth.engagement.services import webhooks

    if delivery < 1:
        raise click.UsageError("DELIVERY_ID: give a delivery id from `truenorth webhooks deliveries`")
    again = webhooks.replay(membership, user, delivery)
    if as_json:
        print_json(_delivery_row(again))
        return
    console.print(f"Replay queued as delivery {again.pk}.")


@webhooks_app.command("test")
def webhooks_test(
    webhook: Annotated[int, typer.Argument(metavar="WEBHOOK_ID", help="The webhook to test.")],
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Send a test event to a webhook (admins; queued on the worker)."""
    membership, user = identity(org, as_user)
    from truenorth.engagement.services import webhooks

    made = webhooks.send_test(membership, user, webhook)
    if as_json:
        print_json(_delivery_row(made))
        return
    console.print(f"Test event queued as delivery {made.pk}.")
