"""Vision commands: `truenorth lint`: goal quality over the organisation or one product."""

from __future__ import annotations

from typing import Any

import typer

from truenorth.orgs.commandline import As, Json, Org, ProductOpt, console, identity, print_json, show, table


def lint(
    product: ProductOpt = None,
    as_json: Json = False,
    org: Org = None,
    as_user: As = None,
) -> None:
    """Check goal quality. Exit 0: no error-severity finding; 1: at least one; 2: bad usage."""
    membership, _ = identity(org, as_user)
    from truenorth.strategy import services

    if product is not None:
        services.get_product(membership, product)
    findings: list[dict[str, Any]] = [
        {
            "goal": goal.pk,
            "title": goal.title,
            "product": goal.product.name if goal.product else None,
            "severity": f.severity,
            "rule": f.rule,
            "message": f.message,
        }
        for goal, f in services.lint(membership, product_id=product)
    ]
    errors = sum(1 for f in findings if f["severity"] == "error")
    if as_json:
        print_json(findings)
    elif not findings:
        console.print("No findings.")
    else:
        show(
            table(
                "Goal lint",
                ("Goal", "Product", "Severity", "Rule", "Finding"),
                (
                    (
                        f"#{f['goal']} {f['title']}",
                        f["product"] or "organisation",
                        f["severity"],
                        f["rule"],
                        f["message"],
                    )
                    for f in findings
                ),
            )
        )
        console.print(f"{errors} error(s), {len(findings) - errors} warning(s).")
    if errors:
        raise typer.Exit(1)
