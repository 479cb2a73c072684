"""The Typer groups of the Vision commands, filled by the modules of this package."""

from __future__ import annotations

import typer

products_app = typer.Typer(
    name="products", help="Products: list and create.", no_args_is_help=True, add_completion=False
)
goals_app = typer.Typer(
    name="goals",
    help="Goals: the tree, check-ins, proposals, endorsements, concerns and comments.",
    no_args_is_help=True,
    add_completion=False,
)
