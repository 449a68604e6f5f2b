"""The providers an app offers: built-in presets plus those declared in ``MAILCONNECT_PROVIDERS``.

A declared provider needs at least a name and an SMTP server; with ``domains`` it is detected from
an address (declared domains win over the presets'). Entries that carry OAuth settings are read by
the OAuth layer; here only their servers and domains matter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

from ..oauth.providers import PRESET_DEFAULTS
from ..transport.settings import SECURITY_CHOICES
from .presets import PRESETS, Preset, ServerPreset


class ProviderConfigError(ValueError):
    """``MAILCONNECT_PROVIDERS`` holds an entry that cannot work; the message says which."""


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
        )
    return declared


def available_presets(config: Mapping[str, Any]) -> dict[str, Preset]:
    """Declared providers first (they win domain detection), then the presets, "Other" last."""
    declared = parse_providers(config.get("MAILCONNECT_PROVIDERS"))
    merged = {**declared, **{k: p for k, p in PRESETS.items() if k not in declared}}
    other = merged.pop("other")
    merged["other"] = other
    return merged


def current_presets() -> dict[str, Preset]:
    """The providers the current app offers (needs an app context)."""
    return available_presets(current_app.config)
