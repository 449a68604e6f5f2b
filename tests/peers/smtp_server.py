"""aiosmtpd servers with AUTH PLAIN/LOGIN (and XOAUTH2), STARTTLS or implicit TLS, on 127.0.0.1.

Each server records what it saw: connections, AUTH attempts (mechanism and login, never the
password) and delivered messages, so tests can assert on the server's side too.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, syntax

from . import MAILBOX_PASSWORD, MAILBOX_USER, free_port

Mode = Literal["starttls", "ssl", "plain"]


@dataclass
class DeliveredMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None


@dataclass
class SmtpPeer:
    """A running aiosmtpd: where it listens, who may log in, and what it has seen."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    ca_file: str
    mode: Mode
    messages: list[DeliveredMessage] = field(default_factory=list)
    auth_attempts: list[tuple[str, str]] = field(default_factory=list)  # (mechanism, login)
    connections: int = 0
    oauth_tokens: set[str] = field(default_factory=set)  # bearer tokens XOAUTH2 accepts
    # Checks other XOAUTH2 tokens against the OAuth provider (tests/peers/oauth.py).
    introspection: Any = None
    # Logins answered like Microsoft 365 with SMTP AUTH turned off for the mailbox.
    auth_disabled_user: str = "disabled@example.test"
    # Set to e.g. "454 4.7.0 TLS not available" to refuse STARTTLS (cleared by reset()).
    starttls_reply: str | None = None
    auth_commands: int = 0  # AUTH commands received, accepted or not (even before TLS)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def security(self) -> str:
        return "none" if self.mode == "plain" else self.mode

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.auth_attempts.clear()
            self.connections = 0
            self.auth_commands = 0
            self.starttls_reply = None


class _Handler:
    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        login = (
            session.auth_data.login.decode()
            if isinstance(session.auth_data, LoginPassword)
            else None
        )
        if isinstance(session.auth_data, str):
            login = session.auth_data
        with self.peer.lock:
            self.peer.messages.append(
                DeliveredMessage(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or b""),
                    login=login,
                )
            )
        return "250 Message accepted for delivery"

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        """XOAUTH2 (Google/Microsoft SASL): ``user=...^Aauth=Bearer token^A^A``.

        The token is valid when it is in ``peer.oauth_tokens`` or, with ``peer.introspection``
        set, when the OAuth provider's introspection endpoint calls it active for this user.
        A rejected token is answered like Gmail: ``334`` with a base64 JSON error, then, after
        the client's empty line, ``535 5.7.8``.
        """
        if len(args) > 1:
            blob = args[1]
        else:
            blob_bytes = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(blob_bytes, bytes):
                return AuthResult(success=False, handled=True)  # "*": aiosmtpd answered 501
            blob = base64.b64encode(blob_bytes).decode()
        try:
            fields = base64.b64decode(blob, validate=True).decode().split("\x01")
            user = fields[0].removeprefix("user=")
            token = fields[1].removeprefix("auth=Bearer ")
        except (ValueError, IndexError, UnicodeError):
            return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot Decode")
        with self.peer.lock:
            self.peer.auth_attempts.append(("XOAUTH2", user))
            ok = user == self.peer.user and token in self.peer.oauth_tokens
            introspection = self.peer.introspection
        if not ok and introspection is not None:
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(None, introspection.check, token)
            username = str(answer.get("username") or answer.get("email") or "")
            ok = answer.get("active") is True and username.lower() == user.lower()
        if ok and user == self.peer.auth_disabled_user:
            return AuthResult(success=False, handled=False, message=_AUTH_DISABLED_REPLY)
        if ok:
            return AuthResult(success=True, auth_data=user, handled=False)
        # Gmail's error challenge; the client must answer with an empty line.
        await server.challenge_auth(_XOAUTH2_ERROR)
        return AuthResult(success=False, handled=False, message=_XOAUTH2_REJECTED)


