"""A local OAuth 2.0 / OpenID Connect provider shaped like Google's and Microsoft's endpoints.

Used by the demo sandbox ("Demo provider", so ``make demo`` shows the whole OAuth flow offline)
and by the test suite (tests/peers/oauth.py), so it imports nothing from pytest.

Built on Authlib's ``AuthorizationServer`` (authorization code grant with PKCE S256 required,
refresh grant with optional rotation, OpenID Connect id_token) and ``ResourceProtector``
(userinfo), with in-memory storage behind one lock. Two flavours share one store and one port::

    /google/o/oauth2/v2/auth                        authorize (consent page)
    /google/token                                   token (code and refresh grants)
    /google/revoke                                  revocation (Google only)
    /google/v1/userinfo                             userinfo
    /google/oauth2/v3/certs                         JWKS
    /google/.well-known/openid-configuration        metadata

    /microsoft/<tenant>/oauth2/v2.0/authorize
    /microsoft/<tenant>/oauth2/v2.0/token
    /microsoft/<tenant>/discovery/v2.0/keys
    /microsoft/<tenant>/v2.0/.well-known/openid-configuration
    /microsoft/oidc/userinfo

    /introspect                                     RFC 7662, client-authenticated (both)

Errors are shaped like the real providers' (Google: ``{"error", "error_description"}``;
Microsoft: ``AADSTS`` descriptions with ``error_codes``, ``timestamp``, ``trace_id``,
``correlation_id``). Secrets and tokens are never logged: the HTTP access log is off and
Authlib's "Issue token" debug lines from this server are dropped.

Usage::

    with OAuthProviderServer() as server:
        server.register_client("app", "secret", ["http://127.0.0.1:5000/cb"])
        print(server.google.authorize_url)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import itertools
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, InvalidRequestError, TokenMixin
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant as _CodeGrant
from authlib.oauth2.rfc6749.grants import RefreshTokenGrant as _RefreshGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode, UserInfo
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, Response, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

GOOGLE = "google"
MICROSOFT = "microsoft"
FLAVOURS = (GOOGLE, MICROSOFT)

GOOGLE_MAIL_SCOPE = "https://mail.google.com/"
_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

# -- keep tokens out of logs --------------------------------------------------------------------

_in_server = threading.local()


class _DropServerTokenLogs(logging.Filter):
    """Authlib's grants log every issued token at DEBUG; drop those from this server."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_in_server, "active", False)


_FILTERED_LOGGERS = (
    "authlib.oauth2.rfc6749.grants.authorization_code",
    "authlib.oauth2.rfc6749.grants.refresh_token",
    "authlib.oauth2.rfc6749.authenticate_client",
)


def _install_log_filter() -> None:
    for name in _FILTERED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropServerTokenLogs) for f in logger.filters):
            logger.addFilter(_DropServerTokenLogs())


class _QuietHandler(WSGIRequestHandler):
    """No access log: query strings may carry tokens (Google's revoke accepts ``?token=``)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log(self, type: str, message: str, *args: Any) -> None:  # noqa: A002
        if type == "error":
            super().log(type, "%s", "request failed")


# -- storage --------------------------------------------------------------------------------


#: The tenant id the Microsoft flavour puts in ``tid`` (Microsoft's consumer tenant).
DEFAULT_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
#: Microsoft resources: an access token is for exactly one of them (its audience).
OUTLOOK_RESOURCE = "https://outlook.office.com"
GRAPH_RESOURCE = "https://graph.microsoft.com"


@dataclass
class User:
    email: str
    sub: str
    name: str = ""
    #: Whether the provider vouches for ``email`` (Google ``email_verified``, Microsoft
    #: ``xms_edov``); False plays an identity that merely claims the address.
    verified: bool = True
    tid: str = DEFAULT_TENANT_ID


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uris: list[str] = field(default_factory=list)
    #: Resource servers (the SMTP and IMAP peers) may introspect any token.
    can_introspect: bool = False
    client_metadata: dict[str, Any] = field(default_factory=dict)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in _AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and not self.can_introspect

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token") and not self.can_introspect


@dataclass
class AuthCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    flavour: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    auth_time: int
    expires_at: float

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


@dataclass
class Token(TokenMixin):
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    client: Client
    user: User
    scope: str
    flavour: str
    family: int  #: tokens descending from one consent; Google's revoke kills the family
    issued_at: float
    expires_in: int
    access_revoked: bool = False
    refresh_revoked: bool = False
    #: Microsoft: the one resource this access token is for (``aud`` at introspection).
    audience: str | None = None
    #: Everything consented to in the flow this token descends from (what refreshes may ask).
    consented: str = ""

    def check_client(self, client: ClientMixin) -> bool:
        return self.client.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return self.consented or self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self) -> bool:
        return self.access_revoked

    def get_user(self) -> User:
        return self.user

    def get_client(self) -> Client:
        return self.client


@dataclass(frozen=True)
class FlavourURLs:
    """Where one flavour's endpoints live (``revoke_url`` is None for Microsoft)."""

    flavour: str
    issuer: str
    authorize_url: str
    token_url: str
    revoke_url: str | None
    userinfo_url: str
    jwks_url: str
    metadata_url: str
    introspection_url: str


