"""Providers from ``MAILCONNECT_PROVIDERS`` and from admin-entered rows, as :class:`Provider`.

A configuration entry whose key (or alias, such as ``"gmail"``) names a built-in provider
configures it: credentials, overridden endpoints or servers. Any other key declares a provider:
``"auth": "password"`` (the default) needs an SMTP server; ``"auth": "oauth2"`` needs
credentials and ``server_metadata_url`` or ``authorize_url`` + ``token_url``. A bad entry raises
:class:`~flask_mailconnect.exceptions.ProviderConfigError` (``OAuthConfigError`` for the OAuth
part) at ``init_app``, not when someone clicks its button.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..exceptions import OAuthConfigError, ProviderConfigError
from ..transport.settings import SECURITY_CHOICES
from .builtin import Configure, builtin_providers
from .model import IdentityRules, Provider, Server

#: Entry keys copied onto the provider as they are (strings; empty means "keep").
_OVERRIDABLE = (
    "name",
    "long_name",
    "authorize_url",
    "token_url",
    "revoke_url",
    "userinfo_url",
    "server_metadata_url",
    "issuer",
    "jwks_uri",
    "redirect_uri",
    "access_settings_url",
    "token_endpoint_auth_method",
    "graph_url",
    "help_url",
)
DEFAULT_SCOPES = ("openid", "email")


def _server(key: str, proto: str, value: Any) -> Server | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ProviderConfigError(f"MAILCONNECT_PROVIDERS[{key!r}][{proto!r}] must be a dict")
    host, port, security = value.get("host"), value.get("port"), value.get("security")
    if not host or not isinstance(port, int) or security not in SECURITY_CHOICES:
        raise ProviderConfigError(
            f"MAILCONNECT_PROVIDERS[{key!r}][{proto!r}] needs host, port (int) and security "
            f"(one of {', '.join(SECURITY_CHOICES)})"
        )
    return Server(str(host), port, security)


def _is_oauth(entry: Mapping[str, Any], base: Provider | None) -> bool:
    if entry.get("auth") == "oauth2":
        return True
    return base is not None and bool(base.scopes) and bool(entry.get("client_id"))


def _apply(key: str, base: Provider, entry: Mapping[str, Any]) -> Provider:
    """``base`` with what ``entry`` sets (servers, login format, domains, OAuth fields)."""
    values: dict[str, Any] = {n: entry[n] for n in _OVERRIDABLE if entry.get(n)}
    smtp, imap = _server(key, "smtp", entry.get("smtp")), _server(key, "imap", entry.get("imap"))
    if smtp is not None:
        values["smtp"] = smtp
    if imap is not None:
        values["imap"] = imap
    if "login_format" in entry:
        if entry["login_format"] not in ("email", "local_part", "manual"):
            raise ProviderConfigError(
                f"MAILCONNECT_PROVIDERS[{key!r}]['login_format'] must be email, local_part "
                "or manual"
            )
        values["login_format"] = entry["login_format"]
    domains = tuple(str(d).lower().strip(".") for d in entry.get("domains", ()))
    if domains:
        values["domains"] = domains
    if "keeps_sent_copy" in entry:
        values["keeps_sent_copy"] = bool(entry["keeps_sent_copy"])
    if entry.get("client_id") or entry.get("client_secret"):
        values["client_id"] = str(entry.get("client_id") or "")
        values["client_secret"] = str(entry.get("client_secret") or "")
    extra_scopes = tuple(entry.get("scopes", ()))
    if extra_scopes or base.scopes:
        values["scopes"] = tuple(dict.fromkeys((*base.scopes, *extra_scopes)))
    if entry.get("authorize_params"):
        values["authorize_params"] = MappingProxyType(
            {**base.authorize_params, **dict(entry["authorize_params"])}
        )
    values["source"] = "config"
    return base.with_changes(**values)


def _check_oauth(key: str, provider: Provider) -> None:
    if not provider.client_id or not provider.client_secret:
        raise OAuthConfigError(f"MAILCONNECT_PROVIDERS[{key!r}] needs client_id and client_secret")
    if not provider.server_metadata_url and not (provider.authorize_url and provider.token_url):
        raise OAuthConfigError(
            f"MAILCONNECT_PROVIDERS[{key!r}] needs server_metadata_url, or authorize_url and "
            "token_url"
        )


def configured_providers(
    config: Mapping[str, Any] | None, builtins: tuple[tuple[Provider, Configure | None], ...]
) -> dict[str, Provider]:
    """Built-in providers as configured, then declared ones, by key (raises on a bad entry)."""
    found: dict[str, Provider] = {}
    for key, entry in (config or {}).items():
        if not isinstance(entry, Mapping):
            raise ProviderConfigError(f"MAILCONNECT_PROVIDERS[{key!r}] must be a dict")
        builtin = next(((p, c) for p, c in builtins if p.matches(key)), None)
        if builtin is not None:
            base = found.get(builtin[0].key, builtin[0])
            provider = _apply(key, base, entry)
            if builtin[1] is not None:
                provider = builtin[1](provider, entry)
            if entry.get("client_id") or entry.get("client_secret"):
                _check_oauth(key, provider)
            found[provider.key] = provider
            continue
        oauth = _is_oauth(entry, None)
        base = Provider(
            key=key,
            name=key,
            scopes=DEFAULT_SCOPES if oauth else (),
            keepalive_days=60,
        )
        provider = _apply(key, base, entry)
        if provider.smtp is None:
            raise (OAuthConfigError if oauth else ProviderConfigError)(
                f"MAILCONNECT_PROVIDERS[{key!r}] needs an 'smtp' server"
            )
        if oauth:
            _check_oauth(key, provider)
        found[key] = provider
    return found


def provider_from_row(row: Any, client_secret: str | None) -> Provider:
    """A :class:`Provider` for an admin-entered :class:`~flask_mailconnect.models.MailProvider`
    (``client_secret`` read with its own query: the model instances never hold it)."""
    smtp = imap = None
    if row.sends and row.smtp_host and row.smtp_port:
        smtp = Server(row.smtp_host, row.smtp_port, row.smtp_security)
    if row.receives and row.imap_host and row.imap_port:
        imap = Server(row.imap_host, row.imap_port, row.imap_security)
    oauth = row.auth_method == "oauth2"
    # "IMAP + Graph for sending": Graph's endpoint and scope as the built-in that has them.
    graph = None
    if row.service_type == "graph":
        graph = next((p for p, _ in builtin_providers() if p.graph_url), None)
    return Provider(
        key=row.key,
        name=row.name,
        domains=tuple(row.domain_names),
        smtp=smtp,
        imap=imap,
        login_format=row.login_format,
        source="admin",
        enabled=bool(row.enabled),
        client_id=(row.client_id or "") if oauth else "",
        client_secret=(client_secret or "") if oauth else "",
        authorize_url=row.authorize_url or None,
        token_url=row.token_url or None,
        revoke_url=row.revoke_url or None,
        userinfo_url=row.userinfo_url or None,
        server_metadata_url=row.server_metadata_url or None,
        scopes=tuple(dict.fromkeys((*DEFAULT_SCOPES, *(row.scopes or "").split())))
        if oauth
        else (),
        graph_url=graph.graph_url if graph is not None else None,
        graph_send_scope=graph.graph_send_scope if graph is not None else None,
        identity=IdentityRules(),
    )
