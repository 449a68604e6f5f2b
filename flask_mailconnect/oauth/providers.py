"""Which OAuth 2.0 providers an app offers, read from ``MAILCONNECT_PROVIDERS``.

Google and Microsoft are presets: they need only ``client_id`` and ``client_secret`` (and
Microsoft a ``tenant``, ``common`` by default); any endpoint can still be overridden, which is how
the tests point them at a local server. Any other entry with ``"auth": "oauth2"`` is a generic
OAuth 2.0 / OpenID Connect provider: ``server_metadata_url`` or ``authorize_url`` +
``token_url`` (+ ``revoke_url``, ``userinfo_url``), ``scopes``, and its ``smtp`` / ``imap``
servers (read by providers/registry.py like any declared provider).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import OAuthConfigError


@dataclass(frozen=True)
class OAuthProvider:
    key: str  #: config key and URL segment: ``/oauth/<key>/start``, ``/oauth/<key>/callback``
    name: str  #: shown on the button: "Connect with {name}"
    client_id: str
    client_secret: str = field(repr=False)
    authorize_url: str | None
    token_url: str | None
    revoke_url: str | None
    userinfo_url: str | None
    server_metadata_url: str | None
    scopes: tuple[str, ...]
    #: Extra parameters on the authorization request (Google: offline access, consent prompt).
    authorize_params: Mapping[str, str]
    #: Key of the server preset (providers/registry) whose SMTP/IMAP servers the account uses.
    servers: str
    #: Fixed redirect URI registered at the provider; else built from MAILCONNECT_EXTERNAL_URL.
    redirect_uri: str | None = None
    #: Where a user removes the app's access when the provider has no revocation endpoint.
    access_settings_url: str | None = None
    token_endpoint_auth_method: str = "client_secret_post"
    #: Microsoft Graph base URL when the provider can send through Graph (Microsoft only).
    graph_url: str | None = None
    #: Microsoft: the configured tenant (``common``, ``organizations``, a domain or a GUID).
    #: A GUID pins the ID token's ``tid``: only that tenant's people can connect.
    tenant: str | None = None


GOOGLE_SCOPES = ("openid", "email", "https://mail.google.com/")
MICROSOFT_SCOPES = (
    "openid",
    "email",
    "offline_access",
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
)


def _google(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": "Google",
        "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
        "token_url": "https://oauth2.googleapis.com/token",
        "revoke_url": "https://oauth2.googleapis.com/revoke",
        "userinfo_url": "https://openidconnect.googleapis.com/v1/userinfo",
        "server_metadata_url": None,
        "scopes": GOOGLE_SCOPES,
        # Without both, Google returns no refresh token on a repeated consent.
        "authorize_params": {"access_type": "offline", "prompt": "consent"},
        "servers": "gmail",
        "access_settings_url": "https://myaccount.google.com/connections",
    }


def _microsoft(entry: Mapping[str, Any]) -> dict[str, Any]:
    tenant = str(entry.get("tenant") or "common")
    base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
    return {
        "name": "Microsoft",
        "authorize_url": f"{base}/authorize",
        "token_url": f"{base}/token",
        "revoke_url": None,  # Microsoft has no token revocation endpoint
        "userinfo_url": "https://graph.microsoft.com/oidc/userinfo",
        "server_metadata_url": None,
        "scopes": MICROSOFT_SCOPES,
        "authorize_params": {"prompt": "select_account"},
        "servers": "microsoft365",
        "access_settings_url": "https://myapps.microsoft.com",
        "graph_url": "https://graph.microsoft.com/v1.0",
        "tenant": tenant,
    }


PRESET_DEFAULTS = {"google": _google, "microsoft": _microsoft}
_OVERRIDABLE = (
    "name",
    "authorize_url",
    "token_url",
    "revoke_url",
    "userinfo_url",
    "server_metadata_url",
    "redirect_uri",
    "access_settings_url",
    "token_endpoint_auth_method",
    "graph_url",
)


def is_oauth_entry(key: str, entry: Mapping[str, Any]) -> bool:
    return key in PRESET_DEFAULTS or entry.get("auth") == "oauth2"


def _parse(key: str, entry: Mapping[str, Any]) -> OAuthProvider:
    if not entry.get("client_id") or not entry.get("client_secret"):
        raise OAuthConfigError(f"MAILCONNECT_PROVIDERS[{key!r}] needs client_id and client_secret")
    values: dict[str, Any] = (
        PRESET_DEFAULTS[key](entry)
        if key in PRESET_DEFAULTS
        else {
            "name": key,
            "authorize_url": None,
            "token_url": None,
            "revoke_url": None,
            "userinfo_url": None,
            "server_metadata_url": None,
            "scopes": ("openid", "email"),
            "authorize_params": {},
            "servers": key,
        }
    )
    for name in _OVERRIDABLE:
        if entry.get(name):
            values[name] = entry[name]
    extra_scopes = tuple(entry.get("scopes", ()))
    values["scopes"] = tuple(dict.fromkeys((*values["scopes"], *extra_scopes)))
    values["authorize_params"] = {
        **values["authorize_params"],
        **dict(entry.get("authorize_params", {})),
    }
    if not values["server_metadata_url"] and not (values["authorize_url"] and values["token_url"]):
        raise OAuthConfigError(
            f"MAILCONNECT_PROVIDERS[{key!r}] needs server_metadata_url, or authorize_url and "
            "token_url"
        )
    if key not in PRESET_DEFAULTS and not entry.get("smtp"):
        raise OAuthConfigError(f"MAILCONNECT_PROVIDERS[{key!r}] needs an 'smtp' server")
    return OAuthProvider(
        key=key,
        client_id=str(entry["client_id"]),
        client_secret=str(entry["client_secret"]),
        **values,
    )


def oauth_providers(config: Mapping[str, Any] | None) -> dict[str, OAuthProvider]:
    """The OAuth providers configured in ``MAILCONNECT_PROVIDERS`` (raises on a bad entry)."""
    found: dict[str, OAuthProvider] = {}
    for key, entry in (config or {}).items():
        if isinstance(entry, Mapping) and is_oauth_entry(key, entry):
            found[key] = _parse(key, entry)
    return found


def current_oauth_providers(include_disabled: bool = False) -> dict[str, OAuthProvider]:
    """The OAuth providers the current app offers (needs an app context).

    The one accessor views and token code use, so that providers entered by admins (stored in
    the database) can join those from config in one place.
    """
    from flask import current_app

    found = oauth_providers(current_app.config["MAILCONNECT_PROVIDERS"])
    return {**admin_oauth_providers(include_disabled), **found}


def admin_oauth_providers(include_disabled: bool = False) -> dict[str, OAuthProvider]:
    """OAuth providers entered in the admin pages (``mailconnect_provider`` rows).

    Disabled ones are left out unless ``include_disabled`` (token refresh of existing accounts).
    The client secret is read with its own query, so the models never hold it.
    """
    import sqlalchemy as sa
    from flask import current_app

    from ..models import MailProvider

    state = current_app.extensions.get("mailconnect")
    if state is None:
        return {}
    query = sa.select(MailProvider, MailProvider.client_secret).where(
        MailProvider.auth_method == "oauth2"
    )
    if not include_disabled:
        query = query.where(MailProvider.enabled.is_(True))
    found: dict[str, OAuthProvider] = {}
    for row, secret in state.session.execute(query):
        if not row.client_id or not secret:
            continue
        if not row.server_metadata_url and not (row.authorize_url and row.token_url):
            continue
        found[row.key] = OAuthProvider(
            key=row.key,
            name=row.name,
            client_id=row.client_id,
            client_secret=secret,
            authorize_url=row.authorize_url or None,
            token_url=row.token_url or None,
            revoke_url=row.revoke_url or None,
            userinfo_url=row.userinfo_url or None,
            server_metadata_url=row.server_metadata_url or None,
            scopes=tuple(dict.fromkeys(("openid", "email", *row.scopes.split()))),
            authorize_params={},
            servers=row.key,
            graph_url="https://graph.microsoft.com/v1.0" if row.service_type == "graph" else None,
        )
    return found
