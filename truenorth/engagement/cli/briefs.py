"""Engagement commands: briefs — `truenorth brief PRODUCT [--pdf FILE] [--markdown FILE] [--json]`.

The CLI is the operator's own process, so it renders the PDF directly (no background job)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from truenorth.orgs.commandline import As, Json, Org, identity, print_json

ProductArg = Annotated[str, typer.Argument(metavar="PRODUCT", help="The product's id or name.")]
PdfOpt = Annotated[Path | None, typer.Option("--pdf", metavar="FILE", help="Write the brief as a PDF here.")]
MarkdownOpt = Annotated[
    Path | None, typer.Option("--markdown", metavar="FILE", help="Write the brief as Markdown here.")
]


def brief(
    product: ProductArg,
    pdf: PdfOpt = None,
    markdown: MarkdownOpt = None,
    json_out: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """A product's brief from live data: Markdown on the terminal, or written as PDF/Markdown, or JSON."""
    membership, _ = identity(org, as_user)
    from truenorth.core.errors import NotFound
    from truenorth.engagement.services import briefs as services
    from truenorth.engagement.services.briefs_render import brief_data, brief_markdown, brief_pdf
    from truenorth.strategy.models import Product

    wanted = product.strip()
    found = Product.objects.filter(organisation_id=membership.organisation_id)
    match = found.filter(pk=int(wanted)).first() if wanted.isdigit() else None
    match = match or found.filter(name__iexact=wanted).first()
    if match is None:
        raise NotFound(f"No such product: {wanted}", field="PRODUCT")
    made = services.build_brief(membership, match.pk)
    if pdf is not None:
        pdf.write_bytes(brief_pdf(made))
        print(f"Wrote {pdf} ({pdf.stat().st_size:,} bytes).", file=sys.stderr)
    if markdown is not None:
        markdown.write_text(brief_markdown(made), encoding="utf-8")
        print(f"Wrote {markdown}.", file=sys.stderr)
    if json_out:
        print_json(brief_data(made))
    elif pdf is None and markdown is None:
        sys.stdout.write(brief_markdown(made))
