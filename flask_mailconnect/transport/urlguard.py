"""The guard's rules for a URL, checked without connecting:
the error they raise, :func:`check_url` (for a form that takes a provider URL) and
:func:`check_redirect`. :mod:`.http` applies the same rules to every request and redirect hop
it sends, and re-exports these names. See :mod:`.http` for the rules themselves.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urljoin, urlsplit

from .. import codes
from ..codes import message_for
from ..exceptions import ConnectionFailed
from . import netguard
from .netguard import GuardedAddress

#: Largest response body accepted (after content decoding, so a gzip bomb counts in full).
DEFAULT_MAX_BYTES = 1024 * 1024
#: Redirect hops followed for a GET or HEAD before giving up.
MAX_REDIRECTS = 3
_DEFAULT_PORTS = {"https": 443, "http": 80}
_FOLLOW_METHODS = frozenset({"GET", "HEAD"})

#: Codes that mean "this URL is not allowed" (as opposed to "could not be reached right now").
REFUSAL_CODES = frozenset(
    {
        codes.BLOCKED_ADDRESS,
        codes.PORT_NOT_ALLOWED,
        codes.INSECURE_URL,
        codes.REDIRECT_REFUSED,
        codes.RESPONSE_TOO_LARGE,
    }
)


class HTTPGuardError(ConnectionFailed):
    """The guard stopped a request, or its host could not be resolved; ``code`` says why
    (``blocked_address``, ``port_not_allowed``, ``insecure_url``, ``redirect_refused``,
    ``response_too_large``, ``host_not_found``, ``timeout``). ``address`` is the refused IP
    address when there is one (for an admin's message; never shown to end users).

    One raised by a guarded session's request is also a :class:`requests.ConnectionError` (the
    subclass :mod:`.http_session` raises), so code written for requests (``except
    requests.RequestException``) still turns it into a clear failure; this base class does not
    derive from requests, so checking a URL never imports it."""

    def __init__(self, code: str, detail: str = "", *, address: str | None = None) -> None:
        super().__init__(code, message_for(code), detail=detail)
        self.address = address

    @property
    def refused(self) -> bool:
        """True for a refusal by rule; False when the host merely could not be resolved."""
        return self.code in REFUSAL_CODES


# -- checks (no connection is opened by any of these) ------------------------------------------


def parse_url(url: str, *, allow_private: bool) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url`` after the scheme and port rules."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or (scheme == "http" and not allow_private):
        raise HTTPGuardError(codes.INSECURE_URL, f"{scheme or 'no'} scheme")
    host = parts.hostname
    if not host:
        raise HTTPGuardError(codes.HOST_NOT_FOUND, "no host in URL")
    try:
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:  # "https://host:99999/" or a non-numeric port
        raise HTTPGuardError(codes.PORT_NOT_ALLOWED, "invalid port") from None
    if not allow_private and port != _DEFAULT_PORTS[scheme]:
        raise HTTPGuardError(codes.PORT_NOT_ALLOWED, f"{scheme} port {port}")
    return scheme, host, port


def resolve_checked(
    host: str, port: int, *, allow_private: bool, timeout: float
) -> tuple[GuardedAddress, ...]:
    """Resolve ``host`` once and check every address it has (one bad address refuses all)."""
    try:
        found = netguard.resolve_guarded(host, port, allow_private=True, timeout=timeout)
    except ConnectionFailed as exc:
        raise HTTPGuardError(exc.code, exc.detail) from None
    if not allow_private:
        for address in found:
            # Each answer goes through netguard again as a literal (no DNS): netguard alone
            # decides what is public, and the refusal can name the address for the admin.
            try:
                netguard.resolve_guarded(address.ip, port, allow_private=False, timeout=timeout)
            except ConnectionFailed as exc:
                raise HTTPGuardError(exc.code, exc.detail, address=address.ip) from None
    return tuple(found)


def check_url(url: str, *, allow_private_hosts: bool, timeout: float) -> None:
    """Validate ``url`` as a request would (scheme, port, every resolved address) without
    connecting; raises :class:`HTTPGuardError`. One DNS lookup, bounded by ``timeout``."""
    _scheme, host, port = parse_url(url, allow_private=allow_private_hosts)
    resolve_checked(host, port, allow_private=allow_private_hosts, timeout=timeout)


def check_redirect(
    method: str, from_url: str, location: str, *, hop: int, allow_private_hosts: bool
) -> str:
    """The absolute URL of redirect hop ``hop`` (1 for the first) if it may be followed, else
    :class:`HTTPGuardError`. An IP literal is checked here; a name when the hop is sent (that
    lookup is the one whose address is used)."""
    if hop > MAX_REDIRECTS:
        raise HTTPGuardError(codes.REDIRECT_REFUSED, f"more than {MAX_REDIRECTS} redirects")
    if method.upper() not in _FOLLOW_METHODS:
        # A POST carries the client secret, the code or a token: never re-send it anywhere.
        raise HTTPGuardError(codes.REDIRECT_REFUSED, f"{method.upper()} is not re-sent")
    from requests.utils import requote_uri  # loaded already: only a session follows redirects

    target = requote_uri(urljoin(from_url, location.strip()))
    if urlsplit(target).scheme.lower() != "https":
        raise HTTPGuardError(codes.REDIRECT_REFUSED, "redirect to a non-https URL")
    _scheme, host, port = parse_url(target, allow_private=allow_private_hosts)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return target
    resolve_checked(host, port, allow_private=allow_private_hosts, timeout=1.0)  # literal: no DNS
    return target