_XOAUTH2_ERROR = json.dumps(
    {"status": "400", "schemes": "Bearer", "scope": "https://mail.google.com/"},
    separators=(",", ":"),
)
_XOAUTH2_REJECTED = (
    "535 5.7.8 Username and Password not accepted. For more information, go to "
    "https://support.google.com/mail/?p=BadCredentials"
)
_AUTH_DISABLED_REPLY = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."
)


class _QuietSession(Session):
    """aiosmtpd 1.4 sets the deprecated ``login_data`` on every successful AUTH, and its
    DeprecationWarning becomes an error under ``filterwarnings = error``; store it silently."""

    @property  # type: ignore[override]
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _PeerSMTP(SMTP):
    # XOAUTH2 lines carry a long base64 token; aiosmtpd's 512-byte default would cut them.
    line_length_limit = 8192
    command_size_limit = 8192
    command_size_limits: dict[str, int] = collections.defaultdict(lambda: 8192)

    def __init__(self, *args: Any, peer: SmtpPeer, **kwargs: Any) -> None:
        self._peer = peer
        super().__init__(*args, **kwargs)

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    @syntax("STARTTLS", when="tls_context")
    async def smtp_STARTTLS(self, arg: str) -> None:  # noqa: N802
        reply = self._peer.starttls_reply
        if reply is not None:
            await self.push(reply)
            return
        await super().smtp_STARTTLS(arg)

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:  # noqa: N802
        with self._peer.lock:
            self._peer.auth_commands += 1
        await super().smtp_AUTH(arg)

    def connection_made(self, transport: Any) -> None:
        with self._peer.lock:
            self._peer.connections += 1
        super().connection_made(transport)


class _PeerController(Controller):
    def __init__(self, peer: SmtpPeer, *, require_auth: bool, **kwargs: Any) -> None:
        self._peer = peer
        self._require_auth = require_auth
        super().__init__(_Handler(peer), **kwargs)

    def factory(self) -> SMTP:
        server = _PeerSMTP(self.handler, peer=self._peer, **self.SMTP_kwargs)
        # aiosmtpd cannot see implicit TLS, so it must not demand TLS for AUTH there; asking for
        # auth_required at construction would then warn (an error under filterwarnings=error).
        server._auth_required = self._require_auth
        return server


def _authenticator(peer: SmtpPeer):
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        # handled=False on failure: aiosmtpd then answers 535 itself (handled=True, the default,
        # means "I already replied" and the client waits forever).
        login = auth_data.login.decode("utf-8", "replace")
        with peer.lock:
            peer.auth_attempts.append((mechanism, login))
        if login == peer.auth_disabled_user:
            return AuthResult(success=False, handled=False, message=_AUTH_DISABLED_REPLY)
        ok = login == peer.user and auth_data.password.decode("utf-8", "replace") == peer.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    return check


def start_smtp(
    mode: Mode,
    *,
    ca_file: str,
    context: ssl.SSLContext | None,
    user: str = MAILBOX_USER,
    password: str = MAILBOX_PASSWORD,
    introspection: Any = None,
) -> tuple[SmtpPeer, Controller]:
    """Start one aiosmtpd on a free 127.0.0.1 port. ``context``: the server's TLS context;
    ``introspection``: a tests.peers.oauth.Introspection that XOAUTH2 tokens are checked with."""
    peer = SmtpPeer("127.0.0.1", free_port(), user, password, ca_file, mode)
    peer.introspection = introspection
    kwargs: dict[str, Any] = {
        "hostname": peer.host,
        "port": peer.port,
        "authenticator": _authenticator(peer),
        "auth_exclude_mechanism": [],
        "ready_timeout": 5.0,
    }
    if mode == "starttls":
        kwargs.update(tls_context=context, require_starttls=True, auth_require_tls=True)
    elif mode == "ssl":
        kwargs.update(ssl_context=context, auth_require_tls=False)
    else:
        kwargs.update(auth_require_tls=False)
    controller = _PeerController(peer, require_auth=mode != "plain", **kwargs)
    controller.start()
    peer.reset()  # the controller's own readiness probe counted as a connection
    return peer, controller
