"""Vision commands: `truenorth export` and `truenorth import`: a product's goal tree as a file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape

from truenorth.orgs.commandline import As, Org, console, identity

EXPORT_FORMATS = ("json", "yaml", "markdown")
EXTENSIONS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def export(
    product_id: Annotated[int, typer.Argument(metavar="PRODUCT_ID", help="The product's id.")],
    fmt: Annotated[str, typer.Option("--format", help="json, yaml or markdown.")] = "json",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", metavar="FILE", help="Write here instead of stdout.")
    ] = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Export a product's goal tree (JSON or YAML to import elsewhere, or a Markdown archive)."""
    if fmt not in EXPORT_FORMATS:
        raise click.UsageError(f"--format: '{fmt}' is not one of {', '.join(EXPORT_FORMATS)}")
    membership, _ = identity(org, as_user)
    from truenorth.strategy import exchange

    if fmt == "markdown":
        text = exchange.to_markdown(membership, product_id)
    else:
        text = exchange.dump(exchange.export_tree(membership, product_id), fmt)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"-o: cannot write {output}: {exc.strerror}") from None
    console.print(f"Exported product #{product_id} to {escape(str(output))} ({fmt}).")


def _count(goals: list[dict[str, Any]]) -> dict[str, int]:
    totals = {"goals": 0, "archived": 0, "targets": 0, "observations": 0, "links": 0}
    stack = list(goals)
    while stack:
        goal = stack.pop()
        totals["goals"] += 1
        totals["archived"] += bool(goal.get("archived"))
        totals["links"] += len(goal.get("links") or [])
        for t in goal.get("targets") or []:
            totals["targets"] += 1
            totals["observations"] += len(t.get("observations") or [])
        stack.extend(goal.get("children") or [])
    return totals


def import_(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A goal tree exported as .json or .yaml.")],
    name: Annotated[str | None, typer.Option(help="Name of the new product (default: the file's).")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="json or yaml (default: from the file's extension).")
    ] = None,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Import a goal tree as a new product (all or nothing)."""
    fmt = fmt or EXTENSIONS.get(file.suffix.lower())
    if fmt not in ("json", "yaml"):
        raise click.UsageError(f"--format: give json or yaml (cannot tell from '{file.name}')")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise click.UsageError(f"FILE: cannot read {file}: {reason}") from None
    membership, actor = identity(org, as_user)
    from truenorth.strategy import exchange

    data = exchange.load(text, fmt)
    product = exchange.import_tree(membership, actor, data, name=name)
    n = _count(data.get("goals") or [])
    console.print(
        f"Imported “{escape(product.name)}” as product #{product.pk}: {n['goals']} goals "
        f"({n['archived']} archived), {n['targets']} targets, {n['observations']} observations, "
        f"{n['links']} links."
    )
