"""CLI: `truenorth backup FILE`, `truenorth restore FILE` (truenorth/ops/backup.py, truenorth/ops/restore.py).

Errors are `BackupError`s (a DomainError): truenorth.cli's main() prints them as one line, exit code 2."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err_console = Console(stderr=True)

PassphraseEnv = Annotated[
    str | None,
    typer.Option(
        "--passphrase-env",
        metavar="VAR",
        help="Read the passphrase for the keys from this environment variable (default: prompt).",
    ),
]
WithoutKeys = Annotated[
    bool,
    typer.Option("--without-keys", help="Leave the keys out (backup) or do not restore them (restore)."),
]


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "truenorth.settings")
    import django

    django.setup()


def _passphrase(variable: str | None, *, confirm: bool) -> str:
    from truenorth.ops.backup import BackupError

    if variable:
        value = os.environ.get(variable)
        if not value:
            raise BackupError(f"the environment variable {variable} is not set or empty")
        return value
    if not sys.stdin.isatty():
        raise BackupError("no terminal to ask the passphrase: pass --passphrase-env VAR")
    return str(typer.prompt("Passphrase for the keys", hide_input=True, confirmation_prompt=confirm))


def backup(
    file: Annotated[str, typer.Argument(help="Where to write the backup (created 0600).")],
    passphrase_env: PassphraseEnv = None,
    without_keys: WithoutKeys = False,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Back up the database (consistent while the server runs) with the keys that read its encrypted secrets."""
    _setup()
    from truenorth.ops.backup import backup as run_backup
    from truenorth.ops.backup import check_passphrase

    passphrase = None
    if not without_keys:
        passphrase = _passphrase(passphrase_env, confirm=True)
        check_passphrase(passphrase)
    result = run_backup(file, passphrase, include_keys=not without_keys, force=force, console=err_console)
    for warning in result.warnings:
        err_console.print(f"[yellow]{escape(warning)}[/yellow]", soft_wrap=True)
    keys = "with the keys (encrypted under the passphrase)" if result.keys_included else "WITHOUT the keys"
    console.print(
        f"Backed up {result.rows} rows in {result.tables} tables {keys} to {escape(str(result.path))} "
        f"({result.size / 1_048_576:.1f} MiB).",
        soft_wrap=True,
    )


def restore(
    file: Annotated[str, typer.Argument(help="The backup to restore.")],
    passphrase_env: PassphraseEnv = None,
    without_keys: WithoutKeys = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask before replacing the database.")] = False,
) -> None:
    """Restore a backup made by `truenorth backup`, replacing the database (SQLite: stop the server first)."""
    _setup()
    from django.db import connection

    from truenorth.ops.backup import BackupError
    from truenorth.ops.restore import read_manifest
    from truenorth.ops.restore import restore as run_restore

    manifest = read_manifest(file)
    if not yes:
        where = "the SQLite database (stop `truenorth serve` and `truenorth worker` first)"
        if connection.vendor != "sqlite":
            where = f"every table of the {connection.vendor} database"
        if not sys.stdin.isatty():
            raise BackupError(f"a restore replaces {where}: pass --yes to confirm (no terminal to ask)")
        if not typer.confirm(f"This replaces {where}. Continue?"):
            err_console.print("Not restored.")
            raise typer.Exit(1)
    passphrase = None
    if manifest.get("keys") and not without_keys:
        passphrase = _passphrase(passphrase_env, confirm=False)
    result = run_restore(file, passphrase, use_keys=not without_keys, console=err_console)
    for line in result.lines:
        console.print(escape(line), soft_wrap=True)
    for warning in result.warnings:
        err_console.print(f"[yellow]{escape(warning)}[/yellow]", soft_wrap=True)
