"""`truenorth delivery feed [--source NAME] [--dry-run] [--json]`: feed the delivery metrics of the
organisation's live sources (or one) into their weekly Value measures (services/feed.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from truenorth.orgs.commandline import As, Json, Org, console, identity, print_json


def feed_command(
    source_name: Annotated[
        str | None, typer.Option("--source", metavar="NAME", help="Only this source.")
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
    results = [feed.feed(s, now=now, actor=actor, dry_run=dry_run) for s in chosen]
    if as_json:
        print_json({"dry_run": dry_run, "sources": [r.as_json() for r in results]})
        return
    for r in results:
        if r.source.product_id is None:
            console.print(f"{escape(r.source.name)}: no product, nothing to feed.")
            continue
        verb = "would store" if dry_run else "stored"
        count = len(r.planned) if dry_run else r.stored
        console.print(f"{escape(r.source.name)}: {len(r.weeks)} weeks, {verb} {count} observations.")
        if dry_run:
            for metric, week, value, _ in r.planned:
                console.print(f"  {week.isoformat()}  {metric}: {value:g}")
