"""Fixtures of the accounts tests: the single sign-on ones live in sso_fixtures.py."""

from truenorth.accounts.tests.sso_fixtures import _running_provider, failures, provider  # noqa: F401
