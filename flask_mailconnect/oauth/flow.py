"""The consent flow: send the person to the provider, take the answer back, hand out a grant.

Authlib's Flask client does the protocol. Each app gets its own registry of clients, kept in
``app.extensions["mailconnect.oauth"]`` (never a module global), named ``mailconnect_<key>`` so
the host's own Authlib clients and its ``<NAME>_CLIENT_ID`` settings never mix with ours.

Where things live during a flow:

- Authlib keeps the PKCE ``code_verifier``, the OpenID ``nonce`` and the redirect URI in our
  table ``mailconnect_oauth_state`` (:mod:`.state`, encrypted, taken once); the Flask session
  holds only ``_state_mailconnect_<key>_<state>: {"exp": ...}``. The callback of provider
  ``<key>`` looks only under its own name, so a state issued for one provider never completes
  at another's callback (mix-up defence), and a replayed older cookie finds nothing.
- Our own part, under ``session["mailconnect.oauth"][state]``: the provider key, the owner the
  account is for, who started the flow, the account being signed in again and the ``next``
  target. Both entries are removed the first time the callback sees the state: used once.

Nothing here writes the database: :mod:`flask_mailconnect.accounts` turns an :class:`OAuthGrant`
into an account. Tokens are never logged: Authlib logs the PKCE verifier at DEBUG, which a filter
on its logger drops (see :func:`_quiet_authlib`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App, OAuth
from flask import Flask, current_app, session, url_for
from flask import request as flask_request

from ..exceptions import OAuthFlowError
from ..owners import Owner
from ..transport.http import GuardedOAuth2Session, HTTPGuardError
from .providers import OAuthProvider, current_oauth_providers

log = logging.getLogger(__name__)

SESSION_KEY = "mailconnect.oauth"
#: Flows started but not finished, per session; older ones are dropped beyond this.
MAX_PENDING = 5
#: Seconds a person has at the provider before the state expires.
FLOW_TTL = 900
#: Seconds a provider's discovery document (and its keys) are trusted before being read again.
METADATA_TTL = 3600

GRAPH_MAIL_SEND = "https://graph.microsoft.com/Mail.Send"

_GOOGLE_AUTHORIZE = "https://accounts.google.com/o/oauth2/v2/auth"
_MICROSOFT_LOGIN = "https://login.microsoftonline.com/"


@dataclass(frozen=True)
class OAuthGrant:
    """What the provider granted: the address it vouched for and the tokens (never in repr)."""

    provider: OAuthProvider
    email: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime | None
    scopes: str  #: space-separated, as granted (or as requested when the provider is silent)
    #: The provider's stable id of the person (Microsoft ``tid:oid``, else ``sub``), bound to
    #: the account at first consent; ``None`` only for plain OAuth 2.0 servers without one.
    subject: str | None = None
    issuer: str | None = None  #: the ID token's ``iss`` (informational)

    @property
    def graph_send(self) -> bool:
        """Microsoft Graph ``Mail.Send`` was granted (sending without SMTP AUTH)."""
        return GRAPH_MAIL_SEND.lower() in self.scopes.lower().split()


@dataclass(frozen=True)
class PendingFlow:
    """Our part of a flow, kept in the session between start and callback."""

    provider: str
    owner: Owner
    actor_id: str
    account_id: int | None = None
    next: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "owner": list(self.owner),
            "actor": self.actor_id,
            "account_id": self.account_id,
            "next": self.next,
            "exp": time.time() + FLOW_TTL,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingFlow:
        kind, ident = data["owner"]
        return cls(
            provider=str(data["provider"]),
            owner=(str(kind), str(ident)),
            actor_id=str(data["actor"]),
            account_id=data.get("account_id"),
            next=safe_next(data.get("next")),
        )


# -- logging ---------------------------------------------------------------------------------


class _DropSecrets(logging.Filter):
    """Drops Authlib's DEBUG lines that carry the PKCE verifier or a request token."""

    MARKERS = ("code_verifier", "request token", "access_token", "refresh_token")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage().lower()
        except Exception:  # a malformed record: let logging report it as usual
            return True
        return not any(marker in text for marker in self.MARKERS)


#: Authlib's client-side loggers that log secrets at DEBUG.
_AUTHLIB_LOGGERS = (
    "authlib.integrations.base_client.sync_app",
    "authlib.integrations.base_client.async_app",
)


