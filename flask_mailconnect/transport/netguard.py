"""The one door for outbound connections to user-supplied hosts.

A host name typed by a user must not become a way to reach the machine we run on or its private
network (SSRF). So: resolve once, refuse every non-public address (also when it hides inside an
IPv6 form), then connect to exactly the address that was checked, so a DNS answer that changes
between check and connect (rebinding) cannot redirect us. Ports come from an allowlist.

Also here, because both SMTP and IMAP need them and they are about sockets, not protocols: opening
a verified implicit-TLS connection, waiting for a plaintext greeting (and telling a silent
implicit-TLS port from a dead one), and mapping socket / TLS exceptions to stable error codes.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from typing import NamedTuple

from .. import codes as errors
from ..codes import message_for
from ..exceptions import ConnectionFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")

# OpenSSL reasons seen when the peer answers a ClientHello with plaintext ("220 ...", "* OK"):
# the port speaks plaintext, so "SSL/TLS" was the wrong choice for it.
_PLAINTEXT_PEER_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
        "PACKET_LENGTH_TOO_LONG",
        "RECORD_LAYER_FAILURE",
        "UNEXPECTED_RECORD",
    }
)


class GuardedAddress(NamedTuple):
    host: str
    ip: str
    port: int
    family: int


def failure(code: str, detail: str = "") -> ConnectionFailed:
    """A ConnectionFailed with the generic wording; callers re-word it for their provider."""
    return ConnectionFailed(code, message_for(code), detail=detail)


def check_port(port: int, allowed: tuple[int, ...] | None, protocol: str) -> None:
    """Refuse ports outside the allowlist (``None`` allows any valid port)."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise failure(errors.PORT_NOT_ALLOWED, f"{protocol} port out of range")
    if allowed is not None and port not in allowed:
        raise failure(errors.PORT_NOT_ALLOWED, f"{protocol} port {port}")


def _ipv4_is_public(ip: ipaddress.IPv4Address) -> bool:
    # is_global already excludes most of these; the explicit list documents intent and guards
    # against differences between Python versions' ipaddress tables.
    return (
        not (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_unspecified
            or ip.is_reserved
            or ip in _CGNAT
            or ip == _BROADCAST
        )
        and ip.is_global
    )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_ip(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses, IPv4 hidden in IPv6 included."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_is_public(ip)
    # Teredo tunnels to an arbitrary IPv4 host through a relay, and no mail server lives there.
    if ip in _TEREDO or ip in _NAT64_LOCAL:
        return False
    if ip in _IPV4_COMPATIBLE:
        return False  # deprecated form (RFC 4291); "::" and "::1" live here too
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        if not _ipv4_is_public(embedded):
            return False
        if ip.ipv4_mapped is not None or ip in _NAT64:
            # Only as public as the IPv4 address they carry (NAT64 sits inside reserved ::/8).
            return True
    return (
        not (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_site_local
            or ip.is_multicast
            or ip.is_unspecified
            or ip.is_reserved
        )
        and ip.is_global
    )


@functools.lru_cache(maxsize=256)
def _parse_literal(host: str) -> IPAddress | None:
    # Cached: every connection parses its host (ipaddress is slow, and a failed parse raises);
    # the result is immutable and depends on the text alone, so it can be shared.
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


class _Lookup:
    """One getaddrinfo call handed to a resolver thread, and its outcome."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.done = threading.Event()
        self.result: list[tuple] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # handed back to the caller
            self.error = exc


class _ResolverThread:
    """A daemon thread that runs lookups one at a time and, between them, waits idle to be
    reused: starting a thread for every connection cost each sync a thread start. A lookup is
    only ever given to an idle thread (never queued behind one that is still resolving), so a
    hung lookup delays nobody else, exactly as with a thread per lookup."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Lookup] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="mailconnect-resolve", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with _idle_lock:
                    if self in _idle:  # nobody took it meanwhile: end the thread
                        _idle.remove(self)
                        return
                continue  # taken just now: its lookup is on the way
            job.run()
            with _idle_lock:
                keep = len(_idle) < _MAX_IDLE
                if keep:
                    _idle.append(self)
            # Idle again before the caller wakes: its next lookup finds this thread waiting.
            job.done.set()
            if not keep:
                return


#: How long an idle resolver thread waits for another lookup, and how many may wait.
_IDLE_SECONDS = 60.0
_MAX_IDLE = 4
_idle: list[_ResolverThread] = []
_idle_lock = threading.Lock()


def _forget_idle_threads() -> None:
    # A forked child has none of its parent's threads: a lookup handed to one would never run.
    global _idle_lock
    _idle.clear()
    _idle_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_idle_threads)


