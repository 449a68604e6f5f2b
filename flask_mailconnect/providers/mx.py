"""Provider detection from a domain's MX records (dnspython), with a timeout and a cache.

Used after admin-entered domains and the presets found nothing: a company domain hosted by
Google Workspace has MX records under ``google.com``, one on Microsoft 365 under
``mail.protection.outlook.com``. The cache lives on the app's state (never a module global), so
each app and test has its own; answers and failures are both remembered for
``MAILCONNECT_MX_CACHE_SECONDS``. Every failure (timeout, no answer, no such domain) means "no
match": detection then answers "Other" and the user types the servers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

import dns.exception
import dns.resolver

#: MX host suffixes -> preset key, matched on whole labels (not ``evilgoogle.com``).
MX_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("google.com", "gmail"),
    ("googlemail.com", "gmail"),
    ("protection.outlook.com", "microsoft365"),
    ("outlook.com", "microsoft365"),
    ("yahoodns.net", "yahoo"),
    ("icloud.com", "icloud"),
    ("me.com", "icloud"),
)

#: Names that never resolve publicly (RFC 2606 / 6761): never looked up.
RESERVED = ("test", "example", "invalid", "localhost", "local", "example.com", "example.net",
            "example.org")  # fmt: skip


def preset_for_mx(hosts: Sequence[str]) -> str | None:
    """The preset key the MX hosts point at (best preference first), or ``None``."""
    for host in hosts:
        name = host.lower().rstrip(".")
        for suffix, key in MX_SUFFIXES:
            if name == suffix or name.endswith("." + suffix):
                return key
    return None


def is_reserved(domain: str) -> bool:
    return any(domain == r or domain.endswith("." + r) for r in RESERVED)


class MXCache:
    """A small thread-safe LRU of ``domain -> (expires_at, mx hosts)``, one per app."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[float, tuple[str, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, domain: str) -> tuple[str, ...] | None:
        with self._lock:
            item = self._items.get(domain)
            if item is None:
                return None
            if item[0] < time.monotonic():
                del self._items[domain]
                return None
            self._items.move_to_end(domain)
            return item[1]

    def put(self, domain: str, hosts: tuple[str, ...], ttl: float) -> None:
        with self._lock:
            self._items[domain] = (time.monotonic() + ttl, hosts)
            self._items.move_to_end(domain)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _resolver(nameservers: Sequence[str] | None, timeout: float) -> dns.resolver.Resolver:
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
    cache: MXCache,
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
        answer = _resolver(nameservers, timeout).resolve(domain, "MX", search=False)
        records = sorted(answer, key=lambda r: r.preference)
        hosts = tuple(r.exchange.to_text(omit_final_dot=True) for r in records)
    except (dns.exception.DNSException, OSError, ValueError):
        hosts = ()
    # A failure (often a slow or unreachable resolver) is retried sooner than an answer.
    cache.put(domain, hosts, cache_seconds if hosts else min(cache_seconds, 300))
    return hosts