# -- Authlib pieces --------------------------------------------------------------------------


class _S256Required(CodeChallenge):
    """PKCE on every authorization request, S256 only (plain and none are refused)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Unsupported 'code_challenge_method': use S256.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class _CodeGrantBase(_CodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(_AUTH_METHODS)

    @property
    def provider(self) -> OAuthProviderServer:
        return self.server.provider

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        self.provider._codes[code] = AuthCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=request.payload.redirect_uri or "",
            scope=request.payload.scope or "",
            user=request.user,
            flavour=self.server.flavour,
            code_challenge=data.get("code_challenge", ""),
            code_challenge_method=data.get("code_challenge_method", ""),
            nonce=data.get("nonce"),
            auth_time=int(time.time()),
            expires_at=time.time() + 600,
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
        item = self.provider._codes.get(code)
        if (
            item
            and item.client_id == client.client_id
            and item.flavour == self.server.flavour
            and item.expires_at > time.time()
        ):
            return item
        return None

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        self.provider._codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthCode) -> User:
        return authorization_code.user


class _RefreshGrantBase(_RefreshGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(_AUTH_METHODS)  # client_secret_post too (DESIGN.md)

    @property
    def provider(self) -> OAuthProviderServer:
        return self.server.provider

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        token = self.provider._by_refresh.get(refresh_token)
        if token and not token.refresh_revoked and token.flavour == self.server.flavour:
            return token
        return None

    def authenticate_user(self, refresh_token: Token) -> User:
        return refresh_token.user

    def issue_token(self, user: User, refresh_token: Token) -> dict[str, Any]:
        scope = self.request.payload.scope or refresh_token.get_scope()
        rotate = self.provider.rotate_refresh_tokens[self.server.flavour]
        token: dict[str, Any] = self.generate_token(
            user=user, scope=scope, include_refresh_token=rotate
        )
        return token

    def revoke_old_credential(self, refresh_token: Token) -> None:
        if self.provider.rotate_refresh_tokens[self.server.flavour]:
            refresh_token.refresh_revoked = True


class _OpenID(OpenIDCode):
    def __init__(self, provider: OAuthProviderServer, flavour: str) -> None:
        super().__init__(require_nonce=False)
        self.provider = provider
        self.flavour = flavour

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return any(c.nonce == nonce for c in self.provider._codes.values())

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.provider._key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": self.provider._key.kid or "", "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.provider.urls(self.flavour).issuer,
            "aud": client.client_id,
            "iat": now,
            "exp": now + 3600,
        }

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        claims = self.provider._claims(user, scope, self.flavour)
        # Knob for negative tests: forged aud / iss / nonce / exp in the next id_tokens.
        claims.update(self.provider.id_token_claims)
        return claims


class _Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = list(_AUTH_METHODS)

    def __init__(self, provider: OAuthProviderServer) -> None:
        super().__init__()
        self.provider = provider

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        p = self.provider
        if token_type_hint == "refresh_token":
            return p._by_refresh.get(token_string) or p._by_access.get(token_string)
        return p._by_access.get(token_string) or p._by_refresh.get(token_string)

    def check_permission(self, token: Token, client: Client, request: Any) -> bool:
        return client.can_introspect or token.check_client(client)

    def create_introspection_payload(self, token: Token | None) -> dict[str, Any]:
        if token is None:
            return {"active": False}
        if request.form.get("token") == token.refresh_token:
            active = not token.refresh_revoked
        else:
            active = not (token.is_expired() or token.is_revoked())
        if not active:
            return {"active": False}
        return self.introspect_token(token)

    def introspect_token(self, token: Token) -> dict[str, Any]:
        audience = token.audience or token.client.client_id
        return {
            "active": True,
            "client_id": token.client.client_id,
            "token_type": "Bearer",
            "username": token.user.email,
            "email": token.user.email,
            "scope": token.scope,
            "sub": token.user.sub,
            "aud": audience,
            "iss": self.provider.urls(token.flavour).issuer,
            "exp": int(token.issued_at + token.expires_in),
            "iat": int(token.issued_at),
        }


class _FlavourServer(AuthorizationServer):
    """One AuthorizationServer per flavour; both share the provider's store."""

    def __init__(self, app: Flask, provider: OAuthProviderServer, flavour: str) -> None:
        self.provider = provider
        self.flavour = flavour
        super().__init__(app, query_client=provider._query_client, save_token=self._save)

    def _save(self, token: dict[str, Any], req: Any) -> None:
        self.provider._save_token(token, req, self.flavour)


