"""Settings: single sign-on with OpenID Connect (issue 13). Read from the environment with truenorth.env
helpers; `check_sso` validates them together (at start-up here, and again by accounts/sso.py whenever it
reads them, so tests that change settings get the same errors)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from truenorth.env import ConfigError, env_bool, env_int, env_list, env_str

__all__ = [
    "TRUENORTH_OIDC_BUTTON_LABEL",
    "TRUENORTH_OIDC_CLIENT_ID",
    "TRUENORTH_OIDC_CLIENT_SECRET",
    "TRUENORTH_OIDC_DEFAULT_ROLE",
    "TRUENORTH_OIDC_ISSUER",
    "TRUENORTH_OIDC_JOIN_DOMAINS",
    "TRUENORTH_OIDC_ORGANISATION",
    "TRUENORTH_OIDC_SCOPES",
    "TRUENORTH_OIDC_TIMEOUT_SECONDS",
    "TRUENORTH_PASSWORD_SIGN_IN",
]

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
JOIN_ROLES = ("member", "stakeholder")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$")
_SLUG = re.compile(r"^[-a-z0-9_]{1,60}$")


def scopes_from(raw: str) -> list[str]:
    """Scopes as OpenID Connect writes them (spaces) or as a list (commas); order kept, duplicates dropped."""
    return list(dict.fromkeys(part for part in re.split(r"[\s,]+", raw) if part))


def domains_from(values: list[str]) -> list[str]:
    return [value.strip().lower().removeprefix("@") for value in values if value.strip()]


def check_sso(
    *,
    issuer: str,
    client_id: str,
    client_secret: str,
    scopes: list[str],
    organisation: str,
    join_domains: list[str],
    default_role: str,
    password_sign_in: bool,
) -> None:
    """Raise ConfigError naming the variable when the single sign-on settings are wrong or inconsistent."""
    if not issuer:
        if not password_sign_in:
            raise ConfigError(
                "TRUENORTH_PASSWORD_SIGN_IN: password sign-in can only be switched off when single sign-on "
                "is configured (set TRUENORTH_OIDC_ISSUER), else nobody could sign in"
            )
        return
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"TRUENORTH_OIDC_ISSUER: expected an https:// URL, got {issuer!r}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"TRUENORTH_OIDC_ISSUER: must use https:// (plain http only on localhost), got {issuer!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"TRUENORTH_OIDC_ISSUER: no query or fragment allowed, got {issuer!r}")
    if not client_id:
        raise ConfigError("TRUENORTH_OIDC_CLIENT_ID: required when TRUENORTH_OIDC_ISSUER is set")
    if not client_secret:
        raise ConfigError("TRUENORTH_OIDC_CLIENT_SECRET: required when TRUENORTH_OIDC_ISSUER is set")
    if "openid" not in scopes:
        raise ConfigError(f"TRUENORTH_OIDC_SCOPES: must include 'openid', got {' '.join(scopes)!r}")
    if organisation and not _SLUG.match(organisation):
        raise ConfigError(
            f"TRUENORTH_OIDC_ORGANISATION: expected an organisation's address (slug), got {organisation!r}"
        )
    for domain in join_domains:
        if not _DOMAIN.match(domain):
            raise ConfigError(f"TRUENORTH_OIDC_JOIN_DOMAINS: {domain!r} is not a domain name")
    if join_domains and not organisation:
        raise ConfigError(
            "TRUENORTH_OIDC_ORGANISATION: required with TRUENORTH_OIDC_JOIN_DOMAINS (the organisation "
            "people from those domains join)"
        )
    if default_role not in JOIN_ROLES:
        raise ConfigError(
            f"TRUENORTH_OIDC_DEFAULT_ROLE: expected {' or '.join(JOIN_ROLES)}, got {default_role!r}"
        )


TRUENORTH_OIDC_ISSUER = env_str("TRUENORTH_OIDC_ISSUER", "").strip()
TRUENORTH_OIDC_CLIENT_ID = env_str("TRUENORTH_OIDC_CLIENT_ID", "").strip()
TRUENORTH_OIDC_CLIENT_SECRET = env_str("TRUENORTH_OIDC_CLIENT_SECRET", "")
TRUENORTH_OIDC_SCOPES = scopes_from(env_str("TRUENORTH_OIDC_SCOPES", "openid email profile"))
TRUENORTH_OIDC_BUTTON_LABEL = env_str("TRUENORTH_OIDC_BUTTON_LABEL", "Sign in with single sign-on").strip()
TRUENORTH_OIDC_ORGANISATION = env_str("TRUENORTH_OIDC_ORGANISATION", "").strip()
TRUENORTH_OIDC_JOIN_DOMAINS = domains_from(env_list("TRUENORTH_OIDC_JOIN_DOMAINS", []))
TRUENORTH_OIDC_DEFAULT_ROLE = env_str("TRUENORTH_OIDC_DEFAULT_ROLE", "member").strip().lower()
TRUENORTH_OIDC_TIMEOUT_SECONDS = env_int("TRUENORTH_OIDC_TIMEOUT_SECONDS", 10, minimum=1)
TRUENORTH_PASSWORD_SIGN_IN = env_bool("TRUENORTH_PASSWORD_SIGN_IN", True)

check_sso(
    issuer=TRUENORTH_OIDC_ISSUER,
    client_id=TRUENORTH_OIDC_CLIENT_ID,
    client_secret=TRUENORTH_OIDC_CLIENT_SECRET,
    scopes=TRUENORTH_OIDC_SCOPES,
    organisation=TRUENORTH_OIDC_ORGANISATION,
    join_domains=TRUENORTH_OIDC_JOIN_DOMAINS,
    default_role=TRUENORTH_OIDC_DEFAULT_ROLE,
    password_sign_in=TRUENORTH_PASSWORD_SIGN_IN,
)
