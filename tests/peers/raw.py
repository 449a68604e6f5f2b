"""Bare TCP peers: a port that accepts and never answers, and a TLS listener with any cert."""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading


class SilentServer:
    """Listens but never accepts: the kernel completes the TCP handshake, then nothing comes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.host = "127.0.0.1"
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


class TlsListener:
    """Accepts, does a TLS handshake with ``context``, sends ``greeting``, then closes."""

    def __init__(self, context: ssl.SSLContext, greeting: bytes = b"* OK ready\r\n") -> None:
        self.context = context
        self.greeting = greeting
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.host = "127.0.0.1"
        self.port: int = self.sock.getsockname()[1]
        self.handshakes_failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tls-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not selector.select(timeout=0.05):
                    continue
                conn, _addr = self.sock.accept()
                with conn:
                    conn.settimeout(2.0)
                    try:
                        with self.context.wrap_socket(conn, server_side=True) as tls:
                            tls.sendall(self.greeting)
                    except (OSError, ssl.SSLError):
                        self.handshakes_failed += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self.sock.close()