def _quiet_authlib() -> None:
    """Attach the filter once per process (a logger filter: idempotent, app-independent)."""
    for name in _AUTHLIB_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropSecrets) for f in logger.filters):
            logger.addFilter(_DropSecrets())


# -- the per-app registry ----------------------------------------------------------------------


class _Integration(FlaskIntegration):
    @staticmethod
    def load_config(oauth: Any, name: str, params: Any) -> dict[str, Any]:
        # Never read <NAME>_CLIENT_ID and friends from the app config: ours come from
        # MAILCONNECT_PROVIDERS only, and the host's own Authlib settings stay its own.
        return {}


def _http_detail(exc: requests.RequestException) -> str:
    """The guard's code (``blocked_address``, ``redirect_refused``...), else the error's name."""
    return exc.code if isinstance(exc, HTTPGuardError) else type(exc).__name__


class _GuardedApp(FlaskOAuth2App):
    """Authlib's Flask client, with every session it makes (server metadata, token exchange,
    JWKS, userinfo) a guarded one: the transport options travel in ``client_kwargs``."""

    client_cls = GuardedOAuth2Session


class _Registry(OAuth):
    framework_integration_cls = _Integration
    oauth2_client_cls = _GuardedApp

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        #: name -> (settings fingerprint, monotonic time the client was made)
        self.made: dict[str, tuple[str, float]] = {}

    def init_app(self, app: Flask, *args: Any, **kwargs: Any) -> None:
        # Unlike OAuth.init_app, leave app.extensions["authlib.integrations.flask_client"] to
        # the host's own registry, if it has one.
        self.app = app


def _registry(app: Flask) -> _Registry:
    found = app.extensions.get("mailconnect.oauth")
    if found is None:
        _quiet_authlib()
        from .state import DatabaseStateCache

        found = app.extensions.setdefault(
            "mailconnect.oauth", _Registry(app, cache=DatabaseStateCache())
        )
    return found


def _extra_metadata(provider: OAuthProvider) -> dict[str, Any]:
    """Server metadata we know without a discovery document (explicit URLs win)."""
    entry = current_app.config["MAILCONNECT_PROVIDERS"].get(provider.key) or {}
    meta: dict[str, Any] = {}
    if provider.key == "google" and provider.authorize_url == _GOOGLE_AUTHORIZE:
        meta = {
            "issuer": "https://accounts.google.com",
            "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
        }
    elif provider.key == "microsoft" and (provider.authorize_url or "").startswith(
        _MICROSOFT_LOGIN
    ):
        tenant = str(entry.get("tenant") or "common")
        meta = {
            # Multi-tenant issuers carry the tenant id: checked against the token's tid claim.
            "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
            "jwks_uri": f"https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys",
        }
    for key in ("issuer", "jwks_uri"):
        if entry.get(key):
            meta[key] = str(entry[key])
    if provider.userinfo_url:
        meta["userinfo_endpoint"] = provider.userinfo_url
    if provider.revoke_url:
        meta["revocation_endpoint"] = provider.revoke_url
    return meta


def fingerprint(provider: OAuthProvider, *extra: Any) -> str:
    """A digest of everything a client is built from (secret included, never shown), so an
    edited provider (config, or an admin's form) gets a new client at once, without restart."""
    import hashlib
    import json

    data = json.dumps([repr(provider), provider.client_secret, *map(repr, extra)])
    return hashlib.sha256(data.encode()).hexdigest()


