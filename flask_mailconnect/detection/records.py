"""The sources read from DNS: SRV records (RFC 6186, RFC 8314) and the MX host.

SRV: ``_submissions._tcp`` (SMTP over TLS) and ``_submission._tcp`` (STARTTLS) for sending,
``_imaps._tcp`` and ``_imap._tcp`` for reading. Records are ranked by priority (lowest first),
then implicit TLS before STARTTLS (RFC 8314 section 5.1), then weight (heaviest first: one
person needs one server, the weighted random pick of RFC 2782 spreads load across many
clients and would make the form change between two visits). A target of ``"."`` means "no such
service here" (RFC 2782). A target must be a real host name (:func:`.names.is_host`: no
``localhost``, no IP address in any notation) with an address the network guard accepts.

MX: the catalogue's MX patterns (Google Workspace, Microsoft 365...), then Mozilla's ISP
database for the MX host's registrable domain (the public-suffix library's bundled list; no
download at run time), as Thunderbird does. MX hosts that are no real host names are ignored,
and a registrable domain under a reserved name (``corp.internal``...) is never sent anywhere.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import TYPE_CHECKING

from ..providers.detect import is_reserved
from ..transport import netguard
from .context import Context, SourceFailure, resolver
from .model import DetectedServer, Finding
from .names import is_host
from .web import client_config, ispdb_url

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

#: (service, protocol, security) in the order tried for equal priorities.
SERVICES = (
    ("_submissions._tcp", "smtp", "ssl"),
    ("_submission._tcp", "smtp", "starttls"),
    ("_imaps._tcp", "imap", "ssl"),
    ("_imap._tcp", "imap", "starttls"),
)
_TLS_RANK = {"ssl": 0, "starttls": 1}


@cache
def _suffixes() -> PublicSuffixList:
    from publicsuffixlist import PublicSuffixList  # loaded when first needed

    return PublicSuffixList()  # its bundled copy of the list: parsed once per process


def registrable_domain(host: str) -> str | None:
    """``mx1.mail.example.co.uk`` -> ``example.co.uk``; ``None`` for a bare public suffix."""
    return _suffixes().privatesuffix(host.lower().rstrip("."))


def _query(ctx: Context, name: str, rdtype: str) -> list[object]:
    """Records of ``name``; ``[]`` for "no such name / no such record"; SourceFailure on
    timeout or a broken resolver."""
    # dnspython loads on the first lookup (make_resolver imports it), not at start-up.
    import dns.exception
    import dns.resolver

    try:
        answer = resolver(ctx).resolve(name, rdtype, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout:
        raise SourceFailure("timeout", f"{rdtype} {name}: no answer in time") from None
    except (dns.exception.DNSException, OSError, ValueError) as exc:
        raise SourceFailure("failed", f"{rdtype} {name}: {type(exc).__name__}") from None
    return list(answer)


def _target_allowed(ctx: Context, host: str) -> bool:
    """Every address of ``host`` passes the network guard (and it has one)."""
    if ctx.options.allow_private_hosts:
        return True
    addresses = [str(r) for t in ("A", "AAAA") for r in _query(ctx, host, t)]
    return bool(addresses) and all(
        netguard.is_public_ip(ipaddress.ip_address(a)) for a in addresses
    )


def srv(ctx: Context) -> Finding:
    candidates: dict[str, list[tuple[int, int, int, DetectedServer]]] = {"smtp": [], "imap": []}
    refused: list[str] = []
    invalid: list[str] = []  # "localhost", "127.1", a single label...: never offered
    import dns.name  # see _query

    for service, protocol, security in SERVICES:
        for record in _query(ctx, f"{service}.{ctx.domain}", "SRV"):
            target = record.target  # type: ignore[attr-defined]
            if target == dns.name.root or record.port == 0:  # type: ignore[attr-defined]
                continue  # "." : this service is decidedly not offered here
            host = target.to_text(omit_final_dot=True).lower()
            if not is_host(host):
                invalid.append(host)
                continue
            if not _target_allowed(ctx, host):
                refused.append(host)
                continue
            server = DetectedServer(host, int(record.port), security)  # type: ignore[attr-defined,arg-type]
            rank = (int(record.priority), _TLS_RANK[security], -int(record.weight))  # type: ignore[attr-defined]
            candidates[protocol].append((*rank, server))
    best = {p: min(found, key=lambda c: c[:3])[3] for p, found in candidates.items() if found}
    if not best:
        if refused:
            raise SourceFailure("blocked", "targets at non-public addresses: " + ", ".join(refused))
        if invalid:
            raise SourceFailure("invalid", "targets that are no host names: " + ", ".join(invalid))
        raise SourceFailure("nothing", "no SRV records")
    # RFC 6186 section 3: the login is the full address unless told otherwise.
    return Finding(source="srv", smtp=best.get("smtp"), imap=best.get("imap"))


def mx(ctx: Context) -> Finding:
    records = _query(ctx, ctx.domain, "MX")
    ranked = sorted(records, key=lambda r: r.preference)  # type: ignore[attr-defined]
    hosts = tuple(r.exchange.to_text(omit_final_dot=True).lower() for r in ranked)  # type: ignore[attr-defined]
    # "." : the domain takes no mail (RFC 7505); "localhost", "127.1"...: nothing to look up.
    hosts = tuple(h for h in hosts if h and is_host(h))
    if not hosts:
        raise SourceFailure("nothing", "no MX records")
    provider = ctx.catalog.for_mx(hosts)
    mx_domain = registrable_domain(hosts[0])
    if provider is not None:
        return Finding(source="mx", provider=provider.key, origin=mx_domain or "")
    if not mx_domain or mx_domain == ctx.domain or not ctx.ispdb_url:
        raise SourceFailure("nothing", f"MX {hosts[0]}: no known provider")
    if is_reserved(mx_domain):  # no public source knows it, and it names a private network
        raise SourceFailure("nothing", f"MX {hosts[0]}: a reserved name")
    return client_config(
        ctx, ispdb_url(ctx.ispdb_url, mx_domain), source="mx", domain=ctx.domain, origin=mx_domain
    )
