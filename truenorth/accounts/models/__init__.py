"""Accounts' models: users and API tokens (base), two-factor devices (twofactor), single sign-on
identities (sso)."""

from truenorth.accounts.models.base import *  # noqa: F403
from truenorth.accounts.models.sso import *  # noqa: F403
from truenorth.accounts.models.twofactor import *  # noqa: F403
