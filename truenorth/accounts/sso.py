"""Single sign-on with OpenID Connect (issue 13).

The organisation's identity provider (its issuer URL, set by the operator) signs people in with the
authorisation code flow, PKCE (S256), `state` and `nonce`; the ID token's signature is checked against the
provider's published keys (JWKS) and its `iss`, `aud`, `exp` and `nonce`. authlib's OAuth2Session builds
the request and exchanges the code; joserfc (authlib's JOSE library) checks the token.

Who may come in (`user_for_identity`):
- an identity (issuer, subject) seen before signs in as its user;
- else a user with the same, provider-verified e-mail address is linked to the identity (once: a user
  already linked to another subject of the same provider is refused);
- else a new user (no usable password) is created when the e-mail's domain is in
  TRUENORTH_OIDC_JOIN_DOMAINS or a pending invitation was sent to that address; anybody else is refused.
Then a verified e-mail in a join domain joins TRUENORTH_OIDC_ORGANISATION with TRUENORTH_OIDC_DEFAULT_ROLE
(when not a member yet), and pending invitations to that address are accepted, each recorded in history.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.requests_client import OAuth2Session  # type: ignore[import-untyped]
from authlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]
from django.conf import settings
from django.contrib.auth import login
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet

from truenorth.accounts.backends import SESSION_BACKEND
from truenorth.accounts.models import SSOIdentity, User
from truenorth.conf.sso import LOOPBACK_HOSTS, check_sso
from truenorth.core.health import CheckResult
from truenorth.history.models import HistoryEntry
from truenorth.history.services import record
from truenorth.orgs.models import Invitation, Membership, Organisation

logger = logging.getLogger(__name__)

SIGN_IN_METHOD_KEY = "truenorth_sign_in_method"  # read by accounts/twofactor.py
FLOWS_KEY = "truenorth_oidc_flows"
FLOWS_KEPT = 5  # sign-ins started in other tabs of the same browser stay valid
FLOW_MAX_AGE = 600  # seconds from the button to the callback
LEEWAY = 60  # seconds of clock skew allowed on `exp`, `iat` and `nbf`
METADATA_MAX_AGE = 3600  # seconds the discovery document and keys are kept before being fetched again
# Only asymmetric signatures: an HMAC would be keyed with the client secret, `none` is no signature.
SIGNING_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


def password_sign_in_enabled() -> bool:
    """False when the operator switched password sign-in off (TRUENORTH_PASSWORD_SIGN_IN=false)."""
    return bool(getattr(settings, "TRUENORTH_PASSWORD_SIGN_IN", True))


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OIDCConfig:
    """The single sign-on settings, checked together."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    button_label: str
    organisation: str
    join_domains: tuple[str, ...]
    default_role: str
    timeout: int


def config() -> OIDCConfig | None:
    """The settings, or None when single sign-on is off; ConfigError (naming the variable) when wrong."""
    cfg = OIDCConfig(
        issuer=str(settings.TRUENORTH_OIDC_ISSUER),
        client_id=str(settings.TRUENORTH_OIDC_CLIENT_ID),
        client_secret=str(settings.TRUENORTH_OIDC_CLIENT_SECRET),
        scopes=tuple(settings.TRUENORTH_OIDC_SCOPES),
        button_label=str(settings.TRUENORTH_OIDC_BUTTON_LABEL or "Sign in with single sign-on"),
        organisation=str(settings.TRUENORTH_OIDC_ORGANISATION),
        join_domains=tuple(d.lower() for d in settings.TRUENORTH_OIDC_JOIN_DOMAINS),
        default_role=str(settings.TRUENORTH_OIDC_DEFAULT_ROLE),
        timeout=int(settings.TRUENORTH_OIDC_TIMEOUT_SECONDS),
    )
    check_sso(
        issuer=cfg.issuer,
        client_id=cfg.client_id,
        client_secret=cfg.client_secret,
        scopes=list(cfg.scopes),
        organisation=cfg.organisation,
        join_domains=list(cfg.join_domains),
        default_role=cfg.default_role,
        password_sign_in=password_sign_in_enabled(),
    )
    return cfg if cfg.issuer else None


