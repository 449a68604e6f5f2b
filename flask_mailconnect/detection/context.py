"""What every source gets (:class:`Context`, plain data: sources run in worker threads without
an app context) and the two doors they use: :func:`fetch` (the guarded HTTP client, 100 KB cap)
and :func:`resolver` (dnspython with ``MAILCONNECT_DNS_NAMESERVERS``)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .. import codes
from ..providers.catalog import Catalog
from ..providers.detect import make_resolver
from ..transport import netguard
from ..transport.http import HTTPGuardError, guarded_session
from ..transport.settings import TransportOptions
from .model import Outcome

if TYPE_CHECKING:
    import dns.resolver  # loaded by make_resolver on the first lookup

#: Largest answer a detection source may send (a clientConfig file is a few KB).
MAX_BYTES = 100 * 1024
#: Guard codes that mean "the answer was unusable" rather than "refused by rule".
_INVALID_CODES = frozenset({codes.RESPONSE_TOO_LARGE})
_TIMEOUT_CODES = frozenset({codes.TIMEOUT})


class SourceFailure(Exception):
    """A source ends without servers: ``outcome`` (see :data:`.model.Outcome`) and detail."""

    def __init__(self, outcome: Outcome, detail: str = "") -> None:
        super().__init__(detail or outcome)
        self.outcome: Outcome = outcome
        self.detail = detail


@dataclass(frozen=True)
class Context:
    """One detection: the address, the app's settings it needs, and its deadline."""

    email: str
    domain: str
    catalog: Catalog
    options: TransportOptions
    #: ``time.monotonic()`` value past which no source is waited for.
    deadline: float
    nameservers: Sequence[str] | None = None
    ispdb_url: str | None = None
    autoconfig_urls: tuple[str, ...] = ()
    autodiscover_url: str | None = None

    def remaining(self) -> float:
        return max(0.05, self.deadline - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def http_options(self) -> TransportOptions:
        """The app's network policy with timeouts that end by the deadline."""
        return replace(self.options, timeout=min(self.options.timeout, self.remaining()))


def fetch(ctx: Context, url: str) -> bytes:
    """GET ``url`` through the guarded client; the body of a 200 answer, else
    :class:`SourceFailure` (404 and friends: ``nothing``; guard refusals: ``blocked``). The
    whole request, redirects and every read included, ends by the detection's deadline: a
    server that drips its answer cannot keep the thread or the socket."""
    import requests  # for its exceptions; the session below loads it anyway

    if ctx.expired():
        raise SourceFailure("timeout", "no time left")
    options = ctx.http_options()
    try:
        with guarded_session(options, max_bytes=MAX_BYTES, deadline=ctx.deadline) as session:
            response = session.get(url, headers={"Accept": "application/xml, application/json"})
    except HTTPGuardError as exc:
        if exc.code in _INVALID_CODES:
            raise SourceFailure("invalid", exc.code) from None
        if exc.code in _TIMEOUT_CODES:
            raise SourceFailure("timeout", exc.code) from None
        raise SourceFailure("blocked" if exc.refused else "failed", exc.code) from None
    except requests.Timeout:
        raise SourceFailure("timeout", "no answer in time") from None
    except requests.exceptions.SSLError:
        raise SourceFailure("failed", "certificate_invalid") from None
    except requests.RequestException as exc:
        raise SourceFailure("failed", type(exc).__name__) from None
    if response.status_code != 200:
        raise SourceFailure("nothing", f"HTTP {response.status_code}")
    return response.content


def resolver(ctx: Context) -> dns.resolver.Resolver:
    """A resolver whose whole lookup ends by the deadline (none once it has passed)."""
    if ctx.expired():
        raise SourceFailure("timeout", "no time left")
    return make_resolver(ctx.nameservers, ctx.remaining())


def public_host(host: str, *, allow_private: bool) -> bool:
    """False for an IP literal the network guard would refuse (a name is checked when the
    person's Test connection connects to it, through the same guard)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return True
    return allow_private or netguard.is_public_ip(ip)