def client_for(provider: OAuthProvider) -> FlaskOAuth2App:
    """Authlib's client for ``provider`` in the current app.

    Made again when the provider's settings changed (compared by :func:`fingerprint`) or its
    discovery document is older than :data:`METADATA_TTL`. The client's name stays
    ``mailconnect_<key>``, so flows started before an edit still find their session state.
    """
    registry = _registry(current_app._get_current_object())  # type: ignore[attr-defined]
    name = f"mailconnect_{provider.key}"
    meta = _extra_metadata(provider)
    options = current_app.extensions["mailconnect"].transport_options()
    print_ = fingerprint(provider, sorted(meta.items()), options)
    with registry.lock:
        made = registry.made.get(name)
        stale = made is not None and (
            made[0] != print_ or time.monotonic() - made[1] > METADATA_TTL
        )
        if stale:
            registry._clients.pop(name, None)
            registry._registry.pop(name, None)
        client = registry.create_client(name)
        if client is not None:
            return client
        registry.register(
            name,
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            authorize_url=provider.authorize_url,
            access_token_url=provider.token_url,
            server_metadata_url=provider.server_metadata_url,
            authorize_params=dict(provider.authorize_params),
            client_kwargs={
                "scope": " ".join(provider.scopes),
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": provider.token_endpoint_auth_method,
                "default_timeout": options.timeout,
                "transport_options": options,  # for GuardedOAuth2Session (_GuardedApp)
            },
            **meta,
        )
        registry.made[name] = (print_, time.monotonic())
        return registry.create_client(name)


# -- redirect URI and next ---------------------------------------------------------------------


def redirect_uri(provider: OAuthProvider) -> str:
    """The callback URL registered at the provider; never built from the request's Host."""
    if provider.redirect_uri:
        return provider.redirect_uri
    path = url_for("mailconnect.oauth_callback", provider=provider.key)
    external = current_app.config.get("MAILCONNECT_EXTERNAL_URL")
    if external:
        return str(external).rstrip("/") + path
    server_name = current_app.config.get("SERVER_NAME")
    if server_name:
        scheme = current_app.config.get("PREFERRED_URL_SCHEME") or "https"
        return f"{scheme}://{server_name}{path}"
    raise OAuthFlowError(
        "config",
        "set MAILCONNECT_EXTERNAL_URL (or SERVER_NAME, or the provider's redirect_uri)",
        provider=provider,
    )


def safe_next(value: Any) -> str | None:
    """``value`` when it is a path on this site (``/email/...``), else ``None``.

    Refuses absolute and scheme-relative URLs (``//evil``), backslashes (browsers read ``/\\``
    as ``//``), control characters and anything with a scheme or host.
    """
    if not isinstance(value, str) or not value or len(value) > 2000:
        return None
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


# -- start -------------------------------------------------------------------------------------


def _pending() -> dict[str, Any]:
    flows = session.get(SESSION_KEY)
    return dict(flows) if isinstance(flows, Mapping) else {}


def begin(
    provider: OAuthProvider,
    *,
    owner: Owner,
    actor_id: str,
    account_id: int | None = None,
    next_url: str | None = None,
    login_hint: str | None = None,
) -> str:
    """Prepare an authorization request; returns the provider URL to redirect to.

    ``state`` and the PKCE verifier (S256) are new for every request. Raises
    :class:`OAuthFlowError` (``config`` or ``unreachable``).
    """
    uri = redirect_uri(provider)
    client = client_for(provider)
    extra: dict[str, str] = {}
    if login_hint:
        extra["login_hint"] = login_hint
    try:
        rv = client.create_authorization_url(uri, **extra)
    except requests.RequestException as exc:  # the discovery document could not be read
        raise OAuthFlowError("unreachable", _http_detail(exc), provider=provider) from None
    # The verifier, nonce and redirect URI; not the URL itself (it would only fatten the cookie).
    client.save_authorize_data(redirect_uri=uri, **{k: v for k, v in rv.items() if k != "url"})
    flows = _pending()
    now = time.time()
    live = sorted(  # oldest first (the session may not keep insertion order)
        (k for k, v in flows.items() if isinstance(v, Mapping) and v.get("exp", 0) > now),
        key=lambda k: float(flows[k]["exp"]),
    )
    keep = set(live[len(live) - MAX_PENDING + 1 :] if len(live) >= MAX_PENDING else live)
    providers = current_oauth_providers()
    for old in [k for k in flows if k not in keep]:  # expired or too many: forget both halves
        data = flows.pop(old)
        other = providers.get(str(data.get("provider"))) if isinstance(data, Mapping) else None
        if other is not None:
            client_for(other).framework.clear_state_data(session, old)
    pending = PendingFlow(provider.key, owner, actor_id, account_id, safe_next(next_url))
    flows[rv["state"]] = pending.as_dict()
    session[SESSION_KEY] = flows
    return str(rv["url"])


# -- callback ----------------------------------------------------------------------------------