def _getaddrinfo_with_timeout(host: str, port: int, timeout: float) -> list[tuple]:
    """getaddrinfo has no timeout of its own: run it in a resolver thread (an idle one, else
    a new one) and stop waiting after ``timeout``."""
    lookup = _Lookup(host, port)
    with _idle_lock:
        worker = _idle.pop() if _idle else None
    (worker or _ResolverThread()).jobs.put(lookup)
    if not lookup.done.wait(timeout):
        raise failure(errors.TIMEOUT, "dns timeout")
    exc = lookup.error
    if exc is not None:
        if isinstance(exc, (socket.gaierror, UnicodeError)):
            raise failure(errors.HOST_NOT_FOUND, type(exc).__name__) from None
        raise failure(errors.NETWORK_ERROR, type(exc).__name__) from None
    return lookup.result  # type: ignore[return-value]


def resolve_guarded(
    host: str, port: int, *, allow_private: bool, timeout: float
) -> list[GuardedAddress]:
    """Resolve ``host`` once and return its addresses, refusing non-public ones.

    If any address of the host is non-public the whole host is refused: a public mail server has
    no reason to also answer on a private address, and picking the "good" one would let an
    attacker keep the bad one in play.
    """
    host = host.strip().rstrip(".") if host else host
    if not host:
        raise failure(errors.HOST_NOT_FOUND, "empty host")
    literal = _parse_literal(host)
    if literal is not None:
        if not allow_private and not is_public_ip(literal):
            raise failure(errors.BLOCKED_ADDRESS, "ip literal")
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return [GuardedAddress(host, str(literal), port, family)]

    infos = _getaddrinfo_with_timeout(host, port, timeout)
    addresses: list[GuardedAddress] = []
    seen: set[str] = set()
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip_text = str(sockaddr[0])
        ip = ipaddress.ip_address(ip_text)
        if not allow_private and not is_public_ip(ip):
            raise failure(errors.BLOCKED_ADDRESS, "resolved address")
        if ip_text not in seen:
            seen.add(ip_text)
            addresses.append(GuardedAddress(host, ip_text, port, family))
    if not addresses:
        raise failure(errors.HOST_NOT_FOUND, "no address")
    return addresses


def socket_error_code(exc: BaseException) -> str:
    """Stable code for a socket-level failure (looks through wrapping exceptions)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionFailed):
            return current.code
        if isinstance(current, socket.gaierror):
            return errors.HOST_NOT_FOUND
        if isinstance(current, (TimeoutError, socket.timeout)):
            return errors.TIMEOUT
        if isinstance(current, ConnectionRefusedError):
            return errors.REFUSED
        if isinstance(current, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return errors.CONNECTION_LOST
        current = current.__cause__ or current.__context__
    return errors.NETWORK_ERROR


def tls_error_code(exc: BaseException, *, implicit: bool) -> str:
    """Stable code for a failed TLS handshake.

    ``implicit`` is True when the user chose SSL/TLS from the first byte: a plaintext answer then
    means the port expects STARTTLS or nothing, i.e. the wrong security for this port.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        return errors.CERTIFICATE_INVALID
    if isinstance(exc, ssl.SSLError):
        if implicit and getattr(exc, "reason", None) in _PLAINTEXT_PEER_REASONS:
            return errors.WRONG_SECURITY_FOR_PORT
        if isinstance(exc, ssl.SSLEOFError):
            return errors.CONNECTION_LOST
        return errors.TLS_FAILED
    return socket_error_code(exc)


