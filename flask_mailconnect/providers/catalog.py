"""The catalogue: every provider an app knows, merged once per request.

Order (it decides domain detection): admin-entered providers first, then those declared or
configured in ``MAILCONNECT_PROVIDERS``, then the built-in modules, "other" last. A key (or an
older alias) taken by configuration or a built-in is never taken over by an admin row.
:func:`current_catalog` builds it at most once per app context. The configured and built-in
providers come from a per-process cache keyed by the configuration's digest. The admin rows are
needed only when an answer depends on them (a list of providers, a key that is not built in or
configured): then they come from this process's copy, kept for
``MAILCONNECT_PROVIDER_CACHE_SECONDS`` with each client secret still sealed (ciphertext, opened
per app context as before), or are read with one query. So a page that asks "which provider is
this account's?" for fifty accounts runs at most one provider query. Staleness: a change made
through ``accounts/providers.py`` calls :func:`forget_catalog`, which drops this process's copy
and makes the rest of that app context read uncached; other processes see it within
``MAILCONNECT_PROVIDER_CACHE_SECONDS`` (``0``: read once per app context, as before).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from types import SimpleNamespace
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
    """Providers by key, in detection order. Read-only once built.

    ``fixed``: the configured and built-in providers ("other" last); ``admin``: the
    admin-entered ones, or a function that reads them, called the first time an answer needs
    them. An admin row never takes a fixed provider's key or one of its aliases (the keys older
    accounts carry), so looking up such a key never needs the admin rows: a page whose
    accounts all use built-in or configured providers runs no provider query.
    """

    def __init__(
        self,
        fixed: Mapping[str, Provider],
        admin: Mapping[str, Provider] | Callable[[], Mapping[str, Provider]] | None = None,
    ) -> None:
        self._fixed = dict(fixed)
        self._fixed_aliases = {a: p.key for p in self._fixed.values() for a in p.aliases}
        self._admin_source = admin
        self._admin: dict[str, Provider] | None = None if callable(admin) else self._keep(admin)

    def _keep(self, rows: Mapping[str, Provider] | None) -> dict[str, Provider]:
        taken = self._fixed.keys() | self._fixed_aliases.keys()
        return {k: p for k, p in (rows or {}).items() if k not in taken}

    def _admin_rows(self) -> dict[str, Provider]:
        if self._admin is None:
            source = self._admin_source
            self._admin = self._keep(source() if callable(source) else source)
        return self._admin

    def __iter__(self) -> Iterator[Provider]:
        # Admin rows first (domain detection order), then the fixed ones, "other" last.
        yield from self._admin_rows().values()
        yield from self._fixed.values()

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def get(self, key: str | None) -> Provider | None:
        """The provider with ``key`` or an alias of it (``"gmail"`` -> Google), else ``None``."""
        if not key:
            return None
        found = self._fixed.get(key)
        if found is None and key in self._fixed_aliases:
            found = self._fixed.get(self._fixed_aliases[key])
        if found is None:  # admin rows have no aliases
            found = self._admin_rows().get(key)
        return found

    def require(self, key: str | None) -> Provider:
        """Like :meth:`get`, "other" when unknown (an account keeps working with its own
        servers even when its provider was removed from the configuration)."""
        return self.get(key) or self._fixed.get("other", OTHER)

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


#: What a cached admin row keeps: the columns :func:`provider_from_row` reads. The client secret
#: is kept as read (sealed: ciphertext) and opened per request, as before the cache.
_ROW_FIELDS = ("key", "name", "enabled", "service_type", "sends", "receives", "smtp_host",
               "smtp_port", "smtp_security", "imap_host", "imap_port", "imap_security",
               "login_format", "auth_method", "client_id", "authorize_url", "token_url",
               "revoke_url", "userinfo_url", "server_metadata_url", "scopes")  # fmt: skip
_DIRTY = "_mailconnect_providers_written"


def _read_rows(runtime: Any) -> tuple[tuple[SimpleNamespace, Any], ...]:
    query = sa.select(MailProvider, MailProvider.client_secret).order_by(
        MailProvider.name, MailProvider.id
    )
    return tuple(
        (
            SimpleNamespace(
                **{f: getattr(row, f) for f in _ROW_FIELDS}, domain_names=row.domain_names
            ),
            secret,
        )
        for row, secret in runtime.session.execute(query)
    )


def _cached_rows(runtime: Any) -> tuple[tuple[SimpleNamespace, Any], ...]:
    """The admin rows, from this process's copy while it is younger than
    ``MAILCONNECT_PROVIDER_CACHE_SECONDS``, else read (one query) and kept.

    Never kept: rows read in an app context that changed providers (they may be uncommitted),
    or a secret still in plaintext (set in this session, not read back).
    """
    seconds = float(current_app.config.get("MAILCONNECT_PROVIDER_CACHE_SECONDS") or 0)
    cache = runtime.provider_rows
    if seconds <= 0 or g.get(_DIRTY):
        return _read_rows(runtime)
    found = cache.get("rows")
    if found is None:
        found = _read_rows(runtime)
        if not any(isinstance(secret, str) for _row, secret in found):
            cache.put("rows", found, seconds)
    return found


def _admin_rows() -> dict[str, Provider]:
    runtime = find_runtime()
    if runtime is None:
        return {}
    found = {}
    for row, secret in _cached_rows(runtime):
        try:
            plain = open_secret(secret)
        except EncryptionKeyError:  # a lost key: the provider stays listed, without sign-in
            log.error("The client secret of provider %r cannot be decrypted", row.key)
            plain = None
        found[row.key] = provider_from_row(row, plain)
    return found


def _fixed_providers(config: Mapping[str, Any]) -> dict[str, Provider]:
    """Configured and built-in providers by key, "other" last."""
    builtins = builtin_providers()
    configured = configured_providers(config.get("MAILCONNECT_PROVIDERS"), builtins)
    merged = {k: p for k, p in configured.items() if k != "other"}
    for provider, _configure in builtins:
        if provider.key not in merged:
            merged[provider.key] = configured.get(provider.key, provider)
    merged["other"] = merged.pop("other", OTHER)
    return merged


def build_catalog(
    config: Mapping[str, Any],
    admin: Mapping[str, Provider] | Callable[[], Mapping[str, Provider]] | None = None,
) -> Catalog:
    """The catalogue for ``config`` (``MAILCONNECT_PROVIDERS``) and admin-entered providers
    (or a function that reads them when first needed)."""
    return Catalog(_fixed_providers(config), admin)


#: The configured and built-in providers per ``MAILCONNECT_PROVIDERS`` digest: built once per
#: process, not per request. They hold what the configuration already holds in memory for the
#: process's life (its client secrets included); never an admin row or its secret.
_FIXED: dict[str, dict[str, Provider]] = {}
_FIXED_MAX = 8  #: a shell or a test editing the configuration makes a few; the oldest go
_FIXED_LOCK = threading.Lock()


def current_catalog() -> Catalog:
    """The current app's catalogue, built at most once per app context; the admin rows are
    read (one query) the first time an answer needs them."""
    # Keyed by the configuration's text too, so an edited MAILCONNECT_PROVIDERS (a shell, a
    # test, a long-running job) is seen at once; the admin rows by forget_catalog().
    # A digest, so that g never holds the client secrets the configuration carries.
    text = repr(current_app.config.get("MAILCONNECT_PROVIDERS")).encode()
    key = hashlib.sha256(text).hexdigest()
    cached: tuple[str, Catalog] | None = g.get(_G_KEY) if has_app_context() else None
    if cached is not None and cached[0] == key:
        return cached[1]
    fixed = _FIXED.get(key)
    if fixed is None:
        fixed = _fixed_providers(current_app.config)
        with _FIXED_LOCK:  # threaded workers: one writer at a time
            while len(_FIXED) >= _FIXED_MAX:
                _FIXED.pop(next(iter(_FIXED)))
            _FIXED[key] = fixed
    found = Catalog(fixed, _admin_rows)
    if has_app_context():
        setattr(g, _G_KEY, (key, found))
    return found


def forget_catalog() -> None:
    """Drop this app context's catalogue and this process's copy of the admin rows (after
    admin changes to providers): the rest of the request reads them again, uncached."""
    if has_app_context():
        g.pop(_G_KEY, None)
        setattr(g, _DIRTY, True)
    runtime = find_runtime()
    if runtime is not None:
        runtime.provider_rows.clear()


def with_hints(settings: ServerSettings) -> ServerSettings:
    """``settings`` carrying its provider's advice per error code (the transport words none)."""
    hints = current_catalog().hints_for(settings.provider)
    return replace(settings, hints=hints) if hints else settings


def check_config(config: Mapping[str, Any]) -> None:
    """Raise at start-up when ``MAILCONNECT_PROVIDERS`` holds an entry that cannot work."""
    build_catalog(config)
