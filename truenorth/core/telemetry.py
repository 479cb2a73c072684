"""Counters the lower floors bump for the Prometheus metrics (issue 13; exported by truenorth/ops/metrics.py).

Placeholder: no-ops until the metrics land."""

from __future__ import annotations


def sign_in_failed(method: str) -> None:
    """A failed sign-in: `method` is "password", "totp", "recovery" or "oidc"."""


def webhook_failed() -> None:
    """A webhook delivery attempt failed."""


def refresh_failed() -> None:
    """A measure refresh failed."""