def connect_first(
    addresses: Sequence[GuardedAddress],
    *,
    deadline: float | None,
    socket_options: Sequence[tuple[int, int, int | bytes]] = (),
) -> socket.socket:
    """A socket connected to the first reachable of ``addresses`` (already checked: no lookup
    here) before ``deadline`` (monotonic; ``None``: no limit). Raises the last ``OSError``, or
    ``TimeoutError`` when the deadline passed first. Sockets and HTTP both connect through it."""
    last: OSError | None = None
    for address in addresses:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        try:
            for option in socket_options:
                sock.setsockopt(*option)
            sock.settimeout(remaining)
            sock.connect((address.ip, address.port))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise last or TimeoutError("no address answered before the deadline")


def connect_guarded(host: str, port: int, *, allow_private: bool, timeout: float) -> socket.socket:
    """Connect to the first reachable checked address of ``host``; never resolves twice."""
    deadline = time.monotonic() + timeout
    addresses = resolve_guarded(host, port, allow_private=allow_private, timeout=timeout)
    try:
        sock = connect_first(addresses, deadline=deadline)
    except OSError as exc:
        raise failure(socket_error_code(exc), type(exc).__name__) from None
    sock.settimeout(timeout)
    return sock


def connect_tls(
    host: str, port: int, *, allow_private: bool, timeout: float, context: ssl.SSLContext
) -> ssl.SSLSocket:
    """Implicit TLS: guarded TCP connection, then a handshake verified against ``host``."""
    # connect_guarded leaves the socket's timeout at ``timeout``, for the handshake too.
    sock = connect_guarded(host, port, allow_private=allow_private, timeout=timeout)
    try:
        # wrap_socket closes the socket itself when the handshake fails.
        return context.wrap_socket(sock, server_hostname=host)
    except (OSError, ValueError) as exc:
        sock.close()
        raise failure(tls_error_code(exc, implicit=True), type(exc).__name__) from None


def _speaks_tls(
    peer: tuple, family: int, host: str, context: ssl.SSLContext, timeout: float
) -> bool:
    """Does the checked ``peer`` answer a TLS handshake? (Certificate problems count as yes.)"""
    if timeout <= 0:
        return False
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(peer)
        with context.wrap_socket(sock, server_hostname=host):
            return True
    except ssl.SSLCertVerificationError:
        return True
    except (OSError, ValueError):
        return False
    finally:
        sock.close()


def connect_expecting_greeting(
    host: str, port: int, *, allow_private: bool, timeout: float, context: ssl.SSLContext
) -> socket.socket:
    """Plaintext connection whose server has started to talk (greeting waiting, unread).

    SMTP and IMAP servers speak first. An implicit-TLS port stays silent instead, waiting for our
    ClientHello, which looks exactly like a dead server. So wait for the greeting for half the
    timeout; if none came, try a TLS handshake with the same checked address for the rest: if it
    works, the user picked STARTTLS/none for an SSL/TLS port, otherwise it is a plain timeout.
    """
    started = time.monotonic()
    sock = connect_guarded(host, port, allow_private=allow_private, timeout=timeout)
    try:
        sock.settimeout(max(timeout / 2 - (time.monotonic() - started), 0.05))
        try:
            # MSG_PEEK leaves the greeting in the buffer for smtplib / imaplib to read.
            first = sock.recv(1, socket.MSG_PEEK)
        except TimeoutError:
            peer = sock.getpeername()
            family = sock.family
            sock.close()
            remaining = timeout - (time.monotonic() - started)
            if _speaks_tls(peer, family, host, context, remaining):
                code = errors.WRONG_SECURITY_FOR_PORT
                raise failure(code, "no greeting; port speaks TLS") from None
            raise failure(errors.TIMEOUT, "no greeting") from None
        if not first:
            raise failure(errors.CONNECTION_LOST, "closed before greeting")
    except ConnectionFailed:
        sock.close()
        raise
    except OSError as exc:
        sock.close()
        raise failure(socket_error_code(exc), type(exc).__name__) from None
    sock.settimeout(timeout)
    return sock
