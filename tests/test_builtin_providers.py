"""Every built-in provider module (providers/builtin/*.py) is complete and consistent.

A new provider is a new module there: these checks run over each one found, so its first test
is written already. What only one provider does (Microsoft's tenant URLs, Google's issuer) is
tested next to the flows that use it.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

from flask_mailconnect import codes
from flask_mailconnect.providers import build_catalog
from flask_mailconnect.providers import builtin as builtin_package
from flask_mailconnect.providers.builtin import builtin_providers
from flask_mailconnect.providers.model import Provider

TEMPLATES = Path(builtin_package.__file__).parents[2] / "templates"
BUILTINS = [provider for provider, _configure in builtin_providers()]


def test_every_module_in_the_folder_is_a_provider() -> None:
    modules = [m.name for m in pkgutil.iter_modules(builtin_package.__path__)]
    names = [m for m in modules if not m.startswith("_")]
    assert len(names) == len(BUILTINS) >= 6
    assert BUILTINS[-1].key == "other"


def test_keys_aliases_and_domains_are_unique() -> None:
    names = [n for p in BUILTINS for n in (p.key, *p.aliases)]
    assert len(names) == len(set(names))
    domains = [d for p in BUILTINS for d in p.domains]
    assert len(domains) == len(set(domains))


@pytest.mark.parametrize("provider", BUILTINS, ids=lambda p: p.key)
def test_provider_is_complete(provider: Provider) -> None:
    assert provider.key.isidentifier() and provider.name
    assert all(d == d.lower().strip(".") and "." in d for d in provider.domains)
    for server in (provider.smtp, provider.imap):
        if server is not None:
            assert server.host and 0 < server.port < 65536
            assert server.security in ("ssl", "starttls", "none")
    if provider.key != "other":
        assert provider.smtp is not None and provider.imap is not None
    assert set(provider.hints) <= set(codes.MESSAGES)  # advice for codes that exist
    for url in (provider.help_url, provider.token_url, provider.authorize_url):
        assert url is None or url.startswith("https://")
    if provider.icon:
        assert (TEMPLATES / "mailconnect" / "icons" / f"{provider.icon}.html").is_file()
    if provider.scopes:  # OAuth-capable: endpoints known once credentials are configured
        configured = build_catalog(
            {"MAILCONNECT_PROVIDERS": {provider.key: {"client_id": "i", "client_secret": "s"}}}
        ).get(provider.key)
        assert configured is not None and configured.offers_oauth
        assert configured.authorize_url and configured.token_url
        assert "client_secret=" not in repr(configured)  # never in logs or tracebacks
    else:
        assert not provider.offers_oauth


@pytest.mark.parametrize("provider", [p for p in BUILTINS if p.domains], ids=lambda p: p.key)
def test_each_domain_finds_its_provider(provider: Provider) -> None:
    catalog = build_catalog({})
    for domain in provider.domains:
        assert catalog.for_domain(domain.upper() + ".") == provider
        assert catalog.for_domain("x" + domain) is None  # whole names only
    for alias in provider.aliases:  # older stored keys resolve to the same provider
        assert catalog.get(alias) == provider
