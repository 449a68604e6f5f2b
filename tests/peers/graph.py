"""A local Microsoft Graph (``/v1.0/me``, ``/v1.0/me/sendMail``) over real TLS on 127.0.0.1.

Speaks Graph's wire format: ``202`` with an empty body for an accepted MIME send, and error
bodies ``{"error": {"code", "message", "innerError"}}`` (``InvalidAuthenticationToken`` 401,
``ErrorAccessDenied`` 403, throttling 429 / 503 with ``Retry-After``). Bearer tokens are checked
against the local OAuth provider; a Microsoft token must be for Graph (its audience), and sending
needs a ``Mail.Send`` scope.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

GRAPH_AUDIENCE = "https://graph.microsoft.com"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class GraphPeer:
    """What the mock Graph saw, and knobs: ``queue_failure(status, code, retry_after)``
    (answered before the message is read), ``queue_after_send(status, code)`` (the message is
    taken, in ``sent``, then this error is answered: a 500 after the POST), and
    ``stall_after_body`` (seconds to wait after taking the message before answering 202: a
    read timeout for a client with a shorter timeout)."""

    host: str = "127.0.0.1"
    port: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)  # {"user", "mime"}
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    failures: deque[tuple[int, str, str | None]] = field(default_factory=deque)
    after_send: deque[tuple[int, str, str | None]] = field(default_factory=deque)
    stall_after_body: float = 0.0
    redirect_to: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/v1.0"

    def queue_failure(self, status: int, code: str, retry_after: str | None = None) -> None:
        with self.lock:
            self.failures.append((status, code, retry_after))

    def queue_after_send(self, status: int, code: str, retry_after: str | None = None) -> None:
        with self.lock:
            self.after_send.append((status, code, retry_after))

    def reset(self) -> None:
        with self.lock:
            self.sent.clear()
            self.requests.clear()
            self.failures.clear()
            self.after_send.clear()
            self.stall_after_body = 0.0
            self.redirect_to = None


_MESSAGES = {
    "InvalidAuthenticationToken": "Access token has expired or is not yet valid.",
    "ErrorAccessDenied": "Access is denied. Check credentials and try again.",
    "ApplicationThrottled": "Application is over its MailboxConcurrency limit.",
    "ServiceNotAvailable": "Service unavailable.",
    "ErrorMimeContentInvalidBase64String": "Invalid base64 string for MIME content.",
    "ErrorInvalidRecipients": "At least one recipient isn't valid.",
}


def _error(status: int, code: str, retry_after: str | None = None) -> Response:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    response = jsonify(
        error={
            "code": code,
            "message": _MESSAGES.get(code, code),
            "innerError": {
                "date": now,
                "request-id": str(uuid.uuid4()),
                "client-request-id": str(uuid.uuid4()),
            },
        }
    )
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


def _app(peer: GraphPeer, oauth: Any) -> Flask:
    app = Flask("mock_graph")

    def caller() -> dict[str, Any] | Response:
        with peer.lock:
            peer.requests.append((request.method, request.path))
            if peer.redirect_to:
                return Response(status=302, headers={"Location": peer.redirect_to})
            failure = peer.failures.popleft() if peer.failures else None
        if failure is not None:
            return _error(*failure)
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return _error(401, "InvalidAuthenticationToken")
        info = oauth.token_info(header.removeprefix("Bearer "))
        if info is None:
            return _error(401, "InvalidAuthenticationToken")
        # Microsoft access tokens are for one resource: an Outlook (SMTP/IMAP) token is
        # refused here with 401 "Invalid audience", as graph.microsoft.com does.
        if info.get("flavour") == "microsoft" and info.get("audience") != GRAPH_AUDIENCE:
            return _error(401, "InvalidAuthenticationToken")
        return info

    @app.get("/v1.0/me")
    def me() -> Any:
        info = caller()
        if isinstance(info, Response):
            return info
        return jsonify(
            {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users/$entity",
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, info["email"])),
                "displayName": info["email"].split("@")[0].title(),
                "mail": info["email"],
                "userPrincipalName": info["email"],
            }
        )

    @app.post("/v1.0/me/sendMail")
    def send_mail() -> Any:
        info = caller()
        if isinstance(info, Response):
            return info
        if not any(s.endswith("Mail.Send") for s in info["scope"].split()):
            return _error(403, "ErrorAccessDenied")
        if not request.content_type or not request.content_type.startswith("text/plain"):
            return _error(400, "ErrorInvalidRecipients")
        try:
            mime = base64.b64decode(request.get_data(), validate=True)
        except (binascii.Error, ValueError):
            return _error(400, "ErrorMimeContentInvalidBase64String")
        with peer.lock:
            peer.sent.append({"user": info["email"], "mime": mime})
            after = peer.after_send.popleft() if peer.after_send else None
            stall = peer.stall_after_body
        if stall:
            time.sleep(stall)
        if after is not None:
            return _error(*after)
        return Response(status=202)

    return app


def start_graph(oauth: Any, context: Any) -> tuple[GraphPeer, BaseWSGIServer, threading.Thread]:
    """Start the mock Graph on a free port with the TLS ``context`` (the test CA's cert)."""
    peer = GraphPeer()
    server = make_server(
        "127.0.0.1",
        0,
        _app(peer, oauth),
        threaded=True,
        ssl_context=context,
        request_handler=_QuietHandler,
    )
    peer.port = int(server.server_port)
    thread = threading.Thread(target=server.serve_forever, name="mock-graph", daemon=True)
    thread.start()
    return peer, server, thread


def stop_graph(server: BaseWSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
