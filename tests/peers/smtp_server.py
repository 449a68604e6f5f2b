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
from aiosmtpd.smtp import (
    DATA_SIZE_DEFAULT,
    SMTP,
    AuthResult,
    Envelope,
    LoginPassword,
    Session,
    syntax,
)

from . import MAILBOX_PASSWORD, MAILBOX_USER, free_port

Mode = Literal["starttls", "ssl", "plain"]


@dataclass
class DeliveredMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None


@dataclass
class Fault:
    """One injected misbehaviour at a stage of the SMTP conversation (see SmtpPeer.inject).

    ``reply``: answer this instead (a "421 ..." also closes the connection); ``drop``: close the
    connection without a word; ``delay``: wait this long first (then behave normally unless
    ``reply``/``drop``); ``times``: how many commands it hits (``None``: every one).
    At ``END`` (the message's data is in): ``deliver`` records the message as delivered first,
    as a server that queued it and then lost the connection would have.
    """

    reply: str | None = None
    drop: bool = False
    delay: float = 0.0
    times: int | None = 1
    deliver: bool = False


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
    connections: int = 0  # connection_made calls: a STARTTLS session counts twice
    oauth_tokens: set[str] = field(default_factory=set)  # bearer tokens XOAUTH2 accepts
    # Checks other XOAUTH2 tokens against the OAuth provider (tests/peers/oauth.py).
    introspection: Any = None
    # Logins answered like Microsoft 365 with SMTP AUTH turned off for the mailbox.
    auth_disabled_user: str = "disabled@example.test"
    # Set to e.g. "454 4.7.0 TLS not available" to refuse STARTTLS (cleared by reset()).
    starttls_reply: str | None = None
    # Offer only these AUTH mechanisms to new connections, e.g. ("LOGIN",); None: all of
    # AUTH_MECHANISMS (cleared by reset()).
    auth_mechanisms: tuple[str, ...] | None = None
    auth_commands: int = 0  # AUTH commands received, accepted or not (even before TLS)
    # Fault injection (cleared by reset()): stage ("AUTH", "MAIL", "RCPT", "DATA" at the DATA
    # command, "END" once the data is in) -> Fault; see inject().
    faults: dict[str, Fault] = field(default_factory=dict)
    # Close each connection once it has delivered this many messages: the next MAIL gets
    # close_reply ("421 ..."), or nothing at all when close_reply is None.
    close_after: int | None = None
    close_reply: str | None = "421 4.7.0 Too many messages on this connection, closing"
    # Knobs for new connections (cleared by reset()): advertise SMTPUTF8 (RFC 6531) and
    # accept non-ASCII addresses; the SIZE advertised and enforced (None: no SIZE at all).
    smtputf8: bool = False
    size_limit: int | None = DATA_SIZE_DEFAULT
    mail_commands: list[str] = field(default_factory=list)  # MAIL FROM arguments, as sent
    data_commands: int = 0  # DATA commands received
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def inject(self, stage: str, **fault: Any) -> None:
        """E.g. ``inject("MAIL", reply="421 4.3.2 Shutting down")``, ``inject("END",
        drop=True, deliver=True)``, ``inject("MAIL", delay=3)``."""
        with self.lock:
            self.faults[stage.upper()] = Fault(**fault)

    def take_fault(self, stage: str) -> Fault | None:
        with self.lock:
            fault = self.faults.get(stage)
            if fault is None:
                return None
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[stage]
            return fault

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
            self.auth_mechanisms = None
            self.faults.clear()
            self.close_after = None
            self.close_reply = "421 4.7.0 Too many messages on this connection, closing"
            self.smtputf8 = False
            self.size_limit = DATA_SIZE_DEFAULT
            self.mail_commands.clear()
            self.data_commands = 0


#: What the peers offer after EHLO: aiosmtpd's PLAIN and LOGIN, and PeerHandler's XOAUTH2.
AUTH_MECHANISMS = ("LOGIN", "PLAIN", "XOAUTH2")


