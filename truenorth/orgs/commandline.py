"""CLI plumbing shared by every app's commands: options, identity, and printing.

Every command acts in one organisation (`--org SLUG` or TRUENORTH_ORG) as one person (`--as EMAIL` or
TRUENORTH_USER), resolved with orgs.services.membership_for: an organisation you do not belong to is
"not found", exactly like one that does not exist. Django is set up lazily so `truenorth --help`
stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from truenorth.accounts.models import User
    from truenorth.orgs.models import Membership

console = Console(soft_wrap=True)

Org = Annotated[
    str | None,
    typer.Option(
        "--org", envvar="TRUENORTH_ORG", metavar="SLUG", help="Organisation address (TRUENORTH_ORG)."
    ),
]
As = Annotated[
    str | None,
    typer.Option(
        "--as", envvar="TRUENORTH_USER", metavar="EMAIL", help="Act as this person (TRUENORTH_USER)."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ProductOpt = Annotated[int | None, typer.Option("--product", metavar="ID", help="Only this product.")]
Version = Annotated[
    int | None, typer.Option("--version", help="The version you read; a stale one is refused (409).")
]


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "truenorth.settings")
    import django

    django.setup()


def identity(org: str | None, as_user: str | None) -> tuple[Membership, User]:
    """The acting person's membership; an unknown person or organisation is the same "not found"."""
    if not org:
        raise click.UsageError("--org: give the organisation's address (or set TRUENORTH_ORG)")
    if not as_user:
        raise click.UsageError("--as: give the e-mail address you act as (or set TRUENORTH_USER)")
    setup_django()
    from truenorth.accounts.models import User
    from truenorth.core.errors import NotFound
    from truenorth.orgs.services import membership_for

    user = User.objects.filter(email__iexact=as_user.strip(), is_active=True).first()
    try:
        if user is None:
            raise NotFound()
        return membership_for(user, org), user
    except NotFound:
        raise NotFound(f"No organisation '{org}' with {as_user} in it.", field="--org") from None


def member_id(membership: Membership, email: str | None, option: str) -> int | None:
    """The member with this e-mail address (for options such as --owner), or None when not given."""
    if email is None:
        return None
    from truenorth.orgs.services import member_by_email

    return member_by_email(membership, email, field=option).pk


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def percent(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)} %"


def show(table: Table) -> None:
    """Print a table; when piped or captured, wide enough that rows are not squeezed."""
    (console if console.is_terminal else Console(width=200)).print(table)


def table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    made = Table(title=escape(title))
    for column in columns:
        made.add_column(column)
    for row in rows:
        made.add_row(*(escape("—" if v is None else str(v)) for v in row))
    return made