def enabled() -> bool:
    return bool(settings.TRUENORTH_OIDC_ISSUER)


# --- refusals ---------------------------------------------------------------------------------


class SignInRefused(Exception):
    """A single sign-on that does not sign anybody in: `message` is shown, `reason` only logged."""

    def __init__(self, message: str, reason: str = "", status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or message
        self.status = status


PROVIDER_UNREACHABLE = "The identity provider could not be reached. Try again in a moment."
TOKEN_REFUSED = "The identity provider's answer could not be verified, so nobody was signed in."


# --- the provider's metadata (discovery and keys) ---------------------------------------------


@dataclass(frozen=True)
class Provider:
    """What discovery says about the identity provider, and its signing keys."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_method: str
    algorithms: tuple[str, ...]
    keys: KeySet
    fetched_at: float


_cache: dict[str, Provider] = {}
_cache_lock = threading.Lock()


def forget_provider() -> None:
    """Drop the cached discovery documents and keys (tests; a key rotation is handled by itself)."""
    with _cache_lock:
        _cache.clear()


def _get_json(url: str, timeout: int, what: str) -> dict[str, Any]:
    try:
        response = requests.get(
            url, timeout=timeout, allow_redirects=False, headers={"Accept": "application/json"}
        )
    except requests.RequestException as exc:
        raise SignInRefused(
            PROVIDER_UNREACHABLE, f"{what} {url}: {exc.__class__.__name__}: {exc}", 502
        ) from exc
    if response.status_code != 200:
        raise SignInRefused(PROVIDER_UNREACHABLE, f"{what} {url}: HTTP {response.status_code}", 502)
    try:
        data = response.json()
    except ValueError:
        raise SignInRefused(PROVIDER_UNREACHABLE, f"{what} {url}: not JSON", 502) from None
    if not isinstance(data, dict):
        raise SignInRefused(PROVIDER_UNREACHABLE, f"{what} {url}: not a JSON object", 502)
    return data


def _endpoint(data: dict[str, Any], name: str, issuer: str) -> str:
    """An endpoint from discovery: https (or http on the loopback, like the issuer), never elsewhere."""
    value = data.get(name)
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or not parts.hostname:
        raise SignInRefused(PROVIDER_UNREACHABLE, f"discovery of {issuer}: no {name}", 502)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        raise SignInRefused(PROVIDER_UNREACHABLE, f"discovery of {issuer}: {name} is not https: {value}", 502)
    return str(value)


def discover(cfg: OIDCConfig) -> Provider:
    """Fetch `<issuer>/.well-known/openid-configuration` and the keys it names. The document must name
    the configured issuer: a mismatch is never followed."""
    url = cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
    data = _get_json(url, cfg.timeout, "discovery")
    issuer = data.get("issuer")
    if not isinstance(issuer, str) or issuer.rstrip("/") != cfg.issuer.rstrip("/"):
        raise SignInRefused(
            PROVIDER_UNREACHABLE, f"discovery at {url} names issuer {issuer!r}, not {cfg.issuer!r}", 502
        )
    methods = data.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    auth_method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
    offered = data.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = tuple(alg for alg in SIGNING_ALGORITHMS if alg in offered)
    if not algorithms:
        raise SignInRefused(PROVIDER_UNREACHABLE, f"discovery of {issuer}: no usable signing algorithm", 502)
    jwks_uri = _endpoint(data, "jwks_uri", issuer)
    return Provider(
        issuer=issuer,
        authorization_endpoint=_endpoint(data, "authorization_endpoint", issuer),
        token_endpoint=_endpoint(data, "token_endpoint", issuer),
        jwks_uri=jwks_uri,
        token_auth_method=auth_method,
        algorithms=algorithms,
        keys=_fetch_keys(jwks_uri, cfg.timeout),
        fetched_at=time.monotonic(),
    )


def _fetch_keys(jwks_uri: str, timeout: int) -> KeySet:
    data = _get_json(jwks_uri, timeout, "keys")
    try:
        return KeySet.import_key_set(data)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise SignInRefused(PROVIDER_UNREACHABLE, f"keys at {jwks_uri}: {exc}", 502) from exc


def provider(cfg: OIDCConfig, *, fresh: bool = False) -> Provider:
    """The provider's metadata, cached for METADATA_MAX_AGE seconds in this process."""
    with _cache_lock:
        cached = _cache.get(cfg.issuer)
    if cached is not None and not fresh and time.monotonic() - cached.fetched_at < METADATA_MAX_AGE:
        return cached
    found = discover(cfg)
    with _cache_lock:
        _cache[cfg.issuer] = found
    return found


# --- the flow ---------------------------------------------------------------------------------


def redirect_uri() -> str:
    """The callback address registered at the provider: SITE_URL plus the callback path."""
    return settings.SITE_URL.rstrip("/") + reverse("accounts:sso_callback")


def _session_client(cfg: OIDCConfig, found: Provider) -> OAuth2Session:
    client = OAuth2Session(
        client_id=cfg.client_id,
        client_secret=cfg.client_secret,
        scope=" ".join(cfg.scopes),
        redirect_uri=redirect_uri(),
        token_endpoint_auth_method=found.token_auth_method,
        code_challenge_method="S256",
    )
    client.max_redirects = 0  # the token endpoint answers itself: a redirect (with the secret) is refused
    return client


def begin(request: HttpRequest, next_url: str | None) -> str:
    """Start a sign-in: remember state, nonce and PKCE verifier in the session; the provider's URL."""
    cfg = config()
    if cfg is None:
        raise SignInRefused("Single sign-on is not configured here.", status=404)
    found = provider(cfg)
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    client = _session_client(cfg, found)
    url, _ = client.create_authorization_url(
        found.authorization_endpoint, state=state, nonce=nonce, code_verifier=verifier
    )
    flows = {k: v for k, v in request.session.get(FLOWS_KEY, {}).items() if _fresh(v)}
    flows[state] = {"nonce": nonce, "verifier": verifier, "next": next_url or "", "at": time.time()}
    request.session[FLOWS_KEY] = dict(list(flows.items())[-FLOWS_KEPT:])
    return str(url)


def _fresh(flow: Any) -> bool:
    return isinstance(flow, dict) and time.time() - float(flow.get("at", 0)) < FLOW_MAX_AGE


def finish(request: HttpRequest) -> tuple[User, str]:
    """The callback: check state, exchange the code (with the PKCE verifier), verify the ID token, find or
    create the user per the join policy and sign them in. Returns the user and where to go next."""
    cfg = config()
    if cfg is None:
        raise SignInRefused("Single sign-on is not configured here.", status=404)
    state = request.GET.get("state", "")
    flows = dict(request.session.get(FLOWS_KEY, {}))
    flow = flows.pop(state, None) if state else None
    request.session[FLOWS_KEY] = flows
    if not _fresh(flow):
        raise SignInRefused(
            "This sign-in was not started here or took too long: start again.",
            f"unknown or stale state {state[:12]!r}",
            400,
        )
    assert isinstance(flow, dict)
    if error := request.GET.get("error"):
        description = request.GET.get("error_description", "")[:200]
        raise SignInRefused(
            "The identity provider did not sign you in"
            + (f": {description}" if description else f" ({error})."),
            f"provider answered error={error!r} {description!r}",
        )
    code = request.GET.get("code", "")
    if not code:
        raise SignInRefused("The identity provider's answer had no code: start again.", status=400)
    found = provider(cfg)
    client = _session_client(cfg, found)
    try:
        token = client.fetch_token(
            found.token_endpoint, code=code, code_verifier=flow["verifier"], timeout=cfg.timeout
        )
    except requests.RequestException as exc:
        raise SignInRefused(
            PROVIDER_UNREACHABLE, f"token endpoint: {exc.__class__.__name__}: {exc}", 502
        ) from exc
    except (OAuthError, OAuth2Error, ValueError) as exc:
        raise SignInRefused(TOKEN_REFUSED, f"token endpoint refused the code: {exc}") from exc
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SignInRefused(TOKEN_REFUSED, "token response without an id_token")
    claims = verify_id_token(cfg, found, id_token, flow["nonce"])
    user = user_for_identity(cfg, found.issuer, claims)
    login(request, user, backend=SESSION_BACKEND)
    # The identity provider does the second factor: two-factor sign-in (accounts/twofactor.py) exempts it.
    request.session[SIGN_IN_METHOD_KEY] = "oidc"
    return user, str(flow.get("next") or "")


def _key_for(cfg: OIDCConfig, found: Provider, id_token: str) -> tuple[Provider, Any]:
    """The key that signed the token (by `kid`); fetch the keys again once when the kid is unknown, as
    after a key rotation at the provider."""
    from joserfc.jws import extract_compact

    try:
        header = extract_compact(id_token.encode()).headers()
    except (JoseError, ValueError) as exc:
        raise SignInRefused(TOKEN_REFUSED, f"ID token is not a compact JWS: {exc}") from exc
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in found.algorithms:
        raise SignInRefused(TOKEN_REFUSED, f"ID token signed with {alg!r}, allowed {found.algorithms}")
    for attempt in (found, None):
        current = attempt or provider(cfg, fresh=True)
        keys = [k for k in current.keys.keys if kid is None or k.kid == kid]
        if len(keys) == 1:
            return current, keys[0]
        if kid is None:
            raise SignInRefused(TOKEN_REFUSED, "ID token without kid and several keys published")
    raise SignInRefused(TOKEN_REFUSED, f"ID token signed by unknown key {kid!r}")


def verify_id_token(cfg: OIDCConfig, found: Provider, id_token: str, nonce: str) -> dict[str, Any]:
    """The ID token's claims after checking its signature, issuer, audience, expiry and nonce."""
    found, key = _key_for(cfg, found, id_token)
    try:
        token = jwt.decode(id_token, key, algorithms=list(found.algorithms))
    except (JoseError, ValueError) as exc:
        raise SignInRefused(TOKEN_REFUSED, f"ID token signature: {exc.__class__.__name__}: {exc}") from exc
    claims = dict(token.claims)
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY,
        iss={"essential": True, "value": found.issuer},
        aud={"essential": True, "value": cfg.client_id},
        exp={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError as exc:
        raise SignInRefused(TOKEN_REFUSED, "ID token expired") from exc
    except JoseError as exc:
        raise SignInRefused(TOKEN_REFUSED, f"ID token claims: {exc.__class__.__name__}: {exc}") from exc
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != cfg.client_id:
        raise SignInRefused(TOKEN_REFUSED, f"ID token for several audiences, azp {claims.get('azp')!r}")
    return claims


# --- who comes in -----------------------------------------------------------------------------

NOT_INVITED = (
    "You have no account here yet, and joining is by invitation only: ask an admin of your organisation "
    "for an invitation, then sign in again."
)
NOT_VERIFIED = (
    "Your identity provider did not confirm your e-mail address, so it cannot be used here. Ask your "
    "identity provider's administrator to verify it."
)


def _verified_email(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        return None
    verified = claims.get("email_verified")
    if verified is True or (isinstance(verified, str) and verified.lower() == "true"):
        return email.strip().lower()
    return None


def _pending_invitations(email: str) -> list[Invitation]:
    return list(
        Invitation.objects.select_related("organisation").filter(
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
    )


def _join(org: Organisation, user: User, role: str) -> None:
    membership = Membership.objects.create(organisation=org, user=user, role=role)
    record(org, membership, user, HistoryEntry.Action.CREATED, {"role": {"old": None, "new": role}})


def _accept(invitations: Iterable[Invitation], user: User) -> None:
    """Accept the pending invitations sent to the user's (provider-verified) address, as the link would."""
    for invitation in invitations:
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        if not Membership.objects.filter(organisation=invitation.organisation, user=user).exists():
            _join(invitation.organisation, user, invitation.role)


def _join_organisation(cfg: OIDCConfig, email: str | None) -> Organisation | None:
    """The organisation this verified address joins by its domain, if any."""
    if email is None or email.rpartition("@")[2] not in cfg.join_domains:
        return None
    org = Organisation.objects.filter(slug=cfg.organisation).first()
    if org is None:
        raise SignInRefused(
            "Single sign-on is misconfigured here: tell the operator.",
            f"TRUENORTH_OIDC_ORGANISATION={cfg.organisation!r} names no organisation",
            503,
        )
    return org


def _display_name(claims: dict[str, Any]) -> str:
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get("given_name"), claims.get("family_name")]
        name = " ".join(p for p in parts if isinstance(p, str) and p.strip())
    return name.strip()[:150]


def user_for_identity(cfg: OIDCConfig, issuer: str, claims: dict[str, Any]) -> User:
    """The user this verified identity signs in as (found, linked or created), per the join policy."""
    subject = str(claims["sub"])
    email = _verified_email(claims)
    try:
        with transaction.atomic():
            return _user_for_identity(cfg, issuer, subject, email, claims)
    except IntegrityError as exc:  # the same first sign-in twice at once: the other one won
        raise SignInRefused("This sign-in happened twice at once: sign in again.", str(exc), 409) from exc


def _user_for_identity(
    cfg: OIDCConfig, issuer: str, subject: str, email: str | None, claims: dict[str, Any]
) -> User:
    identity = SSOIdentity.objects.select_related("user").filter(issuer=issuer, subject=subject).first()
    if identity is not None:
        user = identity.user
        identity.last_sign_in_at = timezone.now()
        identity.email = email or identity.email
        identity.save(update_fields=["last_sign_in_at", "email"])
    else:
        if email is None:
            raise SignInRefused(NOT_VERIFIED, f"first sign-in of {subject!r} without a verified e-mail")
        existing = User.objects.filter(email__iexact=email).first()
        if existing is not None:
            if SSOIdentity.objects.filter(user=existing, issuer=issuer).exists():
                raise SignInRefused(
                    "Your account here is linked to another account at your identity provider: ask an "
                    "admin to check it.",
                    f"{email} is linked to another subject than {subject!r}",
                )
            user = existing
        else:
            joins = _join_organisation(cfg, email)
            if joins is None and not _pending_invitations(email):
                raise SignInRefused(NOT_INVITED, f"{email}: no join domain and no pending invitation")
            user = User.objects.create_user(email=email, password=None, name=_display_name(claims))
        SSOIdentity.objects.create(user=user, issuer=issuer, subject=subject, email=email)
    if not user.is_active:
        raise SignInRefused("This account is deactivated.", f"{user.email} is inactive")
    if email is not None and email == user.email.lower():
        org = _join_organisation(cfg, email)
        if org is not None and not Membership.objects.filter(organisation=org, user=user).exists():
            _join(org, user, cfg.default_role)
        _accept(_pending_invitations(email), user)
    return user


# --- `truenorth check` ------------------------------------------------------------------------


def sso_check() -> list[CheckResult]:
    """Single sign-on for `truenorth check`: settings consistent, discovery and keys reachable, the join
    organisation exists."""
    from truenorth.env import ConfigError

    name = "single sign-on"
    try:
        cfg = config()
    except ConfigError as exc:
        return [CheckResult(name, "error", str(exc))]
    if cfg is None:
        return [CheckResult(name, "ok", "off (password sign-in only)")]
    results = []
    try:
        found = discover(cfg)
    except SignInRefused as exc:
        results.append(CheckResult(name, "error", exc.reason))
    else:
        results.append(
            CheckResult(
                name,
                "ok",
                f"{found.issuer}: discovery and {len(found.keys.keys)} signing key(s) reachable; "
                f"register {redirect_uri()} as the redirect URI",
            )
        )
    if cfg.organisation:
        try:
            exists = Organisation.objects.filter(slug=cfg.organisation).exists()
        except Exception as exc:  # tables missing before the first migrate
            return [*results, CheckResult(name, "warning", f"cannot read organisations: {exc}")]
        if not exists:
            results.append(
                CheckResult(
                    name, "error", f"TRUENORTH_OIDC_ORGANISATION={cfg.organisation!r}: no such organisation"
                )
            )
    policy = (
        f"verified {', '.join(cfg.join_domains)} addresses join {cfg.organisation} as {cfg.default_role}"
        if cfg.join_domains
        else "newcomers by invitation only"
    )
    password = "on" if password_sign_in_enabled() else "off"
    results.append(CheckResult(name + " policy", "ok", f"{policy}; password sign-in {password}"))
    return results
