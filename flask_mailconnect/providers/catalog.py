"""The catalogue: every provider an app knows, merged once per request.

Order (it decides domain detection): admin-entered providers first, then those declared or
configured in ``MAILCONNECT_PROVIDERS``, then the built-in modules, "other" last. A key taken by
configuration or a built-in is never taken over by an admin row. :func:`current_catalog` builds
it at most once per app context (one query for the admin rows, secrets included), so a page that
asks "which provider is this account's?" for fifty accounts runs no extra query;
:func:`forget_catalog` after an admin changes providers.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, has_app_context

from ..columns import open_secret
from ..exceptions import EncryptionKeyError
from ..models import MailProvider
from ..runtime import find_runtime
from ..transport.settings import ServerSettings
from .builtin import builtin_providers
from .config import configured_providers, provider_from_row
from .model import OTHER, Provider

_G_KEY = "_mailconnect_catalog"
log = logging.getLogger("flask_mailconnect.providers")


class Catalog:
    """Providers by key, in detection order. Read-only once built."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = dict(providers)
        self._aliases = {a: p.key for p in self._providers.values() for a in p.aliases}

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._providers.values())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def get(self, key: str | None) -> Provider | None:
        """The provider with ``key`` or an alias of it (``"gmail"`` -> Google), else ``None``."""
        if not key:
            return None
        found = self._providers.get(key)
        if found is None and key in self._aliases:
            found = self._providers.get(self._aliases[key])
        return found

    def require(self, key: str | None) -> Provider:
        """Like :meth:`get`, "other" when unknown (an account keeps working with its own
        servers even when its provider was removed from the configuration)."""
        return self.get(key) or self._providers.get("other", OTHER)

    def for_account(self, account: Any) -> Provider:
        """The one answer to "which provider is this account's?" (disabled ones included)."""
        return self.require(getattr(account, "provider", None))

    def offered(self) -> list[Provider]:
        """Providers shown to people (enabled), "other" last."""
        return [p for p in self if p.enabled]

    def oauth(self, *, include_disabled: bool = False) -> dict[str, Provider]:
        """Providers whose consent flow is configured, by key."""
        return {p.key: p for p in self if p.offers_oauth and (p.enabled or include_disabled)}

    def for_domain(self, domain: str) -> Provider | None:
        """The first enabled provider listing ``domain`` (exact, case-insensitive: so
        ``gmail.com.evil.test`` is not Gmail)."""
        domain = domain.strip().lower().rstrip(".")
        if not domain:
            return None
        return next((p for p in self if p.enabled and domain in p.domains), None)

    def for_mx(self, hosts: tuple[str, ...]) -> Provider | None:
        """The provider the MX hosts point at (best preference first)."""
        for host in hosts:
            for provider in self:
                if provider.enabled and provider.hosted_at(host):
                    return provider
        return None

    def hints_for(self, key: str | None) -> Mapping[str, str]:
        found = self.get(key)
        return found.hints if found is not None else {}


def _admin_rows() -> dict[str, Provider]:
    runtime = find_runtime()
    if runtime is None:
        return {}
    query = sa.select(MailProvider, MailProvider.client_secret).order_by(
        MailProvider.name, MailProvider.id
    )
    found = {}
    for row, secret in runtime.session.execute(query):
        try:
            plain = open_secret(secret)
        except EncryptionKeyError:  # a lost key: the provider stays listed, without sign-in
            log.error("The client secret of provider %r cannot be decrypted", row.key)
            plain = None
        found[row.key] = provider_from_row(row, plain)
    return found


def build_catalog(
    config: Mapping[str, Any], admin: Mapping[str, Provider] | None = None
) -> Catalog:
    """The catalogue for ``config`` (``MAILCONNECT_PROVIDERS``) and admin-entered providers."""
    builtins = builtin_providers()
    configured = configured_providers(config.get("MAILCONNECT_PROVIDERS"), builtins)
    merged: dict[str, Provider] = {}
    taken = {p.key for p, _ in builtins} | set(configured)
    for key, provider in (admin or {}).items():
        if key not in taken:
            merged[key] = provider
    merged.update({k: p for k, p in configured.items() if k != "other"})
    for provider, _configure in builtins:
        if provider.key not in merged:
            merged[provider.key] = configured.get(provider.key, provider)
    merged["other"] = merged.pop("other", OTHER)
    return Catalog(merged)


def current_catalog() -> Catalog:
    """The current app's catalogue, built at most once per app context."""
    # Keyed by the configuration's text too, so an edited MAILCONNECT_PROVIDERS (a shell, a
    # test, a long-running job) is seen at once; the admin rows by forget_catalog().
    # A digest, so that g never holds the client secrets the configuration carries.
    text = repr(current_app.config.get("MAILCONNECT_PROVIDERS")).encode()
    key = hashlib.sha256(text).hexdigest()
    cached: tuple[str, Catalog] | None = g.get(_G_KEY) if has_app_context() else None
    if cached is not None and cached[0] == key:
        return cached[1]
    found = build_catalog(current_app.config, _admin_rows())
    if has_app_context():
        setattr(g, _G_KEY, (key, found))
    return found


def forget_catalog() -> None:
    """Drop this app context's catalogue (after admin changes to providers)."""
    if has_app_context():
        g.pop(_G_KEY, None)


def with_hints(settings: ServerSettings) -> ServerSettings:
    """``settings`` carrying its provider's advice per error code (the transport words none)."""
    hints = current_catalog().hints_for(settings.provider)
    return replace(settings, hints=hints) if hints else settings


def check_config(config: Mapping[str, Any]) -> None:
    """Raise at start-up when ``MAILCONNECT_PROVIDERS`` holds an entry that cannot work."""
    build_catalog(config)
