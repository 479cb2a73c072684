"""`truenorth delivery feed [--source NAME] [--since DATE] [--dry-run] [--json]`: feed the delivery metrics
of the organisation's live sources (or one) into their weekly Value measures (services/feed.py).

Without `--since`, the weeks not fed yet; with it, also every complete week from the one holding DATE
(at most two years back) is recomputed: equal values are left alone, changed ones are stored as
corrections that supersede the earlier value (both kept). An import already does this by itself for the
weeks its new records touch; `--since` is for data that changed otherwise."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape

from truenorth.orgs.commandline import As, Json, Org, console, identity, print_json


def feed_command(
    source_name: Annotated[
        str | None, typer.Option("--source", metavar="NAME", help="Only this source.")
    ] = None,
    since: Annotated[
        dt.datetime | None,
        typer.Option(
            "--since",
            formats=["%Y-%m-%d"],
            metavar="DATE",
            help="Also recompute every complete week from the one holding DATE (corrections are kept).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be stored; store nothing.")
    ] = False,
    org: Org = None,
    as_user: As = None,
    as_json: Json = False,
) -> None:
    """Feed delivery metrics (weekly) into the products' Time-to-Market and Ability-to-Innovate measures."""
    membership, actor = identity(org, as_user)
    from django.utils import timezone

    from truenorth.delivery.services import feed, sources
    from truenorth.orgs.services import require_writer

    require_writer(membership)
    chosen = (
        [sources.source_named(membership, source_name)]
        if source_name is not None
        else list(sources.sources_of(membership).filter(product__isnull=False))
    )
    now = timezone.now()
    when = None if since is None else since.replace(tzinfo=dt.UTC)
    cause = "" if when is None else f"by hand on {now.astimezone(dt.UTC).date().isoformat()}"
    results = [feed.feed(s, now=now, actor=actor, dry_run=dry_run, since=when, cause=cause) for s in chosen]
    if as_json:
        print_json({"dry_run": dry_run, "sources": [r.as_json() for r in results]})
        return
    for r in results:
        if r.source.product_id is None:
            console.print(f"{escape(r.source.name)}: no product, nothing to feed.")
            continue
        verb = "would store" if dry_run else "stored"
        count = len(r.planned) if dry_run else r.stored
        corrections = sum(1 for p in r.planned if "; recomputed " in p[3])
        extra = f" ({corrections} corrections)" if corrections else ""
        console.print(f"{escape(r.source.name)}: {len(r.weeks)} weeks, {verb} {count} observations{extra}.")
        if dry_run:
            for metric, week, value, note in r.planned:
                flag = "  (correction)" if "; recomputed " in note else ""
                console.print(f"  {week.isoformat()}  {metric}: {value:g}{flag}")
