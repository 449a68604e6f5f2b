"""The providers an app offers: built-in presets plus those declared in ``MAILCONNECT_PROVIDERS``.

A declared provider needs at least a name and an SMTP server; with ``domains`` it is detected from
an address (declared domains win over the presets'). Entries that carry OAuth settings are read by
the OAuth layer; here only their servers and domains matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, has_app_context

from ..exceptions import ProviderConfigError
from ..oauth.providers import PRESET_DEFAULTS
from ..transport.settings import SECURITY_CHOICES
from .presets import PRESETS, Preset, ServerPreset


def _server(key: str, proto: str, value: Any) -> ServerPreset | None:
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
    return ServerPreset(str(host), port, security)


def parse_providers(config: Mapping[str, Any] | None) -> dict[str, Preset]:
    """Declared providers as presets; raises :class:`ProviderConfigError` on a bad entry."""
    declared: dict[str, Preset] = {}
    for key, entry in (config or {}).items():
        if not isinstance(entry, Mapping):
            raise ProviderConfigError(f"MAILCONNECT_PROVIDERS[{key!r}] must be a dict")
        if key in PRESET_DEFAULTS:
            continue  # "google" / "microsoft": OAuth credentials for presets (oauth/providers.py)
        base = PRESETS.get(key)
        smtp = _server(key, "smtp", entry.get("smtp")) or (base.smtp if base else None)
        imap = _server(key, "imap", entry.get("imap")) or (base.imap if base else None)
        if smtp is None:
            raise ProviderConfigError(f"MAILCONNECT_PROVIDERS[{key!r}] needs an 'smtp' server")
        login_format = entry.get("login_format", base.login_format if base else "email")
        if login_format not in ("email", "local_part", "manual"):
            raise ProviderConfigError(
                f"MAILCONNECT_PROVIDERS[{key!r}]['login_format'] must be email, local_part "
                "or manual"
            )
        domains = tuple(str(d).lower().strip(".") for d in entry.get("domains", ()))
        declared[key] = Preset(
            key=key,
            name=str(entry.get("name") or (base.name if base else key)),
            domains=domains or (base.domains if base else ()),
            smtp=smtp,
            imap=imap,
            login_format=login_format,
            hints=dict(base.hints) if base else {},
            help_url=entry.get("help_url") or (base.help_url if base else None),
            keeps_sent_copy=bool(
                entry.get("keeps_sent_copy", base.keeps_sent_copy if base else False)
            ),
        )
    return declared


def available_presets(config: Mapping[str, Any]) -> dict[str, Preset]:
    """Declared providers first (they win domain detection), then the presets, "Other" last."""
    declared = parse_providers(config.get("MAILCONNECT_PROVIDERS"))
    merged = {**declared, **{k: p for k, p in PRESETS.items() if k not in declared}}
    other = merged.pop("other")
    merged["other"] = other
    return merged


def preset_from_model(provider: Any) -> Preset:
    """A :class:`Preset` for an admin-entered :class:`~flask_mailconnect.models.MailProvider`."""
    smtp = imap = None
    if provider.sends and provider.smtp_host and provider.smtp_port:
        smtp = ServerPreset(provider.smtp_host, provider.smtp_port, provider.smtp_security)
    if provider.receives and provider.imap_host and provider.imap_port:
        imap = ServerPreset(provider.imap_host, provider.imap_port, provider.imap_security)
    return Preset(
        key=provider.key,
        name=provider.name,
        domains=tuple(provider.domain_names),
        smtp=smtp,
        imap=imap,
        login_format=provider.login_format,
    )


def _db_presets(include_disabled: bool) -> dict[str, Preset]:
    state = current_app.extensions.get("mailconnect")
    if state is None:
        return {}
    from ..models import MailProvider

    query = sa.select(MailProvider).order_by(MailProvider.name, MailProvider.id)
    if not include_disabled:
        query = query.where(MailProvider.enabled.is_(True))
    return {p.key: preset_from_model(p) for p in state.session.scalars(query)}


def current_presets(include_disabled: bool = False) -> dict[str, Preset]:
    """The providers the current app offers (needs an app context).

    Admin-entered providers (database) first, so their domains win detection, then those of
    ``MAILCONNECT_PROVIDERS``, then the presets, "Other" last. Disabled admin providers are left
    out unless ``include_disabled`` (for naming existing accounts). Computed once per app context
    (one query per request); :func:`invalidate_presets` after changing providers.
    """
    cache_key = f"_mailconnect_presets_{int(include_disabled)}"
    cached = g.get(cache_key) if has_app_context() else None
    if cached is not None:
        return dict(cached)
    configured = available_presets(current_app.config)
    found = {k: p for k, p in _db_presets(include_disabled).items() if k not in configured}
    merged = {**found, **configured}
    setattr(g, cache_key, merged)
    return dict(merged)


def invalidate_presets() -> None:
    """Forget the providers computed for this app context (after an admin change)."""
    for flag in (0, 1):
        g.pop(f"_mailconnect_presets_{flag}", None)


def admin_provider_keys() -> set[str]:
    """Keys of the admin-entered providers among :func:`current_presets`."""
    configured = available_presets(current_app.config)
    return {k for k in current_presets(include_disabled=True) if k not in configured}


def detect_for_app(email: str, *, use_mx: bool = True) -> tuple[Preset, str]:
    """Provider for ``email`` and how it was found: ``admin``, ``preset``, ``mx`` or ``none``.

    Order: admin-entered domains, then declared providers and presets, then the domain's MX
    records (``MAILCONNECT_MX_*``), else "Other".
    """
    from .detect import detect_provider
    from .mx import MXCache, lookup_mx, preset_for_mx

    presets = current_presets()
    found = detect_provider(email, presets)
    if found.key != "other":
        return found, "admin" if found.key in admin_provider_keys() else "preset"
    config = current_app.config
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    if use_mx and config["MAILCONNECT_MX_LOOKUP"] and domain:
        state = current_app.extensions["mailconnect"]
        cache = state.__dict__.setdefault("mx_cache", MXCache())
        hosts = lookup_mx(
            domain,
            cache=cache,
            timeout=float(config["MAILCONNECT_MX_TIMEOUT"]),
            nameservers=config["MAILCONNECT_DNS_NAMESERVERS"],
            cache_seconds=float(config["MAILCONNECT_MX_CACHE_SECONDS"]),
        )
        key = preset_for_mx(hosts)
        if key and key in presets:
            return presets[key], "mx"
    return presets["other"], "none"
