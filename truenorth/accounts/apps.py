from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "truenorth.accounts"
    label = "accounts"

    def ready(self) -> None:
        # Registers the periodic purge of old failed sign-ins with huey, in every process (the worker too).
        from truenorth.accounts import jobs  # noqa: F401
        from truenorth.accounts.sso import sso_check
        from truenorth.accounts.twofactor import two_factor_check
        from truenorth.core import health

        health.register(sso_check)  # `truenorth check`: single sign-on settings, discovery, keys
        health.register(two_factor_check)  # `truenorth check`: authenticator secrets readable, policy
