"""Delivery commands: process (issue 12 part; empty until filled)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
