"""A real OpenID Connect provider for the single sign-on tests, built with authlib's server side.

It runs in a thread of the test process (wsgiref, threaded, on a free loopback port) and serves what a
Keycloak realm would, under the issuer `http://127.0.0.1:<port>/realms/truenorth`:
- discovery (`/.well-known/openid-configuration`) and the public keys (`/jwks`);
- `/authorize`: authlib's authorisation code grant with the OpenID Connect extension (`OpenIDCode`) and
  PKCE (`CodeChallenge`, here also refusing a request without an S256 challenge); it approves the test
  user at once (`auto_approve`) or shows a small sign-in form (user name and password);
- `/token`: authlib's token endpoint (client secret by HTTP Basic or in the form), which checks the PKCE
  `code_verifier` against the challenge and signs the ID token (RS256, a fresh RSA key).

`provider.behaviour` makes the next tokens wrong on purpose: another audience, already expired, another
issuer, signed by a key the provider does not publish; `discovery_issuer` makes discovery lie; the
user's `email_verified` can be false. `provider.token_requests` keeps what the token endpoint received.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from authlib.oauth2 import AuthorizationServer, OAuth2Error, OAuth2Request  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, OAuth2Payload  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.errors import InvalidRequestError  # type: ignore[import-untyped]
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant  # type: ignore[import-untyped]
from authlib.oauth2.rfc6750 import BearerTokenGenerator  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped]
from authlib.oidc.core import UserInfo  # type: ignore[import-untyped]
from authlib.oidc.core.grants import OpenIDCode  # type: ignore[import-untyped]
from joserfc.jwk import KeySet, RSAKey

REALM = "/realms/truenorth"
CLIENT_ID = "truenorth"
CLIENT_SECRET = "s3cret-of-the-truenorth-client"


@dataclass
class ProviderUser:
    """The person who signs in at the provider."""

    subject: str = "ada-0001"
    email: str = "ada@example.org"
    email_verified: bool = True
    name: str = "Ada Lovelace"
    username: str = "ada"
    password: str = "analytical-engine"


@dataclass
class Behaviour:
    """What the provider's next answers look like (all correct by default)."""

    auto_approve: bool = True
    audience: str | None = None  # None: the client's id
    expired: bool = False
    issuer: str | None = None  # in the ID token; None: the provider's own
    discovery_issuer: str | None = None  # in discovery; None: the provider's own
    wrong_key: bool = False  # sign with a key that is not published (same kid)


@dataclass
class _Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = {"openid", "email", "profile"}
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class _Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    user: ProviderUser
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class _Payload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    @property
    def data(self) -> dict[str, str]:
        return dict(self._pairs)

    @property
    def datalist(self) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        for key, value in self._pairs:
            values.setdefault(key, []).append(value)
        return values


class _Request(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: dict[str, str], query: list, form: list) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = _Payload(query + form)
        self._args, self._form = dict(query), dict(form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _PKCE(CodeChallenge):
    """PKCE required of every client, S256 only (authlib requires it of public clients by itself)."""

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with S256 is required", redirect_uri=redirect_uri)
        super().validate_code_challenge(grant, redirect_uri)


class _CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        provider: OIDCProvider = self.server.provider
        provider.codes[code] = _Code(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=data.get("redirect_uri", ""),
            scope=request.client.get_allowed_scope(data.get("scope", "")),
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            user=request.user,
        )

    def query_authorization_code(self, code: str, client: _Client) -> _Code | None:
        found = self.server.provider.codes.get(code)
        return found if found is not None and found.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        self.server.provider.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: _Code) -> ProviderUser:
        return authorization_code.user


