"""Which provider an address belongs to: the catalogue by domain, then the domain's MX records.

The building blocks of server detection: :mod:`flask_mailconnect.detection` asks these and the
other sources (ISP database, autoconfig, SRV, Autodiscover) for the connect page;
:func:`detect_provider` stays for callers that need only a provider (the form's default,
accounts saved without one).

A company domain hosted by Google Workspace has MX records under ``google.com``, one on Microsoft
365 under ``mail.protection.outlook.com``: each provider lists its MX suffixes. MX look-ups use
dnspython with a timeout and the app's cache (answers and failures both remembered for
``MAILCONNECT_MX_CACHE_SECONDS``). Every failure (timeout, no answer, no such domain) means "no
match": detection then answers "Other" and the person types the servers.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.exception
import dns.resolver
from flask import current_app

from ..runtime import TTLCache, current_runtime
from .catalog import current_catalog
from .model import Provider

#: Names that never resolve publicly (RFC 2606 / 6761): never looked up.
RESERVED = ("test", "example", "invalid", "localhost", "local", "example.com", "example.net",
            "example.org")  # fmt: skip


def is_reserved(domain: str) -> bool:
    return any(domain == r or domain.endswith("." + r) for r in RESERVED)


def make_resolver(nameservers: Sequence[str] | None, timeout: float) -> dns.resolver.Resolver:
    """A dnspython resolver for ``MAILCONNECT_DNS_NAMESERVERS`` (``host`` or ``host:port``
    entries; ``None``: the system's configuration) whose whole lookup takes at most
    ``timeout`` seconds."""
    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        addresses, port = [], 53
        for entry in nameservers:
            host, sep, rest = str(entry).rpartition(":")
            if sep and rest.isdigit() and "]" not in rest and host.count(":") == 0:
                addresses.append(host)
                port = int(rest)
            else:
                addresses.append(str(entry).strip("[]"))
        resolver.nameservers = addresses
        resolver.port = port
    else:
        resolver = dns.resolver.Resolver()
    resolver.timeout = timeout
    resolver.lifetime = timeout  # the whole lookup, retries included
    return resolver


def lookup_mx(
    domain: str,
    *,
    cache: TTLCache[str, tuple[str, ...]],
    timeout: float,
    nameservers: Sequence[str] | None = None,
    cache_seconds: float = 3600,
) -> tuple[str, ...]:
    """MX hosts of ``domain``, best preference first; ``()`` on any failure (also cached)."""
    domain = domain.strip().lower().rstrip(".")
    if not domain or "." not in domain or is_reserved(domain):
        return ()
    cached = cache.get(domain)
    if cached is not None:
        return cached
    try:
        answer = make_resolver(nameservers, timeout).resolve(domain, "MX", search=False)
        records = sorted(answer, key=lambda r: r.preference)
        hosts = tuple(r.exchange.to_text(omit_final_dot=True) for r in records)
    except (dns.exception.DNSException, OSError, ValueError):
        hosts = ()
    # A failure (often a slow or unreachable resolver) is retried sooner than an answer.
    cache.put(domain, hosts, cache_seconds if hosts else min(cache_seconds, 300))
    return hosts


def detect_provider(email: str, *, use_mx: bool = True) -> tuple[Provider, str]:
    """Provider for ``email`` and how it was found: ``admin``, ``preset``, ``mx`` or ``none``.

    Order: admin-entered domains, then declared providers and built-ins, then the domain's MX
    records (``MAILCONNECT_MX_*``), else "Other".
    """
    catalog = current_catalog()
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    found = catalog.for_domain(domain)
    if found is not None:
        return found, "admin" if found.source == "admin" else "preset"
    config = current_app.config
    if use_mx and config["MAILCONNECT_MX_LOOKUP"] and domain:
        hosts = lookup_mx(
            domain,
            cache=current_runtime().mx_cache,
            timeout=float(config["MAILCONNECT_MX_TIMEOUT"]),
            nameservers=config["MAILCONNECT_DNS_NAMESERVERS"],
            cache_seconds=float(config["MAILCONNECT_MX_CACHE_SECONDS"]),
        )
        by_mx = catalog.for_mx(hosts)
        if by_mx is not None:
            return by_mx, "mx"
    return catalog.require("other"), "none"