def take_pending(provider: OAuthProvider) -> PendingFlow:
    """Our half of the flow for the callback's ``state``, removed from the session (used once).

    Authlib's half (verifier, nonce) is removed by :func:`finish`; both must be present.
    """
    state = flask_request.args.get("state") or ""
    flows = _pending()
    data = flows.pop(state, None) if state else None
    session[SESSION_KEY] = flows
    if not isinstance(data, Mapping) or data.get("provider") != provider.key:
        raise OAuthFlowError("state", provider=provider)
    if float(data.get("exp", 0)) < time.time():
        raise OAuthFlowError("state", "expired", provider=provider)
    return PendingFlow.from_dict(data)


def discard(provider: OAuthProvider) -> None:
    """Forget Authlib's half of the callback's flow (after our half was refused)."""
    state = flask_request.args.get("state") or ""
    if state:
        client_for(provider).framework.clear_state_data(session, state)


def _expires_at(token: Mapping[str, Any]) -> datetime | None:
    value = token.get("expires_at")
    if value is None and token.get("expires_in") is not None:
        value = time.time() + float(token["expires_in"])
    if value is None:
        return None
    return datetime.fromtimestamp(int(value), tz=timezone.utc)


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _is_microsoft(provider: OAuthProvider) -> bool:
    return provider.key == "microsoft"


def _claims_options(provider: OAuthProvider, issuer: str) -> dict[str, Any]:
    """What an ID token must say: our ``aud``, the known issuer (Microsoft multi-tenant: with
    the token's own ``tid``), and a configured tenant GUID's ``tid``."""
    options: dict[str, Any] = {"aud": {"essential": True, "values": [provider.client_id]}}
    if "{tenantid}" in issuer:

        def matches(claims: Mapping[str, Any], value: Any) -> bool:
            tid = str(claims.get("tid") or "")
            return bool(tid) and value == issuer.replace("{tenantid}", tid)

        options["iss"] = {"essential": True, "validate": matches}
    else:
        options["iss"] = {"essential": True, "values": [issuer]}
    if _is_microsoft(provider) and provider.tenant and _GUID.match(provider.tenant):
        options["tid"] = {"essential": True, "values": [provider.tenant.lower()]}
    return options


def _id_token_claims(
    provider: OAuthProvider, client: FlaskOAuth2App, token: Any, nonce: str | None
) -> Mapping[str, Any]:
    """The validated ID token's claims; ``{}`` when there is none or no issuer to check it
    against (then the userinfo endpoint, over TLS with our access token, says who it is)."""
    metadata = client.load_server_metadata()
    issuer = metadata.get("issuer")
    if "id_token" not in token or not issuer:
        return {}
    if not (metadata.get("jwks_uri") or metadata.get("jwks")):
        return {}
    try:
        claims = client.parse_id_token(
            token, nonce=nonce, claims_options=_claims_options(provider, str(issuer))
        )
    except requests.RequestException as exc:
        raise OAuthFlowError("unreachable", _http_detail(exc), provider=provider) from None
    except Exception as exc:  # joserfc / authlib claim errors: a forged or stale token
        raise OAuthFlowError("id_token", type(exc).__name__, provider=provider) from None
    if (
        _is_microsoft(provider)
        and provider.tenant
        and _GUID.match(provider.tenant)
        and str(claims.get("tid") or "").lower() != provider.tenant.lower()
    ):
        raise OAuthFlowError("id_token", "tid", provider=provider)
    return claims or {}


