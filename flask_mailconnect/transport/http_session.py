"""The requests and urllib3 machinery behind :mod:`.http`: connections pinned to the checked
address, the guarded adapter (size cap, deadline, timeouts), our redirect policy and the
session classes. The rules themselves are in :mod:`.http`'s docstring.

Imported on a process's first HTTP request (by :func:`.http.guarded_session` and
:func:`.http.oauth2_session_class`), not at start-up: requests, urllib3 and charset_normalizer
cost a host ~30 ms to import, and many processes (a worker that only sends over SMTP) never make
an HTTP request.
"""

from __future__ import annotations

import http.client
import io
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest
from urllib3 import Timeout
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from .. import codes
from . import netguard
from .netguard import GuardedAddress
from .settings import TransportOptions
from .urlguard import DEFAULT_MAX_BYTES, MAX_REDIRECTS, HTTPGuardError, check_redirect
from .urlguard import parse_url as _parse
from .urlguard import resolve_checked as _resolve


class GuardedRequestError(HTTPGuardError, requests.ConnectionError):
    """What a guarded session's request raises when the guard stops it: an
    :class:`HTTPGuardError` (``code``, ``refused``) that is also a
    :class:`requests.ConnectionError`, so ``except requests.RequestException`` catches it."""


@contextmanager
def _as_request_errors() -> Iterator[None]:
    """Guard refusals raised while a session sends leave it as :class:`GuardedRequestError`."""
    try:
        yield
    except HTTPGuardError as exc:
        if isinstance(exc, requests.ConnectionError):
            raise
        raise GuardedRequestError(exc.code, exc.detail, address=exc.address) from exc.__cause__


_CHUNK = 64 * 1024


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


class _DeadlineReader(io.RawIOBase):
    """A response's socket reads, each with the timeout cut to the time left before
    ``deadline``: http.client reads a header line or a body chunk in a loop of reads that each
    restart the socket timeout, which a server dripping a byte a second keeps going for hours."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # a reference to the socket, as http.client's
        self._deadline = deadline
        self._timeout = sock.gettimeout()  # the read timeout urllib3 set for this response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request's deadline passed")
        self._sock.settimeout(left if self._timeout is None else min(left, self._timeout))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _PinnedHTTPConnection(HTTPConnection):
    """Connects to the checked address; ``host`` (so SNI, the Host header and the ssl module's
    hostname check) stays the URL's name. No ``assert_hostname``: urllib3 would then turn off
    ``check_hostname`` on the shared, cached SSL context that SMTP and IMAP use too.
    ``deadline`` (keyword): every read of a response ends by it (:class:`_DeadlineReader`)."""

    def __init__(self, *args: Any, checked: tuple[GuardedAddress, ...] = (), **kw: Any) -> None:
        self._checked = checked
        deadline: float | None = kw.pop("deadline", None)
        super().__init__(*args, **kw)
        if deadline is not None:

            def response(sock: Any, *args: Any, **kw: Any) -> http.client.HTTPResponse:
                found = http.client.HTTPResponse(sock, *args, **kw)
                found.fp.close()  # its own file on the socket, replaced before any read
                found.fp = io.BufferedReader(_DeadlineReader(sock, deadline))
                return found

            self.response_class = response  # type: ignore[assignment]

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

    def __init__(
        self, options: TransportOptions, max_bytes: int, deadline: float | None = None
    ) -> None:
        self._options = options
        self._max_bytes = max_bytes
        self._deadline = deadline
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
        timeout = self._cut(self._options.timeout)
        checked = _resolve(host, port, allow_private=allow, timeout=timeout)
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
                server_hostname=host, checked=checked, deadline=self._deadline,
            )  # fmt: skip
        return _PinnedHTTPPool(host, port, checked=checked, deadline=self._deadline)

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
        if self._past_deadline():  # the first request and each redirect hop
            raise HTTPGuardError(codes.TIMEOUT, "deadline passed")
        try:
            response = super().send(request, stream=True, timeout=self._timeouts(timeout))
        except requests.RequestException as exc:
            self._raise_if_late(exc)
            raise
        try:
            _read_capped(response, self._max_bytes, self._deadline)
        except BaseException as exc:
            response.close()  # the connection too: a dripping server sees it closed
            self._raise_if_late(exc)
            raise
        return response

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _raise_if_late(self, exc: BaseException) -> None:
        """A read or connect that failed because the deadline passed: a ``timeout``."""
        late = isinstance(exc, (requests.RequestException, OSError)) and self._past_deadline()
        if late and not isinstance(exc, HTTPGuardError):
            raise HTTPGuardError(codes.TIMEOUT, "deadline passed") from None

    def _cut(self, seconds: float) -> float:  # never past the deadline
        left = seconds if self._deadline is None else self._deadline - time.monotonic()
        return max(0.001, min(seconds, left))

    def _timeouts(self, timeout: Any) -> tuple[float, float]:
        """(connect, read): the caller's values where given, the options' timeout otherwise."""
        if isinstance(timeout, Timeout):
            timeout = (timeout.connect_timeout, timeout.read_timeout)
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        default = self._options.timeout
        connect = float(connect) if isinstance(connect, (int, float)) else default
        read = float(read) if isinstance(read, (int, float)) else default
        return self._cut(connect), self._cut(read)

    def close(self) -> None:
        with self._pools_lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
        super().close()


def _read_capped(response: requests.Response, limit: int, deadline: float | None = None) -> None:
    """Read the whole body into ``response`` (as ``stream=False`` would), refusing more than
    ``limit`` bytes: a declared Content-Length first, then while reading; and, with a
    ``deadline``, refusing to go on reading past it."""
    declared = response.headers.get("Content-Length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise HTTPGuardError(codes.RESPONSE_TOO_LARGE, f"Content-Length {declared}")
    body = bytearray()
    for chunk in response.iter_content(_CHUNK):
        body += chunk
        if len(body) > limit:
            raise HTTPGuardError(codes.RESPONSE_TOO_LARGE, f"more than {limit} bytes")
        if deadline is not None and time.monotonic() >= deadline:
            raise HTTPGuardError(codes.TIMEOUT, "deadline passed")
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
    with _as_request_errors():
        return _follow(session, options, send, request, **kwargs)


def _follow(
    session: requests.Session,
    options: TransportOptions,
    send: Callable[..., requests.Response],
    request: PreparedRequest,
    **kwargs: Any,
) -> requests.Response:
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
    """A :class:`requests.Session` that obeys the module's rules (see the module docstring);
    ``deadline`` (``time.monotonic()``): none of its requests goes on past it."""

    def __init__(
        self, options: TransportOptions | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES,
        deadline: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.guard_options = options or TransportOptions()
        _install(self, self.guard_options, max_bytes)
        if deadline is not None:  # the same guard, its requests ending by the deadline
            self.mount("", _GuardedAdapter(self.guard_options, max_bytes, deadline))

    def send(self, request: PreparedRequest, **kwargs: Any) -> requests.Response:
        return _send(self, self.guard_options, super().send, request, **kwargs)


def build_oauth2_session_class() -> type[Any]:
    """Authlib's requests ``OAuth2Session`` with the guard (see
    :func:`.http.oauth2_session_class`, which builds it once per process)."""
    from authlib.integrations.requests_client import OAuth2Session

    class GuardedOAuth2Session(OAuth2Session):
        __qualname__ = "GuardedOAuth2Session"  # not build_oauth2_session_class.<locals>...

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

    return GuardedOAuth2Session
