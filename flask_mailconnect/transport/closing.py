"""Closing a TLS connection the way TLS says: close_notify before the socket goes.

A TLS socket closed without close_notify looks to the server like a cut connection (Exim and
Courier log "The TLS connection was non-properly terminated", OpenSSL servers "unexpected eof
while reading"). :func:`close_notify` sends ours and waits briefly for the server's, under a
short timeout of its own: a server that never answers costs at most that, never a hang.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

#: Seconds to wait for the server's close_notify (it normally answers at once, or has closed).
CLOSE_NOTIFY_TIMEOUT = 1.0


def close_notify(sock: socket.socket | None, timeout: float = CLOSE_NOTIFY_TIMEOUT) -> None:
    """Shut TLS down on ``sock`` (a no-op for plain sockets); never raises. The caller still
    closes the socket: after this it is a plain TCP socket."""
    if not isinstance(sock, ssl.SSLSocket):
        return
    with contextlib.suppress(OSError, ValueError):
        current = sock.gettimeout()
        sock.settimeout(timeout if current is None else min(current, timeout))
        sock.unwrap()  # the server may have closed already: EOF and resets are fine here


__all__ = ["CLOSE_NOTIFY_TIMEOUT", "close_notify"]
