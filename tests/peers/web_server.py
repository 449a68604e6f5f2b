"""A small HTTPS server on 127.0.0.1 with the tests' own CA, for detection's web sources:
ISP-database files, ``autoconfig`` / ``.well-known`` files and Autodiscover answers, plus the
misbehaving kinds (malformed, oversized, redirecting, slow, and dripping: an answer sent a
byte at a time without end, which only the client hanging up stops).

Routes are exact paths (the query string is ignored for matching, kept in ``seen``).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (a slow source).
    delay: float = 0.0
    content_type: str = "application/xml"
    #: Answer only once this is set (or the server closes).
    gate: threading.Event | None = None
    #: Called when the request arrives (in the server's thread).
    on_request: Callable[[], None] | None = None
    #: Seconds between the bytes of an answer that never ends: after the headers (the body
    #: drips), or inside them with ``drip_headers``. It stops when the client hangs up (the
    #: path then goes to ``WebServer.hung_up``), when ``release`` is set (the connection is
    #: then closed), or when the server closes.
    drip: float = 0.0
    drip_headers: bool = False
    release: threading.Event | None = None


class _Handler(BaseHTTPRequestHandler):
    server: WebServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        route = self.server.routes.get(self.path.split("?")[0], Route(404, b"not found"))
        if route.on_request is not None:
            route.on_request()
        while route.gate is not None and not route.gate.is_set():
            if self.server.closing.wait(0.02):
                return
        if route.delay:
            # Wait in small steps so that closing the server does not wait for the delay.
            end = time.monotonic() + route.delay
            while time.monotonic() < end and not self.server.closing.is_set():
                time.sleep(0.02)
        if route.drip:
            self._drip(route)
            return
        self.send_response(route.status)
        self.send_header("Content-Type", route.content_type)
        for name, value in route.headers.items():
            self.send_header(name, value.replace("{base}", self.server.base))
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)
        self.server.answered.append(self.path)

    def _drip(self, route: Route) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: {route.content_type}\r\n"
        self.close_connection = True
        try:
            self.wfile.write((head + ("X-Slow: " if route.drip_headers else "\r\n")).encode())
            self.server.dripping.append(self.path)
            while not self.server.closing.is_set():
                if route.release is not None and route.release.is_set():
                    return
                self.wfile.write(b"a" if route.drip_headers else b" ")
                self.server.closing.wait(route.drip)
        except OSError:  # the client hung up: the second write after it did fails
            self.server.hung_up.append(self.path)


class WebServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.port = int(self.server_address[1])
        self.routes: dict[str, Route] = {}
        #: Paths asked (on arrival) and answered (once the answer was written).
        self.seen: list[str] = []
        self.answered: list[str] = []
        #: Paths whose never-ending answer started, and those whose client hung up on it.
        self.dripping: list[str] = []
        self.hung_up: list[str] = []
        self.closing = threading.Event()

    @property
    def base(self) -> str:
        """``https://localhost:<port>`` (the test certificate's name)."""
        return f"https://localhost:{self.port}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except OSError:
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a slow or big answer is expected here


@contextmanager
def web_server(context: ssl.SSLContext) -> Iterator[WebServer]:
    server = WebServer(context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.closing.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