class _Bearer(BearerTokenValidator):
    def __init__(self, provider: OAuthProviderServer) -> None:
        super().__init__()
        self.provider = provider

    def authenticate_token(self, token_string: str) -> Token | None:
        return self.provider._by_access.get(token_string)


# -- the server -----------------------------------------------------------------------------


class OAuthProviderServer:
    """The local provider: a Flask app in a werkzeug thread on 127.0.0.1.

    Knobs (plain attributes, read on each request; :meth:`reset` restores them):
    ``expires_in`` (access token lifetime, seconds), ``omit_refresh_token`` (token responses
    without one), ``omit_email`` (no email in id_token or userinfo),
    ``rotate_refresh_tokens`` (per flavour; Google does not rotate by default, Microsoft does),
    :meth:`fail_token_endpoint_with` (an HTTP status for every token request), and counters
    ``token_requests`` / ``refresh_requests``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default_user: str = "alice@example.test",
        users: Iterable[str] = (),
        tenant: str = "common",
        google_rotates: bool = False,
        microsoft_rotates: bool = True,
        expires_in: int = 3600,
        introspection_client_id: str = "mail-servers",
        introspection_client_secret: str | None = None,
        brand: str | None = None,
    ) -> None:
        _install_log_filter()
        #: The name its consent page signs in with (``None``: "Google" or "Microsoft", as the
        #: flavour imitates); the demo sandbox calls it "Demo provider", as the app does.
        self.brand = brand
        self.host = host
        self._port = port
        self.default_user = default_user
        self.tenant = tenant
        self._defaults = {
            "expires_in": expires_in,
            "rotate": {GOOGLE: google_rotates, MICROSOFT: microsoft_rotates},
        }
        self.lock = threading.RLock()
        self._key = RSAKey.generate_key(
            2048,
            parameters={"kid": secrets.token_hex(8), "use": "sig", "alg": "RS256"},
            private=True,
        )
        self._users: dict[str, User] = {}
        self._clients: dict[str, Client] = {}
        self._codes: dict[str, AuthCode] = {}
        self._tokens: list[Token] = []
        self._by_access: dict[str, Token] = {}
        self._by_refresh: dict[str, Token] = {}
        self._families = itertools.count(1)
        self.introspection_client_id = introspection_client_id
        self.introspection_client_secret = introspection_client_secret or secrets.token_urlsafe(24)
        self._clients[introspection_client_id] = Client(
            introspection_client_id, self.introspection_client_secret, [], can_introspect=True
        )
        for email in (default_user, *users):
            self.add_user(email)
        self.reset()
        self.app = self._build_app()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- knobs ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Restore every knob and zero the counters (clients, users and tokens stay; identities
        swapped by :meth:`replace_identity` are swapped back)."""
        with self.lock:
            for key, original in getattr(self, "_replaced", {}).items():
                self._users[key] = original
            self._replaced: dict[str, User] = {}
            self.expires_in: int = int(self._defaults["expires_in"])  # type: ignore[call-overload]
            self.omit_refresh_token = False
            self.omit_email = False
            self.rotate_refresh_tokens: dict[str, bool] = dict(self._defaults["rotate"])  # type: ignore[call-overload]
            self.token_endpoint_status: int | None = None
            self.token_requests = 0
            self.refresh_requests = 0
            self.userinfo_requests = 0
            #: Claims forced into the next id_tokens (forged ``aud``, ``iss``, ``nonce``, ``exp``).
            self.id_token_claims: dict[str, Any] = {}
            #: Scopes of every token request, in order (``None`` when the request named none).
            self.requested_scopes: list[str | None] = []

    def fail_token_endpoint_with(self, status: int | None) -> None:
        """Answer every token request with ``status`` (e.g. 503); None restores service."""
        with self.lock:
            self.token_endpoint_status = status

    def add_user(self, email: str, name: str = "") -> User:
        with self.lock:
            user = self._users.get(email.lower())
            if user is None:
                sub = hashlib.sha256(email.lower().encode()).hexdigest()[:21]
                user = User(email=email, sub=sub, name=name or email.split("@")[0].title())
                self._users[email.lower()] = user
            return user

    def replace_identity(
        self, email: str, *, verified: bool = True, tid: str = DEFAULT_TENANT_ID
    ) -> User:
        """From now on, consent as ``email`` signs in a *different* identity (new ``sub``,
        ``oid``) claiming that address: another tenant's user who set it as their mail, say.
        ``verified=False``: the provider does not vouch for it (``xms_edov`` / ``email_verified``
        false). Tokens already issued stay with the old identity."""
        with self.lock:
            user = User(
                email=email,
                sub=secrets.token_hex(11),
                name=email.split("@")[0].title(),
                verified=verified,
                tid=tid,
            )
            original = self._users.get(email.lower())
            if original is not None:
                self._replaced.setdefault(email.lower(), original)
            self._users[email.lower()] = user
            return user

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str] = ()
    ) -> Client:
        """Register (or update) an OAuth client; redirect URIs may be added later too."""
        with self.lock:
            client = self._clients.get(client_id)
            if client is None:
                client = Client(client_id, client_secret, [])
                self._clients[client_id] = client
            client.client_secret = client_secret
            for uri in redirect_uris:
                if uri not in client.redirect_uris:
                    client.redirect_uris.append(uri)
            return client

    def add_redirect_uri(self, client_id: str, redirect_uri: str) -> None:
        with self.lock:
            client = self._clients[client_id]
            if redirect_uri not in client.redirect_uris:
                client.redirect_uris.append(redirect_uri)

    def revoke_user(self, email: str) -> int:
        """Revoke every token of ``email`` (as when a user removes the app's access)."""
        with self.lock:
            hits = [t for t in self._tokens if t.user.email.lower() == email.lower()]
            for token in hits:
                token.access_revoked = token.refresh_revoked = True
            return len(hits)

    def expire_access_tokens(self, email: str | None = None) -> None:
        """Make access tokens (of ``email``, or all) expired now; refresh tokens stay valid."""
        with self.lock:
            for token in self._tokens:
                if email is None or token.user.email.lower() == email.lower():
                    token.issued_at = time.time() - token.expires_in - 1

    def issue_token(
        self,
        email: str | None = None,
        *,
        client_id: str,
        flavour: str = GOOGLE,
        scope: str | None = None,
    ) -> dict[str, Any]:
        """Mint a token pair without the browser flow (as if consent had been given)."""
        with self.lock:
            client = self._clients[client_id]
            user = self.add_user(email or self.default_user)
            consented = scope or " ".join(default_scopes(flavour))
            token = {
                "access_token": _new_token(flavour, "access"),
                "refresh_token": _new_token(flavour, "refresh"),
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "scope": consented,
            }
            audience = None
            if flavour == MICROSOFT:
                token["scope"], audience = one_resource(consented)
            self._store(
                token, client, user, flavour, family=next(self._families),
                audience=audience, consented=consented,
            )  # fmt: skip
            return token

    def token_active(self, access_token: str) -> bool:
        return self.token_info(access_token) is not None

    def token_info(self, access_token: str) -> dict[str, Any] | None:
        """``{"email", "scope", "flavour", "client_id"}`` of an active access token, else None
        (what a resource server such as Graph learns from a token)."""
        with self.lock:
            token = self._by_access.get(access_token)
            if token is None or token.is_expired() or token.is_revoked():
                return None
            return {
                "email": token.user.email,
                "scope": token.scope,
                "flavour": token.flavour,
                "client_id": token.client.client_id,
                "audience": token.audience,
            }

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the OAuth provider is not running")
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def introspection_url(self) -> str:
        return f"{self.base_url}/introspect"

    @property
    def google(self) -> FlavourURLs:
        return self.urls(GOOGLE)

    @property
    def microsoft(self) -> FlavourURLs:
        return self.urls(MICROSOFT)

    def urls(self, flavour: str, tenant: str | None = None) -> FlavourURLs:
        base = self.base_url
        if flavour == GOOGLE:
            g = f"{base}/google"
            return FlavourURLs(
                GOOGLE,
                issuer=g,
                authorize_url=f"{g}/o/oauth2/v2/auth",
                token_url=f"{g}/token",
                revoke_url=f"{g}/revoke",
                userinfo_url=f"{g}/v1/userinfo",
                jwks_url=f"{g}/oauth2/v3/certs",
                metadata_url=f"{g}/.well-known/openid-configuration",
                introspection_url=self.introspection_url,
            )
        m = f"{base}/microsoft/{tenant or self.tenant}"
        return FlavourURLs(
            MICROSOFT,
            issuer=f"{m}/v2.0",
            authorize_url=f"{m}/oauth2/v2.0/authorize",
            token_url=f"{m}/oauth2/v2.0/token",
            revoke_url=None,
            userinfo_url=f"{base}/microsoft/oidc/userinfo",
            jwks_url=f"{m}/discovery/v2.0/keys",
            metadata_url=f"{m}/v2.0/.well-known/openid-configuration",
            introspection_url=self.introspection_url,
        )

    def start(self) -> OAuthProviderServer:
        if self._server is not None:
            return self
        self._server = make_server(
            self.host, self._port, self.app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oauth-provider", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> OAuthProviderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- store (callers hold the lock) ----------------------------------------------------

    def _query_client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def _store(
        self,
        token: dict[str, Any],
        client: Client,
        user: User,
        flavour: str,
        *,
        family: int,
        audience: str | None = None,
        consented: str = "",
    ) -> Token:
        item = Token(
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            client=client,
            user=user,
            scope=token.get("scope", ""),
            flavour=flavour,
            family=family,
            issued_at=time.time(),
            expires_in=int(token["expires_in"]),
            audience=audience,
            consented=consented or token.get("scope", ""),
        )
        self._tokens.append(item)
        self._by_access[item.access_token] = item
        if item.refresh_token:
            self._by_refresh[item.refresh_token] = item
        return item

    def _save_token(self, token: dict[str, Any], req: Any, flavour: str) -> None:
        if self.omit_refresh_token:
            token.pop("refresh_token", None)
        parent: Token | None = req.refresh_token
        consented = parent.consented if parent is not None else str(token.get("scope") or "")
        audience = None
        if flavour == MICROSOFT:
            token["ext_expires_in"] = token["expires_in"]
            # One token per resource: the first one asked for (Microsoft's v2 endpoint).
            token["scope"], audience = one_resource(str(token.get("scope") or ""))
        family = parent.family if parent is not None else next(self._families)
        self._store(
            token, req.client, req.user, flavour, family=family,
            audience=audience, consented=consented,
        )  # fmt: skip

    def _microsoft_refresh_scope(self, form: Any) -> Response | None:
        """Microsoft's answers to a refresh asking for scopes it will not grant in one token."""
        scope = str(form.get("scope") or "")
        resources = {r for r in map(_resource, scope.split()) if r}
        if len(resources) > 1:
            body = _ms_error(
                "invalid_request",
                28000,
                "Provided value for the input parameter scope is not valid because it contains "
                "more than one resource.",
            )
            return Response(json.dumps(body), status=400, mimetype="application/json")
        parent = self._by_refresh.get(str(form.get("refresh_token") or ""))
        if parent is not None and not parent.refresh_revoked:
            consented = set(parent.consented.split())
            missing = [s for s in scope.split() if _resource(s) and s not in consented]
            if missing:
                body = _ms_error(
                    "invalid_grant",
                    65001,
                    "The user or administrator has not consented to use the application.",
                )
                body["suberror"] = "consent_required"
                return Response(json.dumps(body), status=400, mimetype="application/json")
        return None

    def _revoke_family(self, family: int) -> None:
        for token in self._tokens:
            if token.family == family:
                token.access_revoked = token.refresh_revoked = True

    def _claims(self, user: User, scope: str, flavour: str) -> UserInfo:
        claims: dict[str, Any] = {"sub": user.sub}
        scopes = scope.split()
        if "email" in scopes and not self.omit_email:
            claims["email"] = user.email
            if flavour == GOOGLE:
                claims["email_verified"] = user.verified
        if flavour == MICROSOFT:
            claims["tid"] = user.tid
            claims["oid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, user.sub))
            # Optional claim: "email domain owner verified" (absent/false: anyone may have set
            # this address on their account).
            claims["xms_edov"] = user.verified
            claims["ver"] = "2.0"
            claims["name"] = user.name
            if not self.omit_email:
                claims["preferred_username"] = user.email
        return UserInfo(claims)

    # -- the Flask app --------------------------------------------------------------------

    def _build_app(self) -> Flask:
        app = Flask("oauth_provider")
        app.config.update(
            OAUTH2_REFRESH_TOKEN_GENERATOR=True,
            SECRET_KEY=secrets.token_hex(16),
        )
        servers = {f: _FlavourServer(app, self, f) for f in FLAVOURS}
        for flavour, server in servers.items():
            server.register_token_generator(
                "default",
                BearerTokenGenerator(
                    lambda *a, f=flavour, **k: _new_token(f, "access"),
                    lambda *a, f=flavour, **k: _new_token(f, "refresh"),
                    lambda client, grant_type: self.expires_in,
                ),
            )
            code_grant = type(f"{flavour.title()}CodeGrant", (_CodeGrantBase,), {})
            refresh_grant = type(f"{flavour.title()}RefreshGrant", (_RefreshGrantBase,), {})
            server.register_grant(
                code_grant, [_S256Required(required=True), _OpenID(self, flavour)]
            )
            server.register_grant(refresh_grant)
        servers[GOOGLE].register_endpoint(_Introspection(self))
        protector = ResourceProtector()
        protector.register_token_validator(_Bearer(self))

        def locked(view: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                _in_server.active = True
                try:
                    with self.lock:
                        return view(*args, **kwargs)
                finally:
                    _in_server.active = False

            wrapper.__name__ = view.__name__
            return wrapper

        # authorize --------------------------------------------------------------------
        def authorize(flavour: str, tenant: str | None = None) -> Any:
            server = servers[flavour]
            try:
                grant = server.get_consent_grant(end_user=None)
            except OAuth2Error as error:
                if error.redirect_uri:  # redirect URI validated: tell the client
                    return server.handle_error_response(None, error)
                return _error_page(flavour, error), 400
            if request.method == "GET":  # login_hint pre-fills the address, as at Google
                hint = (request.args.get("login_hint") or "").strip()
                email = hint if "@" in hint else self.default_user
                return _consent_page(flavour, grant, email, brand=self.brand)
            if request.form.get("action") != "allow":
                return _deny_redirect(flavour, grant)
            email = (request.form.get("email") or "").strip()
            if "@" not in email:
                page = _consent_page(
                    flavour, grant, email, error="Enter an email address.", brand=self.brand
                )
                return page, 400
            user = self.add_user(email)
            return server.create_authorization_response(grant_user=user, grant=grant)

        app.add_url_rule(
            "/google/o/oauth2/v2/auth",
            "google_authorize",
            locked(lambda: authorize(GOOGLE)),
            methods=["GET", "POST"],
        )
        app.add_url_rule(
            "/microsoft/<tenant>/oauth2/v2.0/authorize",
            "microsoft_authorize",
            locked(lambda tenant: authorize(MICROSOFT, tenant)),
            methods=["GET", "POST"],
        )

        # token ------------------------------------------------------------------------
        def token(flavour: str, tenant: str | None = None) -> Any:
            self.token_requests += 1
            grant_type = request.form.get("grant_type")
            if grant_type == "refresh_token":
                self.refresh_requests += 1
            self.requested_scopes.append(request.form.get("scope"))
            if self.token_endpoint_status is not None:
                return _unavailable(flavour, self.token_endpoint_status)
            if flavour == MICROSOFT and grant_type == "refresh_token":
                refused = self._microsoft_refresh_scope(request.form)
                if refused is not None:
                    return refused
            response = servers[flavour].create_token_response()
            if response.status_code >= 400:
                return _shape_error(flavour, response, grant_type)
            return response

        app.add_url_rule(
            "/google/token", "google_token", locked(lambda: token(GOOGLE)), methods=["POST"]
        )
        app.add_url_rule(
            "/microsoft/<tenant>/oauth2/v2.0/token",
            "microsoft_token",
            locked(lambda tenant: token(MICROSOFT, tenant)),
            methods=["POST"],
        )

        # revoke (Google only: no client authentication, token in body or query) --------
        def revoke() -> Any:
            value = request.form.get("token") or request.args.get("token")
            item = self._by_access.get(value or "") or self._by_refresh.get(value or "")
            if item is None or (item.access_revoked and item.refresh_revoked):
                return jsonify(
                    error="invalid_token", error_description="Token expired or revoked"
                ), 400
            self._revoke_family(item.family)
            return jsonify({})

        app.add_url_rule("/google/revoke", "google_revoke", locked(revoke), methods=["POST"])

        # userinfo ---------------------------------------------------------------------
        def userinfo(flavour: str) -> Any:
            self.userinfo_requests += 1
            with protector.acquire(None) as tok:
                return jsonify(self._claims(tok.user, tok.scope, flavour))

        app.add_url_rule(
            "/google/v1/userinfo",
            "google_userinfo",
            locked(lambda: userinfo(GOOGLE)),
            methods=["GET", "POST"],
        )
        app.add_url_rule(
            "/microsoft/oidc/userinfo",
            "microsoft_userinfo",
            locked(lambda: userinfo(MICROSOFT)),
            methods=["GET", "POST"],
        )

        # introspection, JWKS, metadata --------------------------------------------------
        app.add_url_rule(
            "/introspect",
            "introspect",
            locked(lambda: servers[GOOGLE].create_endpoint_response("introspection")),
            methods=["POST"],
        )

        def jwks(tenant: str | None = None) -> Any:
            return jsonify(keys=[self._key.as_dict(private=False)])

        app.add_url_rule("/google/oauth2/v3/certs", "google_jwks", jwks)
        app.add_url_rule("/microsoft/<tenant>/discovery/v2.0/keys", "microsoft_jwks", jwks)

        def metadata(flavour: str, tenant: str | None = None) -> Any:
            return jsonify(_metadata(self.urls(flavour, tenant)))

        app.add_url_rule(
            "/google/.well-known/openid-configuration",
            "google_metadata",
            lambda: metadata(GOOGLE),
        )
        app.add_url_rule(
            "/microsoft/<tenant>/v2.0/.well-known/openid-configuration",
            "microsoft_metadata",
            lambda tenant: metadata(MICROSOFT, tenant),
        )
        return app


# -- helpers --------------------------------------------------------------------------------


def default_scopes(flavour: str) -> tuple[str, ...]:
    if flavour == GOOGLE:
        return ("openid", "email", GOOGLE_MAIL_SCOPE)
    return (
        "openid",
        "email",
        "offline_access",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
    )


def _resource(scope: str) -> str | None:
    """The resource a Microsoft scope belongs to (``https://graph.microsoft.com/Mail.Send`` ->
    ``https://graph.microsoft.com``); None for OpenID scopes and ``offline_access``."""
    if "://" not in scope:
        return None
    scheme, rest = scope.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


def one_resource(scope: str) -> tuple[str, str | None]:
    """The scopes a Microsoft access token gets for ``scope``: those of its first resource
    (plus the OpenID ones), and that resource (the token's audience)."""
    items = scope.split()
    first = next((r for r in map(_resource, items) if r), None)
    kept = [s for s in items if _resource(s) in (None, first)]
    return " ".join(kept), first


def _new_token(flavour: str, kind: str) -> str:
    # Google's access tokens start "ya29.", refresh tokens "1//"; Microsoft's are long opaque
    # strings (JWTs for Graph). Long ones exercise the 512-byte SMTP line limit.
    if flavour == GOOGLE:
        prefix = "ya29." if kind == "access" else "1//"
        return prefix + secrets.token_urlsafe(120)
    return ("EwA" if kind == "access" else "M.C5") + secrets.token_urlsafe(900)


def _metadata(urls: FlavourURLs) -> dict[str, Any]:
    data: dict[str, Any] = {
        "issuer": urls.issuer,
        "authorization_endpoint": urls.authorize_url,
        "token_endpoint": urls.token_url,
        "userinfo_endpoint": urls.userinfo_url,
        "jwks_uri": urls.jwks_url,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public" if urls.flavour == GOOGLE else "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"]
        + (["offline_access"] if urls.flavour == MICROSOFT else []),
        "token_endpoint_auth_methods_supported": list(_AUTH_METHODS),
        "claims_supported": ["sub", "email", "email_verified", "iss", "aud", "exp", "iat"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "introspection_endpoint": urls.introspection_url,
    }
    if urls.revoke_url:
        data["revocation_endpoint"] = urls.revoke_url
    return data


def _ms_error(error: str, code: int, text: str) -> dict[str, Any]:
    trace = str(uuid.uuid4())
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {text} Trace ID: {trace} "
        f"Correlation ID: {uuid.uuid4()} Timestamp: {_ms_timestamp()}",
        "error_codes": [code],
        "timestamp": _ms_timestamp(),
        "trace_id": trace,
        "correlation_id": str(uuid.uuid4()),
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


def _ms_timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


_MS_ERRORS = {
    # (error, grant_type) -> (AADSTS code, text)
    ("invalid_grant", "refresh_token"): (70000, "Provided grant is invalid or malformed."),
    ("invalid_grant", "authorization_code"): (
        70008,
        "The provided authorization code or refresh token has expired due to inactivity.",
    ),
    ("invalid_client", None): (7000215, "Invalid client secret provided."),
    ("invalid_request", None): (900144, "The request body must contain a valid parameter."),
    ("unsupported_grant_type", None): (70003, "The app requested an unsupported grant type."),
}

_GOOGLE_ERRORS = {
    ("invalid_grant", "refresh_token"): "Token has been expired or revoked.",
    ("invalid_grant", "authorization_code"): "Bad Request",
    ("invalid_client", None): "Unauthorized",
}


def _shape_error(flavour: str, response: Response, grant_type: str | None) -> Response:
    """Rewrite Authlib's RFC 6749 error body into the provider's own shape."""
    try:
        error = json.loads(response.get_data(as_text=True)).get("error", "invalid_request")
    except ValueError:
        error = "invalid_request"
    if flavour == GOOGLE:
        description = _GOOGLE_ERRORS.get((error, grant_type)) or _GOOGLE_ERRORS.get(
            (error, None), "Bad Request"
        )
        body: dict[str, Any] = {"error": error, "error_description": description}
    else:
        code, text = _MS_ERRORS.get((error, grant_type)) or _MS_ERRORS.get(
            (error, None), (900144, "The request is not valid.")
        )
        body = _ms_error(error, code, text)
    status = 401 if error == "invalid_client" else 400
    return Response(
        json.dumps(body),
        status=status,
        headers={"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"},
    )


def _unavailable(flavour: str, status: int) -> Response:
    if flavour == GOOGLE:
        body: dict[str, Any] = {"error": "internal_failure", "error_description": "Backend Error"}
    else:
        body = _ms_error("temporarily_unavailable", 50196, "The server is temporarily unavailable.")
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _deny_redirect(flavour: str, grant: Any) -> Response:
    params = {"error": "access_denied"}
    if flavour == MICROSOFT:
        params["error_description"] = "AADSTS65004: User declined to consent to access the app."
        params["error_subcode"] = "cancel"
    state = grant.request.payload.state
    if state:
        params["state"] = state
    redirect_uri = grant.request.payload.redirect_uri or grant.client.get_default_redirect_uri()
    separator = "&" if "?" in redirect_uri else "?"
    return Response(status=302, headers={"Location": redirect_uri + separator + urlencode(params)})


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
li{{font-family:monospace}} button{{margin-right:.5rem;padding:.4rem 1rem}}</style></head>
<body><h1>{title}</h1>{body}</body></html>"""


def _consent_page(
    flavour: str, grant: Any, email: str, error: str = "", brand: str | None = None
) -> str:
    imitated = "Google" if flavour == GOOGLE else "Microsoft"
    brand = brand or imitated
    scopes = "".join(
        f"<li>{html.escape(s)}</li>" for s in (grant.request.payload.scope or "").split()
    )
    body = (
        f"<p><strong>{html.escape(grant.client.client_id)}</strong> wants to access your "
        + (
            f"{html.escape(brand)} account:</p>"
            if brand != imitated
            else f"{brand} account (demo provider):</p>"
        )
        + f"<ul id='scopes'>{scopes}</ul>"
        + (f"<p role='alert'>{html.escape(error)}</p>" if error else "")
        + "<form method='post'>"
        "<label for='email'>Sign in as</label> "
        f"<input id='email' name='email' type='email' value='{html.escape(email, quote=True)}' "
        "required><p>"
        "<button type='submit' name='action' value='allow'>Allow</button>"
        "<button type='submit' name='action' value='deny' formnovalidate>Deny</button>"
        "</p></form>"
    )
    return _PAGE.format(title=f"Sign in with {html.escape(brand)}", body=body)


def _error_page(flavour: str, error: OAuth2Error) -> str:
    # Google shows "Error 400: redirect_uri_mismatch" without redirecting anywhere.
    name = html.escape(error.error or "invalid_request")
    text = html.escape(error.description or "")
    return _PAGE.format(title="Authorization error", body=f"<p>Error 400: {name}</p><p>{text}</p>")


def pkce_pair() -> tuple[str, str]:
    """A PKCE (code_verifier, S256 code_challenge) pair, for tests and scripts."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


__all__ = [
    "GOOGLE",
    "GRAPH_RESOURCE",
    "MICROSOFT",
    "OUTLOOK_RESOURCE",
    "FlavourURLs",
    "OAuthProviderServer",
    "default_scopes",
    "one_resource",
    "pkce_pair",
]