class _OpenIDCode(OpenIDCode):
    def __init__(self, provider: OIDCProvider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return any(code.nonce == nonce for code in self.provider.codes.values())

    def resolve_client_private_key(self, client: _Client) -> RSAKey:
        return self.provider.stray_key if self.provider.behaviour.wrong_key else self.provider.key

    def get_client_algorithm(self, client: _Client) -> str:
        return "RS256"

    def get_encode_header(self, client: _Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": self.provider.key.kid or ""}

    def get_client_claims(self, client: _Client) -> dict[str, Any]:
        behaviour, now = self.provider.behaviour, int(time.time())
        claims: dict[str, Any] = {
            "iss": behaviour.issuer or self.provider.issuer,
            "aud": [behaviour.audience or client.client_id],
            "iat": now,
            "exp": now + 300,
        }
        if behaviour.expired:
            claims.update(iat=now - 3600, exp=now - 1800)
        return claims

    def generate_user_info(self, user: ProviderUser, scope: str) -> UserInfo:
        info = UserInfo(sub=user.subject)
        if "email" in scope.split():
            info.update(email=user.email, email_verified=user.email_verified)
        if "profile" in scope.split():
            info.update(name=user.name)
        return info


class _Server(AuthorizationServer):
    def __init__(self, provider: OIDCProvider) -> None:
        super().__init__(scopes_supported=["openid", "email", "profile"])
        self.provider = provider

    def query_client(self, client_id: str) -> _Client | None:
        client = self.provider.client
        return client if client_id == client.client_id else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        self.provider.tokens.append(token)

    def create_oauth2_request(self, request: _Request) -> _Request:
        return request

    def create_json_request(self, request: _Request) -> _Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Iterable[tuple[str, str]]) -> tuple:
        return status, body, list(headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title>
<link rel="icon" href="data:,"></head><body><h1>Test identity provider</h1>{error}
<form method="post" action="{action}">{hidden}
<label>User name <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in to the provider</button></form></body></html>"""


class OIDCProvider:
    """The provider: `with OIDCProvider(redirect_uri).running() as provider: provider.issuer ...`."""

    def __init__(self, redirect_uris: list[str], user: ProviderUser | None = None) -> None:
        self.key = RSAKey.generate_key(2048, {"kid": "test-key-1", "use": "sig", "alg": "RS256"})
        self.stray_key = RSAKey.generate_key(2048, {"kid": "test-key-1", "use": "sig", "alg": "RS256"})
        self.client = _Client(CLIENT_ID, CLIENT_SECRET, list(redirect_uris))
        self.user = user or ProviderUser()
        self.behaviour = Behaviour()
        self.codes: dict[str, _Code] = {}
        self.tokens: list[dict[str, Any]] = []
        self.token_requests: list[dict[str, str]] = []
        self.base_url = ""
        self.server = _Server(self)
        self.server.register_grant(_CodeGrant, [_OpenIDCode(self), _PKCE(required=True)])
        self.server.register_token_generator(
            "default", BearerTokenGenerator(lambda *args, **kwargs: secrets.token_urlsafe(32))
        )
        self._lock = threading.Lock()

    @property
    def issuer(self) -> str:
        return self.base_url + REALM

    def reset(self, redirect_uris: list[str] | None = None) -> None:
        """Correct answers again, the default user, no codes or tokens."""
        self.behaviour = Behaviour()
        self.user = ProviderUser()
        self.codes.clear()
        self.tokens.clear()
        self.token_requests.clear()
        if redirect_uris is not None:
            self.client.redirect_uris = list(redirect_uris)

    @contextmanager
    def running(self) -> Iterator[OIDCProvider]:
        httpd = make_server(
            "127.0.0.1", 0, self.wsgi, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self.base_url = f"http://127.0.0.1:{httpd.server_port}"
        thread = threading.Thread(target=httpd.serve_forever, name="oidc-provider", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)

    # --- HTTP ----------------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        form: list[tuple[str, str]] = []
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            form = parse_qsl(environ["wsgi.input"].read(length).decode(), keep_blank_values=True)
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        uri = self.base_url + path + ("?" + environ["QUERY_STRING"] if environ.get("QUERY_STRING") else "")
        request = _Request(method, uri, headers, query, form)
        with self._lock:
            status, body, response_headers = self._route(method, path, request)
        if isinstance(body, dict):
            body = json.dumps(body)
            response_headers = [*response_headers, ("Content-Type", "application/json")]
        reason = {200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
        start_response(f"{status} {reason.get(status, 'Status')}", list(response_headers))
        return [str(body or "").encode()]

    def _route(self, method: str, path: str, request: _Request) -> tuple[int, Any, list[tuple[str, str]]]:
        if path == REALM + "/.well-known/openid-configuration":
            return 200, self.discovery(), []
        if path == REALM + "/jwks":
            return 200, KeySet([self.key]).as_dict(private=False), []
        if path == REALM + "/authorize":
            return self._authorize(method, request)
        if path == REALM + "/token" and method == "POST":
            self.token_requests.append(dict(request.form))
            return self.server.create_token_response(request)
        return 404, {"error": "not_found"}, []

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.behaviour.discovery_issuer or self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "email", "profile"],
        }

    def _authorize(self, method: str, request: _Request) -> tuple[int, Any, list[tuple[str, str]]]:
        try:
            grant = self.server.get_consent_grant(request)
        except OAuth2Error as error:
            return self.server.handle_error_response(request, error)
        if method == "GET" and not self.behaviour.auto_approve:
            return 200, self._login_page(request, ""), [("Content-Type", "text/html; charset=utf-8")]
        if method == "POST":
            given = request.form
            if given.get("username") != self.user.username or given.get("password") != self.user.password:
                page = self._login_page(request, "Wrong user name or password.")
                return 200, page, [("Content-Type", "text/html; charset=utf-8")]
        return self.server.create_authorization_response(request, grant_user=self.user, grant=grant)

    def _login_page(self, request: _Request, error: str) -> str:
        params = {k: v for k, v in request.payload.data.items() if k not in ("username", "password")}
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in params.items()
        )
        return LOGIN_PAGE.format(
            action=html.escape(self.issuer + "/authorize"),
            hidden=hidden,
            error=f'<p role="alert">{html.escape(error)}</p>' if error else "",
        )
