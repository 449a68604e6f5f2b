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

import ipaddress
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from flask import current_app

from ..runtime import TTLCache, current_runtime
from .catalog import current_catalog
from .model import Provider

if TYPE_CHECKING:
    import dns.resolver

#: Names that never resolve publicly, and their subdomains: never looked up, never sent to a
#: public source (they name someone's private network). RFC 2606 (test, example, invalid,
#: localhost, example.com/.net/.org), RFC 6761 and 6762 (local; appendix G: intranet,
#: internal, private, corp, home, lan), RFC 7686 (onion), RFC 8375 (home.arpa, under arpa,
#: which holds no mail domains), RFC 9476 (alt), ICANN's 2024 reservation of internal, and
#: localdomain (the usual name of the local machine's own domain).
RESERVED = ("test", "example", "invalid", "localhost", "local", "localdomain", "internal",
            "intranet", "private", "corp", "home", "lan", "onion", "arpa", "alt", "example.com",
            "example.net", "example.org")  # fmt: skip


def is_reserved(domain: str) -> bool:
    domain = domain.lower().removesuffix(".")
    return any(domain == r or domain.endswith("." + r) for r in RESERVED)


def parse_nameservers(entries: Any) -> list[tuple[str, int]]:
    """``MAILCONNECT_DNS_NAMESERVERS`` as ``(address, port)`` pairs. Each entry is an IP
    address with an optional port: ``10.0.0.2``, ``10.0.0.2:5353``, ``2001:db8::53``,
    ``[2001:db8::53]`` or ``[2001:db8::53]:5353`` (port 53 when none is given). Raises
    :class:`ValueError` naming the entry that is none of these."""
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise ValueError(
            "MAILCONNECT_DNS_NAMESERVERS must be a list of addresses, such as "
            f'["10.0.0.2", "[2001:db8::53]:5353"], not {entries!r}'
        )
    found = []
    for entry in entries:
        text = str(entry).strip()
        host, port = text, "53"
        if text.startswith("["):  # [IPv6] or [IPv6]:port
            host, bracket, rest = text[1:].partition("]")
            port = rest.removeprefix(":") if rest.startswith(":") else (rest or "53")
            port = port if bracket else "-"
        elif text.count(":") == 1:  # IPv4:port (a bare IPv6 address has several colons)
            host, _, port = text.partition(":")
        try:
            address = ipaddress.ip_address(host)
            number = int(port) if port.isdigit() else -1
        except ValueError:
            number = -1
        if number <= 0 or number > 65535:
            raise ValueError(
                f"MAILCONNECT_DNS_NAMESERVERS: {entry!r} is not an IP address with an optional "
                'port (such as "10.0.0.2", "10.0.0.2:5353" or "[2001:db8::53]:5353")'
            )
        found.append((str(address), number))
    return found


def check_config(config: Mapping[str, Any]) -> None:
    """Raise :class:`ValueError` at start-up for a malformed ``MAILCONNECT_DNS_NAMESERVERS``
    (otherwise every DNS look-up would fail, quietly, as "no records")."""
    if config.get("MAILCONNECT_DNS_NAMESERVERS"):
        parse_nameservers(config["MAILCONNECT_DNS_NAMESERVERS"])


def make_resolver(nameservers: Sequence[str] | None, timeout: float) -> dns.resolver.Resolver:
    """A dnspython resolver for ``MAILCONNECT_DNS_NAMESERVERS`` (see :func:`parse_nameservers`;
    each server with its own port; ``None``: the system's configuration) whose whole lookup
    takes at most ``timeout`` seconds."""
    import dns.nameserver  # dnspython (~20 ms) loads on the first lookup, not at start-up
    import dns.resolver

    if nameservers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(address, port)
            for address, port in parse_nameservers(nameservers)
        ]
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
    import dns.exception  # deferred with make_resolver's import

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
