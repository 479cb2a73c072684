"""Vision commands: `truenorth lint`, `products …`, `goals …`, `export`, `import`.

Registered on the main app in truenorth/cli.py. Every command acts in one organisation (`--org SLUG`
or TRUENORTH_ORG) as one person (`--as EMAIL` or TRUENORTH_USER), resolved with
orgs.services.membership_for: an organisation you do not belong to is "not found", exactly like one
that does not exist. Commands only parse and print; services and exchange do the work.
Exit codes: 0 done; 1 `lint` found an error-severity finding; 2 bad usage or input (one line on stderr).

One module per workflow: lint, products, goals (the tree), targets, checkins, collaboration
(proposals, endorsements, concerns, comments) and exchange (export, import). The `products` and
`goals` groups live in apps.py; the modules add their commands to them in the order imported here,
which is the order `--help` lists them in.
"""

from __future__ import annotations

# isort: off
from truenorth.strategy.cli.lint import lint
from truenorth.strategy.cli import products  # noqa: F401
from truenorth.strategy.cli import goals  # noqa: F401
from truenorth.strategy.cli import targets  # noqa: F401
from truenorth.strategy.cli import checkins  # noqa: F401
from truenorth.strategy.cli import collaboration  # noqa: F401
from truenorth.strategy.cli.exchange import export, import_

# isort: on
from truenorth.strategy.cli.apps import goals_app, products_app

__all__ = ["export", "goals_app", "import_", "lint", "products_app"]
