"""SMTP: open an authenticated connection through the network guard, or check that one works.

smtplib does the protocol; a subclass only swaps how the socket is made, so the TCP connection
goes to the address the guard checked while TLS still verifies the user's host name.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import socket
import ssl
import time

from .. import codes as errors
from ..codes import message_for
from ..exceptions import ConnectionFailed
from .closing import close_notify
from .netguard import (
    check_port,
    connect_expecting_greeting,
    connect_tls,
    socket_error_code,
    tls_error_code,
)
from .settings import Protocol, ProtocolResult, ServerSettings, TransportOptions

log = logging.getLogger(__name__)

# Microsoft 365 answers "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is
# disabled for the Tenant/Mailbox": the password may be right, the door is closed.
_MS_SMTP_AUTH_DISABLED = "5.7.139"
# Password mechanisms in order of preference; both are safe because TLS is always on by then.
_PASSWORD_MECHANISMS = ("PLAIN", "LOGIN")


class _GuardedSMTP(smtplib.SMTP):
    """smtplib.SMTP whose socket comes from the guard (plain or implicit TLS)."""

    def __init__(self, options: TransportOptions, *, implicit_tls: bool) -> None:
        self._options = options
        self._implicit_tls = implicit_tls
        self._context = options.ssl_context()
        # A placeholder avoids smtplib's socket.getfqdn() (an unbounded DNS lookup); the real
        # EHLO name is set once we know our local address.
        super().__init__(local_hostname="localhost", timeout=options.timeout)
        self.debuglevel = 0  # debug output would print the base64 AUTH exchange

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        opts = self._options
        # smtplib takes the STARTTLS server_hostname from the constructor's host, which we do
        # not pass (the constructor would connect without the guard).
        self._host = host
        if self._implicit_tls:
            sock: socket.socket = connect_tls(
                host,
                port,
                allow_private=opts.allow_private_hosts,
                timeout=opts.timeout,
                context=self._context,
            )
        else:
            sock = connect_expecting_greeting(
                host,
                port,
                allow_private=opts.allow_private_hosts,
                timeout=opts.timeout,
                context=self._context,
            )
        self.local_hostname = opts.local_hostname or _address_literal(sock)
        return sock

    def close(self) -> None:
        """TLS close_notify first (quit() and every error path end here), then the socket."""
        close_notify(self.sock)
        super().close()


def _address_literal(sock: socket.socket) -> str:
    """RFC 5321 address literal of our end of the connection, for EHLO without DNS."""
    ip = sock.getsockname()[0]
    return f"[IPv6:{ip}]" if sock.family == socket.AF_INET6 else f"[{ip}]"


def _fail(code: str, settings: ServerSettings, detail: str = "") -> ConnectionFailed:
    return ConnectionFailed(code, message_for(code, settings.hints), detail=detail)


def _auth_failure_code(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
    if exc.smtp_code == 535 and _MS_SMTP_AUTH_DISABLED in text:
        return errors.SMTP_AUTH_DISABLED
    if exc.smtp_code in (530, 538):  # "must issue STARTTLS first", "encryption required"
        return errors.TLS_REQUIRED
    if 400 <= exc.smtp_code < 500:
        return errors.NETWORK_ERROR  # temporary authentication failure: try again later
    return errors.AUTH_FAILED


def _upgrade(client: _GuardedSMTP, settings: ServerSettings, context: ssl.SSLContext) -> None:
    """STARTTLS or fail: a server without it never gets our credentials in plaintext."""
    if not client.has_extn("starttls"):
        raise _fail(errors.TLS_UNAVAILABLE, settings, "no STARTTLS in EHLO")
    try:
        client.starttls(context=context)
    except smtplib.SMTPNotSupportedError:
        raise _fail(errors.TLS_UNAVAILABLE, settings, "no STARTTLS in EHLO") from None
    except smtplib.SMTPResponseException as exc:
        # smtplib raises on any reply but 220 (e.g. "454 TLS not available"); the connection is
        # still plaintext, so nothing more is said on it.
        raise _fail(errors.TLS_UNAVAILABLE, settings, f"STARTTLS {exc.smtp_code}") from None
    except ssl.SSLError as exc:
        raise _fail(tls_error_code(exc, implicit=False), settings, type(exc).__name__) from None
    client.ehlo()


def _mechanism(client: _GuardedSMTP) -> str | None:
    advertised = client.esmtp_features.get("auth", "").upper().split()
    return next((m for m in _PASSWORD_MECHANISMS if m in advertised), None)


def _b64(text: str) -> str:
    """Base64 of the UTF-8 bytes: RFC 4616 (PLAIN) is UTF-8, and LOGIN servers expect the same.

    smtplib encodes AUTH responses as ASCII, so a password like "pässwörd" would never leave
    the client; we run the exchange ourselves instead.
    """
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


# A server that keeps challenging after the credentials went out gets "*" (cancel, RFC 4954).
_MAX_CHALLENGES = 2


def _auth_exchange(client: _GuardedSMTP, mechanism: str, username: str, password: str) -> None:
    """AUTH PLAIN (initial response) or AUTH LOGIN; SMTPAuthenticationError unless accepted."""
    if mechanism == "PLAIN":
        responses = [_b64(f"\0{username}\0{password}")]
        # Some servers ignore the initial response and send an empty challenge: answer again.
        responses.append(responses[0])
    else:
        responses = [_b64(username), _b64(password)]
    code, reply = client.docmd("AUTH", f"{mechanism} {responses[0]}")
    for response in responses[1 : 1 + _MAX_CHALLENGES]:
        if code != 334:
            break
        code, reply = client.docmd(response)
    if code == 334:
        code, reply = client.docmd("*")
        raise smtplib.SMTPAuthenticationError(code or 501, reply)
    if code not in (235, 503):  # 503: already authenticated
        raise smtplib.SMTPAuthenticationError(code, reply)


def xoauth2_string(username: str, token: str) -> str:
    """The XOAUTH2 initial response (base64), as Google and Microsoft document it."""
    return _b64(f"user={username}\x01auth=Bearer {token}\x01\x01")


def _token_failure_code(code: int, reply: bytes) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else ""
    if code == 535 and _MS_SMTP_AUTH_DISABLED in text:
        return errors.SMTP_AUTH_DISABLED
    if code in (530, 538):
        return errors.TLS_REQUIRED
    if 400 <= code < 500:
        return errors.NETWORK_ERROR
    return errors.TOKEN_REJECTED


def _xoauth2_login(client: _GuardedSMTP, settings: ServerSettings) -> None:
    """AUTH XOAUTH2 with the access token: one attempt, never logged.

    A rejected token gets a 334 challenge carrying a base64 JSON error (Gmail, Outlook); the
    client must answer with an empty line, after which the server sends the final 535.
    """
    advertised = client.esmtp_features.get("auth", "").upper().split()
    if not client.has_extn("auth") or "XOAUTH2" not in advertised:
        raise _fail(errors.AUTH_UNSUPPORTED, settings, "no XOAUTH2 in EHLO")
    assert settings.oauth_token is not None
    code, reply = client.docmd(
        "AUTH", "XOAUTH2 " + xoauth2_string(settings.username, settings.oauth_token)
    )
    if code == 334:
        code, reply = client.docmd("")  # acknowledge the error challenge
    if code == 334:  # still challenging: cancel (RFC 4954)
        code, reply = client.docmd("*")
        code = 535 if code in (501, 535) else code
    if code in (235, 503):
        return
    raise _fail(_token_failure_code(code, reply), settings, f"SMTP {code} (XOAUTH2)")


def _login(client: _GuardedSMTP, settings: ServerSettings) -> None:
    """One AUTH attempt with the best password mechanism, credentials sent as UTF-8.

    smtplib.login() would retry every advertised mechanism after a 535, turning one wrong
    password into several failed logins (and lockouts); we try exactly one. With an OAuth
    access token (``settings.oauth_token``) the one attempt is XOAUTH2.
    """
    if settings.oauth_token is not None:
        _xoauth2_login(client, settings)
        return
    if not client.has_extn("auth"):
        raise _fail(errors.AUTH_UNSUPPORTED, settings, "no AUTH in EHLO")
    mechanism = _mechanism(client)
    if mechanism is None:
        raise _fail(errors.AUTH_UNSUPPORTED, settings, "no PLAIN or LOGIN")
    try:
        _auth_exchange(client, mechanism, settings.username, settings.password)
    except smtplib.SMTPAuthenticationError as exc:
        # from None: keep the exchange (and anything derived from the secret) out of tracebacks
        raise _fail(_auth_failure_code(exc), settings, f"SMTP {exc.smtp_code}") from None


def _handshake(client: _GuardedSMTP, settings: ServerSettings, options: TransportOptions) -> None:
    security = settings.smtp_security
    client.connect(settings.smtp_host, settings.smtp_port)
    client.ehlo_or_helo_if_needed()
    if security == "starttls":
        _upgrade(client, settings, client._context)
    elif security == "none":
        if not options.allow_plaintext_auth:
            raise _fail(errors.TLS_REQUIRED, settings, "plaintext auth disallowed")
        if not client.has_extn("auth") and client.has_extn("starttls"):
            raise _fail(errors.TLS_REQUIRED, settings, "AUTH offered only after STARTTLS")
    _login(client, settings)


def _failure_code(exc: BaseException, *, implicit: bool) -> tuple[str, str]:
    """(code, detail) for anything the SMTP conversation raised; detail never holds text."""
    if isinstance(exc, ConnectionFailed):
        return exc.code, exc.detail
    if isinstance(exc, smtplib.SMTPConnectError):  # greeting other than 220, e.g. 554
        return errors.REFUSED, f"greeting {exc.smtp_code}"
    if isinstance(exc, smtplib.SMTPHeloError):
        return errors.PROTOCOL_ERROR, f"EHLO {exc.smtp_code}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib reports a read timeout as "disconnected"; the cause chain tells the truth.
        code = socket_error_code(exc)
        if code == errors.NETWORK_ERROR:
            code = errors.CONNECTION_LOST
        return code, type(exc).__name__
    if isinstance(exc, smtplib.SMTPException):
        return errors.PROTOCOL_ERROR, type(exc).__name__
    if isinstance(exc, ssl.SSLError):
        return tls_error_code(exc, implicit=implicit), type(exc).__name__
    return socket_error_code(exc), type(exc).__name__


def open_smtp(settings: ServerSettings, options: TransportOptions) -> smtplib.SMTP:
    """An authenticated SMTP connection, or ConnectionFailed with a stable code."""
    check_port(settings.smtp_port, options.smtp_ports, "smtp")
    if settings.smtp_security not in ("ssl", "starttls", "none"):
        raise _fail(errors.PROTOCOL_ERROR, settings, "unknown security")
    implicit = settings.smtp_security == "ssl"
    client: _GuardedSMTP | None = None
    try:
        client = _GuardedSMTP(options, implicit_tls=implicit)
        _handshake(client, settings, options)
    except (smtplib.SMTPException, OSError, UnicodeError, ValueError, ConnectionFailed) as exc:
        if client is not None:
            client.close()
        code, detail = _failure_code(exc, implicit=implicit)
        raise _fail(code, settings, detail) from None
    return client


def _quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


def check_smtp(settings: ServerSettings, options: TransportOptions) -> ProtocolResult:
    """Connect, EHLO, TLS as chosen, AUTH, QUIT. Never raises."""
    started = time.monotonic()
    try:
        client = open_smtp(settings, options)
    except ConnectionFailed as exc:
        log.info("SMTP check failed: %s (%s)", exc.code, exc.detail)
        return ProtocolResult(
            Protocol.SMTP,
            ok=False,
            code=exc.code,
            message=message_for(exc.code, settings.hints),
            detail=exc.detail,
            elapsed=time.monotonic() - started,
        )
    except Exception as exc:  # never raise from a check; the class name is enough to debug
        log.warning("SMTP check crashed: %s", type(exc).__name__)
        return ProtocolResult(
            Protocol.SMTP,
            ok=False,
            code=errors.PROTOCOL_ERROR,
            message=message_for(errors.PROTOCOL_ERROR, settings.hints),
            detail=type(exc).__name__,
            elapsed=time.monotonic() - started,
        )
    _quit(client)
    return ProtocolResult(
        Protocol.SMTP,
        ok=True,
        code=errors.OK,
        message=message_for(errors.OK, settings.hints),
        elapsed=time.monotonic() - started,
    )