def _identity(
    provider: OAuthProvider, client: FlaskOAuth2App, token: Any, nonce: str | None
) -> tuple[str, str | None, str | None]:
    """(address, issuer, subject) from the validated ID token, else the userinfo endpoint.

    Raises ``no_email``, ``unverified_email`` (the provider does not vouch for the address:
    Google ``email_verified`` not true, Microsoft ``xms_edov`` not true) or ``id_token``.
    """
    metadata = client.load_server_metadata()
    claims: dict[str, Any] = dict(_id_token_claims(provider, client, token, nonce))
    if not isinstance(claims.get("email"), str) and metadata.get("userinfo_endpoint"):
        try:
            info = client.userinfo(token=token)
        except requests.RequestException as exc:
            raise OAuthFlowError("unreachable", _http_detail(exc), provider=provider) from None
        except OAuthError as exc:
            raise OAuthFlowError("provider_error", exc.error or "", provider=provider) from None
        if claims.get("sub") and info.get("sub") != claims["sub"]:
            raise OAuthFlowError("id_token", "userinfo sub", provider=provider)
        claims = {**dict(info), **claims}
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email.strip():
        raise OAuthFlowError("no_email", provider=provider)
    email = email.strip()
    if not _verified(provider, claims):
        raise OAuthFlowError("unverified_email", email, provider=provider)
    return email, _str(claims.get("iss")), _subject(provider, claims)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _verified(provider: OAuthProvider, claims: Mapping[str, Any]) -> bool:
    """Whether the provider vouches that the address belongs to this person.

    Microsoft lets anyone put any address in a profile's ``email`` (nOAuth): only the optional
    claim ``xms_edov`` (domain owner verified) makes it trustworthy; ``preferred_username`` is
    never used. Google: ``email_verified`` must be true. Others: refused when they say false.
    """
    if _is_microsoft(provider):
        return _truthy(claims.get("xms_edov"))
    if provider.key == "google":
        return _truthy(claims.get("email_verified"))
    return claims.get("email_verified") not in (False, "false")


def _str(value: Any) -> str | None:
    return str(value)[:255] if isinstance(value, (str, int)) and str(value) else None


def _subject(provider: OAuthProvider, claims: Mapping[str, Any]) -> str | None:
    """Microsoft: ``tid:oid`` (oid is stable across apps within a tenant); else ``sub``."""
    if _is_microsoft(provider) and claims.get("tid") and claims.get("oid"):
        return f"{claims['tid']}:{claims['oid']}"[:255]
    return _str(claims.get("sub"))


def finish(provider: OAuthProvider, pending: PendingFlow) -> OAuthGrant:
    """Exchange the callback's code for tokens and read the address; raises
    :class:`OAuthFlowError` for every way this can end without a usable grant."""
    client = client_for(provider)
    state = flask_request.args.get("state") or ""
    state_data = client.framework.get_state_data(session, state)
    client.framework.clear_state_data(session, state)  # used once, whatever happens next
    error = flask_request.args.get("error")
    if error:
        code = (
            "access_denied" if error in ("access_denied", "consent_required") else "provider_error"
        )
        raise OAuthFlowError(code, error[:64], provider=provider)
    if not state_data:
        raise OAuthFlowError("state", provider=provider)
    params = {"code": flask_request.args.get("code"), "state": state}
    if not params["code"]:
        raise OAuthFlowError("provider_error", "no code", provider=provider)
    try:
        params = client._format_state_params(state_data, params)
        token = client.fetch_access_token(**params)
    except MismatchingStateError:
        raise OAuthFlowError("state", provider=provider) from None
    except OAuthError as exc:  # the token endpoint said no (invalid_grant, invalid_client...)
        raise OAuthFlowError(
            "provider_error", str(exc.error or "")[:64], provider=provider
        ) from None
    except requests.RequestException as exc:
        raise OAuthFlowError("unreachable", _http_detail(exc), provider=provider) from None
    except ValueError as exc:  # an answer that is not a token (HTML error page, bad JSON)
        raise OAuthFlowError("provider_error", type(exc).__name__, provider=provider) from None
    if not token.get("access_token"):
        raise OAuthFlowError("provider_error", "no access token", provider=provider)
    email, issuer, subject = _identity(provider, client, token, state_data.get("nonce"))
    refresh = token.get("refresh_token")
    if not refresh:
        raise OAuthFlowError("no_refresh_token", provider=provider)
    scope = token.get("scope")
    scopes = " ".join(scope) if isinstance(scope, (list, tuple)) else str(scope or "")
    return OAuthGrant(
        provider=provider,
        email=email,
        access_token=str(token["access_token"]),
        refresh_token=str(refresh),
        expires_at=_expires_at(token),
        scopes=scopes or " ".join(provider.scopes),
        subject=subject,
        issuer=issuer,
    )


__all__ = [
    "GRAPH_MAIL_SEND",
    "OAuthFlowError",
    "OAuthGrant",
    "PendingFlow",
    "begin",
    "client_for",
    "discard",
    "finish",
    "redirect_uri",
    "safe_next",
    "take_pending",
]
