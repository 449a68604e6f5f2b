"""The one HTTP client of the package: every HTTP request (OAuth discovery, token, userinfo,
revoke, JWKS; Microsoft Graph) goes out through a session made here.

An admin types an OAuth provider's URLs; a metadata document names more of them. Any of these
could point at the machine we run on or its private network (SSRF: ``169.254.169.254`` cloud
metadata, an internal admin port). So, for every request and every redirect hop:

* **https only**; ``http://`` only with ``allow_private_hosts`` (a local test provider).
* **Ports**: 443 (80 for http), others only with ``allow_private_hosts``: a public provider
  has no reason to live elsewhere, and the allowlist keeps us from probing other services.
* **Resolve once** with :func:`.netguard.resolve_guarded`, refuse every non-public address (the
  socket guard's rules, IPv4 hidden in IPv6 included) unless ``allow_private_hosts``, before any
  socket exists; then connect to exactly the checked address (no second DNS lookup, so DNS
  rebinding cannot swap it), while TLS SNI and certificate verification use the URL's host name.
* **TLS verified** with :meth:`TransportOptions.ssl_context` (system store plus
  ``MAILCONNECT_CA_FILE``); a caller's ``verify=False`` or CA path is ignored. No proxy, netrc
  or CA bundle from the environment (``trust_env`` off): a proxy would resolve the name itself.
* **Redirects**: only GET and HEAD are followed; any other method (a token or revoke POST) is
  never re-sent, whatever the status (307/308 would re-POST the client secret). At most
  :data:`MAX_REDIRECTS` hops, each ``https://``, each re-checked like a first request.
* **Timeouts** on every request (connect and read, from ``TransportOptions.timeout``) even when
  the caller passes none; **responses** are read in full here, refused beyond ``max_bytes``.

Refusals raise :class:`HTTPGuardError`: both a :class:`~flask_mailconnect.ConnectionFailed`
with a stable ``code`` and a :class:`requests.ConnectionError`, so code written for requests
(``except requests.RequestException``) still turns it into a clear failure.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from authlib.integrations.requests_client import OAuth2Session
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from requests.utils import requote_uri
from urllib3 import Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .. import codes
from ..codes import message_for
from ..exceptions import ConnectionFailed
from . import netguard
from .netguard import GuardedAddress
from .settings import TransportOptions

#: Largest response body accepted (after content decoding, so a gzip bomb counts in full).
DEFAULT_MAX_BYTES = 1024 * 1024
#: Redirect hops followed for a GET or HEAD before giving up.
MAX_REDIRECTS = 3
_DEFAULT_PORTS = {"https": 443, "http": 80}
_FOLLOW_METHODS = frozenset({"GET", "HEAD"})
_CHUNK = 64 * 1024

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


class HTTPGuardError(ConnectionFailed, requests.ConnectionError):
    """The guard stopped a request, or its host could not be resolved; ``code`` says why
    (``blocked_address``, ``port_not_allowed``, ``insecure_url``, ``redirect_refused``,
    ``response_too_large``, ``host_not_found``, ``timeout``). ``address`` is the refused IP
    address when there is one (for an admin's message; never shown to end users)."""

    def __init__(self, code: str, detail: str = "", *, address: str | None = None) -> None:
        super().__init__(code, message_for(code), detail=detail)
        self.address = address

    @property
    def refused(self) -> bool:
        """True for a refusal by rule; False when the host merely could not be resolved."""
        return self.code in REFUSAL_CODES


# -- checks (no connection is opened by any of these) ------------------------------------------


def _parse(url: str, *, allow_private: bool) -> tuple[str, str, int]:
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


def _resolve(
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
    _scheme, host, port = _parse(url, allow_private=allow_private_hosts)
    _resolve(host, port, allow_private=allow_private_hosts, timeout=timeout)


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
    target = requote_uri(urljoin(from_url, location.strip()))
    if urlsplit(target).scheme.lower() != "https":
        raise HTTPGuardError(codes.REDIRECT_REFUSED, "redirect to a non-https URL")
    _scheme, host, port = _parse(target, allow_private=allow_private_hosts)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return target
    _resolve(host, port, allow_private=allow_private_hosts, timeout=1.0)  # literal: no DNS
    return target


# -- connecting to the checked address ---------------------------------------------------------


def _open_checked(conn: HTTPConnection, checked: tuple[GuardedAddress, ...]) -> socket.socket:
    """urllib3's ``_new_conn`` without its DNS lookup: try the checked addresses in order within
    one connect timeout, raising what urllib3 raises so requests maps errors as usual."""
    timeout = conn.timeout if isinstance(conn.timeout, (int, float)) else None
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        sock = netguard.connect_first(
            checked, deadline=deadline, socket_options=conn.socket_options or ()
        )
    except TimeoutError:
        message = f"Connection to {conn.host} timed out. (connect timeout={timeout})"
        raise ConnectTimeoutError(conn, message) from None
    except OSError as exc:
        raise NewConnectionError(conn, f"Failed to establish a new connection: {exc}") from None
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    return sock


class _PinnedHTTPConnection(HTTPConnection):
    """Connects to the checked address; ``host`` (so SNI, the Host header and the ssl module's
    hostname check) stays the URL's name. No ``assert_hostname``: urllib3 would then turn off
    ``check_hostname`` on the shared, cached SSL context that SMTP and IMAP use too."""

    def __init__(self, *args: Any, checked: tuple[GuardedAddress, ...] = (), **kw: Any) -> None:
        self._checked = checked
        super().__init__(*args, **kw)

    def _new_conn(self) -> socket.socket:
        return _open_checked(self, self._checked)


class _PinnedHTTPSConnection(_PinnedHTTPConnection, HTTPSConnection):
    pass  # _PinnedHTTPConnection's _new_conn, then HTTPSConnection's verified handshake


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class _GuardedAdapter(HTTPAdapter):
    """Checks each request's URL, then hands requests a pool pinned to the checked addresses."""

    def __init__(self, options: TransportOptions, max_bytes: int) -> None:
        self._options = options
        self._max_bytes = max_bytes
        self._context = options.ssl_context()
        # Keyed by the checked addresses too: a new DNS answer never reuses an old pool.
        self._pools: dict[tuple[str, str, int, tuple[str, ...]], HTTPConnectionPool] = {}
        self._pools_lock = threading.Lock()
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(
        self, request: PreparedRequest, verify: Any, proxies: Any = None, cert: Any = None
    ) -> HTTPConnectionPool:
        allow = self._options.allow_private_hosts
        scheme, host, port = _parse(str(request.url), allow_private=allow)
        checked = _resolve(host, port, allow_private=allow, timeout=self._options.timeout)
        key = (scheme, host, port, tuple(a.ip for a in checked))
        with self._pools_lock:
            pool = self._pools.get(key)
            if pool is None:  # sessions are short-lived: a handful of pools at most
                pool = self._pools[key] = self._new_pool(scheme, host, port, checked)
        return pool

    def _new_pool(
        self, scheme: str, host: str, port: int, checked: tuple[GuardedAddress, ...]
    ) -> HTTPConnectionPool:
        if scheme == "https":
            return _PinnedHTTPSPool(
                host, port, cert_reqs="CERT_REQUIRED", ssl_context=self._context,
                server_hostname=host, checked=checked,
            )  # fmt: skip
        return _PinnedHTTPPool(host, port, checked=checked)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # The pool fixes verification (CERT_REQUIRED, the options' context). requests would
        # otherwise honour verify=False, or load its CA bundle into our shared context.
        return None

    def request_url(self, request: PreparedRequest, proxies: Any) -> str:
        return request.path_url  # never the absolute form a proxy would get

    def send(
        self, request: PreparedRequest, stream: bool = False, timeout: Any = None,
        verify: Any = True, cert: Any = None, proxies: Any = None,
    ) -> requests.Response:  # fmt: skip
        response = super().send(request, stream=True, timeout=self._timeouts(timeout))
        try:
            _read_capped(response, self._max_bytes)
        except BaseException:
            response.close()
            raise
        return response

    def _timeouts(self, timeout: Any) -> tuple[float, float]:
        """(connect, read): the caller's values where given, the options' timeout otherwise."""
        if isinstance(timeout, Timeout):
            timeout = (timeout.connect_timeout, timeout.read_timeout)
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        default = self._options.timeout
        connect = float(connect) if isinstance(connect, (int, float)) else default
        return connect, float(read) if isinstance(read, (int, float)) else default

    def close(self) -> None:
        with self._pools_lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
        super().close()


def _read_capped(response: requests.Response, limit: int) -> None:
    """Read the whole body into ``response`` (as ``stream=False`` would), refusing more than
    ``limit`` bytes: a declared Content-Length first, then while reading."""
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise HTTPGuardError(codes.RESPONSE_TOO_LARGE, f"Content-Length {declared}")
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise HTTPGuardError(codes.RESPONSE_TOO_LARGE, f"more than {limit} bytes")
    response._content = bytes(body)


# -- sessions ----------------------------------------------------------------------------------


def _install(session: requests.Session, options: TransportOptions, max_bytes: int) -> None:
    session.trust_env = False
    session.max_redirects = MAX_REDIRECTS
    session.adapters.clear()  # requests' default adapters: unguarded
    session.mount("", _GuardedAdapter(options, max_bytes))  # every URL, whatever its scheme


def _send(
    session: requests.Session,
    options: TransportOptions,
    send: Callable[..., requests.Response],
    request: PreparedRequest,
    **kwargs: Any,
) -> requests.Response:
    """``Session.send`` with our redirect policy instead of requests' own."""
    follow = kwargs.pop("allow_redirects", True)
    response = send(request, allow_redirects=False, **kwargs)
    history: list[requests.Response] = []
    while follow:
        location = session.get_redirect_target(response)
        if location is None:
            break
        previous = response.request
        target = check_redirect(
            str(previous.method), str(response.url), location, hop=len(history) + 1,
            allow_private_hosts=options.allow_private_hosts,
        )  # fmt: skip
        history.append(response)
        response.close()
        hop = previous.copy()
        hop.url = target
        if urlsplit(target).hostname != urlsplit(str(previous.url)).hostname:
            hop.headers.pop("Authorization", None)  # a bearer token stays with its host
        hop.headers.pop("Cookie", None)
        response = send(hop, allow_redirects=False, **kwargs)
    response.history = history
    return response


class GuardedSession(requests.Session):
    """A :class:`requests.Session` that obeys the module's rules (see the module docstring)."""

    def __init__(
        self, options: TransportOptions | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> None:
        super().__init__()
        self.guard_options = options or TransportOptions()
        _install(self, self.guard_options, max_bytes)

    def send(self, request: PreparedRequest, **kwargs: Any) -> requests.Response:
        return _send(self, self.guard_options, super().send, request, **kwargs)


class GuardedOAuth2Session(OAuth2Session):
    """Authlib's requests ``OAuth2Session`` with the same guard. Takes Authlib's arguments plus
    ``transport_options`` and ``max_response_bytes``, so it can be Authlib's ``client_cls``
    (the options then travel in ``client_kwargs``)."""

    def __init__(
        self,
        *args: Any,
        transport_options: TransportOptions | None = None,
        max_response_bytes: int = DEFAULT_MAX_BYTES,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.guard_options = transport_options or TransportOptions()
        _install(self, self.guard_options, max_response_bytes)

    def send(self, request: PreparedRequest, **kwargs: Any) -> requests.Response:
        return _send(self, self.guard_options, super().send, request, **kwargs)


def guarded_session(
    options: TransportOptions, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> GuardedSession:
    """A new guarded session (use it as a context manager: ``with guarded_session(o) as s``)."""
    return GuardedSession(options, max_bytes=max_bytes)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_REDIRECTS",
    "REFUSAL_CODES",
    "GuardedOAuth2Session",
    "GuardedSession",
    "HTTPGuardError",
    "check_redirect",
    "check_url",
    "guarded_session",
]