class PeerHandler:
    """The aiosmtpd handler: records delivered messages, checks XOAUTH2 tokens, applies
    ``END`` faults. Subclass it to change how a stage answers (then ``start_smtp(...,
    handler_class=...)``)."""

    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        fault = self.peer.take_fault("END")
        if fault is not None:
            if fault.deliver:  # queued first: the late or lost answer changes nothing
                self._deliver(session, envelope, server)
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if not fault.deliver and not (fault.reply or fault.drop):
                self._deliver(session, envelope, server)
            if fault.drop:
                _drop(server)
                return "250 Message accepted for delivery"  # never reaches the client
            return fault.reply or "250 Message accepted for delivery"
        self._deliver(session, envelope, server)
        return "250 Message accepted for delivery"

    def _deliver(self, session: Session, envelope: Envelope, server: SMTP) -> None:
        if isinstance(server, PeerSMTP):
            server.delivered_here += 1
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


def _drop(server: SMTP) -> None:
    if server.transport is not None:
        server.transport.close()


class PeerSMTP(SMTP):
    """One connection's aiosmtpd SMTP: counts connections and AUTH commands, applies the
    peer's faults and STARTTLS refusal. Subclass it to watch connections (then
    ``start_smtp(..., smtp_class=...)``)."""

    # XOAUTH2 lines carry a long base64 token; aiosmtpd's 512-byte default would cut them.
    line_length_limit = 8192
    command_size_limit = 8192
    command_size_limits: dict[str, int] = collections.defaultdict(lambda: 8192)

    def __init__(self, *args: Any, peer: SmtpPeer, **kwargs: Any) -> None:
        self._peer = peer
        self.delivered_here = 0  # messages delivered on this connection
        super().__init__(*args, **kwargs)

    async def _fault(self, stage: str) -> bool:
        """Apply an injected fault; True when it answered (or dropped) in the command's place."""
        fault = self._peer.take_fault(stage)
        if fault is None:
            return False
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            _drop(self)
            return True
        if fault.reply:
            await self.push(fault.reply)
            if fault.reply.startswith("421"):
                _drop(self)
            return True
        return False

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:  # noqa: N802
        limit = self._peer.close_after
        if limit is not None and self.delivered_here >= limit:
            if self._peer.close_reply:
                await self.push(self._peer.close_reply)
            _drop(self)
            return
        with self._peer.lock:
            self._peer.mail_commands.append(arg or "")
        if await self._fault("MAIL"):
            return
        await super().smtp_MAIL(arg)

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:  # noqa: N802
        if await self._fault("RCPT"):
            return
        await super().smtp_RCPT(arg)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        with self._peer.lock:
            self._peer.data_commands += 1
        if await self._fault("DATA"):
            return
        await super().smtp_DATA(arg)

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
        if await self._fault("AUTH"):
            return
        await super().smtp_AUTH(arg)

    def connection_made(self, transport: Any) -> None:
        with self._peer.lock:
            self._peer.connections += 1
        super().connection_made(transport)


class _PeerController(Controller):
    def __init__(
        self,
        peer: SmtpPeer,
        *,
        require_auth: bool,
        handler_class: type[PeerHandler] = PeerHandler,
        smtp_class: type[PeerSMTP] = PeerSMTP,
        **kwargs: Any,
    ) -> None:
        self._peer = peer
        self._require_auth = require_auth
        self._smtp_class = smtp_class
        super().__init__(handler_class(peer), **kwargs)

    def factory(self) -> SMTP:
        kwargs = dict(self.SMTP_kwargs)
        offered = self._peer.auth_mechanisms
        if offered is not None:
            kwargs["auth_exclude_mechanism"] = [m for m in AUTH_MECHANISMS if m not in offered]
        kwargs["enable_SMTPUTF8"] = self._peer.smtputf8
        kwargs["data_size_limit"] = self._peer.size_limit
        server = self._smtp_class(self.handler, peer=self._peer, **kwargs)
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
    handler_class: type[PeerHandler] = PeerHandler,
    smtp_class: type[PeerSMTP] = PeerSMTP,
) -> tuple[SmtpPeer, Controller]:
    """Start one aiosmtpd on a free 127.0.0.1 port. ``context``: the server's TLS context;
    ``introspection``: a tests.peers.oauth.Introspection that XOAUTH2 tokens are checked with;
    ``handler_class`` / ``smtp_class``: subclasses of PeerHandler / PeerSMTP to use instead."""
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
    controller = _PeerController(
        peer,
        require_auth=mode != "plain",
        handler_class=handler_class,
        smtp_class=smtp_class,
        **kwargs,
    )
    controller.start()
    peer.reset()  # the controller's own readiness probe counted as a connection
    return peer, controller
