"""Authlib's client for a provider, made once per app and settings: every request it makes
(server metadata, token exchange, JWKS, userinfo) goes through the network guard.

Each app gets its own registry of clients, kept on its runtime (never a module global), named
``mailconnect_<key>`` so the host's own Authlib clients and its ``<NAME>_CLIENT_ID`` settings
never mix with ours. Tokens are never logged: Authlib logs the PKCE verifier at DEBUG, which a
filter on its logger drops (:func:`_quiet_authlib`). Also here: the redirect URI registered at
the provider, and the check that keeps ``next`` on this site.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Flask, current_app, url_for

from ..exceptions import OAuthFlowError
from ..providers import Provider
from ..runtime import current_runtime
from ..transport.http import HTTPGuardError, oauth2_session_class
from .endpoints import METADATA_TTL
from .state import DatabaseStateCache

if TYPE_CHECKING:
    import requests
    from authlib.integrations.flask_client import FlaskOAuth2App

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


def http_detail(exc: requests.RequestException) -> str:
    """The guard's code (``blocked_address``, ``redirect_refused``...), else the error's name."""
    return exc.code if isinstance(exc, HTTPGuardError) else type(exc).__name__


@cache
def _registry_class() -> type[Any]:
    """Our subclass of Authlib's Flask ``OAuth`` registry, built on first use (once per
    process): Authlib and joserfc load with the first OAuth flow, not at the host's start-up.

    Its clients are Authlib's Flask client with every session they make (server metadata,
    token exchange, JWKS, userinfo) a guarded one: the transport options travel in
    ``client_kwargs``."""
    from authlib.integrations.flask_client import FlaskIntegration, FlaskOAuth2App, OAuth

    class _Integration(FlaskIntegration):
        @staticmethod
        def load_config(oauth: Any, name: str, params: Any) -> dict[str, Any]:
            # Never read <NAME>_CLIENT_ID and friends from the app config: ours come from
            # MAILCONNECT_PROVIDERS only, and the host's own Authlib settings stay its own.
            return {}

    class _GuardedApp(FlaskOAuth2App):
        client_cls = oauth2_session_class()

    class _Registry(OAuth):
        framework_integration_cls = _Integration
        oauth2_client_cls = _GuardedApp

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.lock = threading.Lock()
            #: name -> (settings fingerprint, monotonic time the client was made)
            self.made: dict[str, tuple[str, float]] = {}

        def init_app(self, app: Flask, *args: Any, **kwargs: Any) -> None:
            # Unlike OAuth.init_app, leave app.extensions["authlib.integrations.flask_client"]
            # to the host's own registry, if it has one.
            self.app = app

    return _Registry


def _registry() -> Any:
    """The current app's registry, made once and kept on its runtime (``lock`` and ``made``
    are ours, see :func:`_registry_class`)."""

    def make() -> Any:
        _quiet_authlib()
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        return _registry_class()(app, cache=DatabaseStateCache())

    return current_runtime().oauth_clients(make)


def _known_metadata(provider: Provider) -> dict[str, Any]:
    """Server metadata known without a discovery document: the provider's issuer and keys
    (built-ins on their own endpoints), userinfo and revocation endpoints."""
    meta: dict[str, Any] = {}
    if provider.issuer:
        meta["issuer"] = provider.issuer
    if provider.jwks_uri:
        meta["jwks_uri"] = provider.jwks_uri
    if provider.userinfo_url:
        meta["userinfo_endpoint"] = provider.userinfo_url
    if provider.revoke_url:
        meta["revocation_endpoint"] = provider.revoke_url
    return meta


def fingerprint(provider: Provider, *extra: Any) -> str:
    """A digest of everything a client is built from (secret included, never shown), so an
    edited provider (config, or an admin's form) gets a new client at once, without restart."""
    data = json.dumps([repr(provider), provider.client_secret, *map(repr, extra)])
    return hashlib.sha256(data.encode()).hexdigest()


def client_for(provider: Provider) -> FlaskOAuth2App:
    """Authlib's client for ``provider`` in the current app.

    Made again when the provider's settings changed (compared by :func:`fingerprint`) or its
    discovery document is older than :data:`METADATA_TTL`. The client's name stays
    ``mailconnect_<key>``, so flows started before an edit still find their session state.
    """
    registry = _registry()
    name = f"mailconnect_{provider.key}"
    meta = _known_metadata(provider)
    options = current_runtime().transport_options()
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


def redirect_uri(provider: Provider) -> str:
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
