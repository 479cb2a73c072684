"""CLI: `truenorth backup FILE`, `truenorth restore FILE` (truenorth/ops/backup.py)."""

from __future__ import annotations

from typing import Annotated

import typer


def backup(file: Annotated[str, typer.Argument(help="Where to write the backup.")]) -> None:
    """Back up the database and the keys that read its encrypted secrets (placeholder)."""
    raise typer.Exit(2)


def restore(file: Annotated[str, typer.Argument(help="The backup to restore.")]) -> None:
    """Restore a backup made by `truenorth backup` (placeholder)."""
    raise typer.Exit(2)
