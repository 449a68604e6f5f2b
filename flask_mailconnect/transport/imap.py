"""IMAP: open a logged-in IMAPClient through the network guard, or check that one works.

IMAPClient does the protocol; we only replace how it builds its imaplib object, so the socket is
the one the guard connected to the checked address, and TLS verifies the user's host name.

imapclient is imported where a connection is opened (:func:`_client_class`), not with this
module: it is a heavy import (~50 ms) that ``import flask_mailconnect`` should not pay. Its
exception classes are looked up where they are caught, after a client was made.
"""

from __future__ import annotations

import contextlib
import functools
import imaplib
import logging
import socket
import ssl
import time
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from imapclient import IMAPClient

log = logging.getLogger(__name__)


class _GuardedIMAP4(imaplib.IMAP4):
    """imaplib.IMAP4 over a socket from the guard: implicit TLS or a plaintext greeting."""

    def __init__(
        self, host: str, port: int, options: TransportOptions, context: ssl.SSLContext, tls: bool
    ) -> None:
        self._options = options
        self._context = context
        self._implicit_tls = tls
        super().__init__(host, port, timeout=options.timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        opts = self._options
        connect = connect_tls if self._implicit_tls else connect_expecting_greeting
        return connect(
            self.host,
            self.port,
            allow_private=opts.allow_private_hosts,
            timeout=opts.timeout,
            context=self._context,
        )

    def shutdown(self) -> None:
        """TLS close_notify first (LOGOUT and IMAPClient.shutdown() end here), then close."""
        close_notify(getattr(self, "sock", None))
        super().shutdown()


@functools.cache
def _client_class() -> type[IMAPClient]:
    """IMAPClient whose imaplib object is a :class:`_GuardedIMAP4`; the class is made (and
    imapclient imported) on first use, then kept: it holds no per-app or per-call state."""
    from imapclient import IMAPClient

    class GuardedIMAPClient(IMAPClient):
        def __init__(self, settings: ServerSettings, options: TransportOptions) -> None:
            self._options = options
            self._context = options.ssl_context()
            assert settings.imap_host and settings.imap_port
            super().__init__(
                settings.imap_host,
                settings.imap_port,
                ssl=settings.imap_security == "ssl",
                ssl_context=self._context,
                timeout=options.timeout,
            )
            # IMAPClient turns imaplib's protocol trace on (debug=5) and redacts LOGIN lines in
            # its logger; switch the trace off altogether so no secret can reach a log handler.
            self._imap.debug = 0

        def _create_IMAP4(self) -> imaplib.IMAP4:  # noqa: N802 - imapclient's name
            return _GuardedIMAP4(self.host, self.port, self._options, self._context, self.ssl)

    return GuardedIMAPClient


def _fail(code: str, settings: ServerSettings, detail: str = "") -> ConnectionFailed:
    return ConnectionFailed(code, message_for(code, settings.hints), detail=detail)


def _code_for(exc: BaseException, *, implicit: bool) -> str:
    from imapclient.exceptions import IMAPClientError

    if isinstance(exc, ConnectionFailed):
        return exc.code
    if isinstance(exc, ssl.SSLError):
        return tls_error_code(exc, implicit=implicit)
    if isinstance(exc, imaplib.IMAP4.abort):
        code = socket_error_code(exc)
        return errors.CONNECTION_LOST if code == errors.NETWORK_ERROR else code
    if isinstance(exc, (imaplib.IMAP4.error, IMAPClientError)):
        return errors.PROTOCOL_ERROR
    return socket_error_code(exc)


def _login(client: IMAPClient, settings: ServerSettings, options: TransportOptions) -> None:
    from imapclient import exceptions as imap_errors

    security = settings.imap_security
    if security == "starttls":
        try:
            # The context the connection was made with (set by the GuardedIMAPClient).
            client.starttls(client._context)
        except imap_errors.CapabilityError:
            raise _fail(errors.TLS_UNAVAILABLE, settings, "no STARTTLS capability") from None
        except ssl.SSLError as exc:
            code = tls_error_code(exc, implicit=False)
            raise _fail(code, settings, type(exc).__name__) from None
        except imaplib.IMAP4.abort:
            raise
        except (imaplib.IMAP4.error, imap_errors.IMAPClientError):
            raise _fail(errors.TLS_UNAVAILABLE, settings, "STARTTLS refused") from None
    elif security == "none" and not options.allow_plaintext_auth:
        raise _fail(errors.TLS_REQUIRED, settings, "plaintext auth disallowed")
    capabilities = client.capabilities()
    if settings.oauth_token is not None:
        _xoauth2_login(client, settings, capabilities)
        return
    if b"LOGINDISABLED" in capabilities:
        raise _fail(errors.TLS_REQUIRED, settings, "LOGINDISABLED")
    # IMAP LOGIN takes ASCII only (imaplib would raise UnicodeEncodeError); AUTHENTICATE PLAIN
    # carries UTF-8 (RFC 4616), so non-ASCII credentials go that way or not at all.
    utf8 = not (settings.username.isascii() and settings.password.isascii())
    if utf8 and b"AUTH=PLAIN" not in capabilities:
        raise _fail(
            errors.AUTH_FAILED,
            settings,
            "non-ASCII login or password needs AUTH=PLAIN, which the server does not offer",
        )
    try:
        if utf8:
            client.plain_login(settings.username, settings.password)
        else:
            client.login(settings.username, settings.password)
    except imap_errors.LoginError as exc:
        # The server's words stay out: only whether it asked for TLS matters to the code.
        text = str(exc).upper()
        code = errors.TLS_REQUIRED if "PRIVACYREQUIRED" in text else errors.AUTH_FAILED
        raise _fail(code, settings, "AUTHENTICATE NO" if utf8 else "LOGIN NO") from None


def _xoauth2_login(
    client: IMAPClient, settings: ServerSettings, capabilities: tuple[bytes, ...]
) -> None:
    """AUTHENTICATE XOAUTH2 with the access token; a NO is ``token_rejected``.

    On a bad token Gmail, Outlook and Dovecot send a continuation with a JSON error and wait
    for an empty response before the tagged NO; answering it with the token again would only
    resend the secret.
    """
    if b"AUTH=XOAUTH2" not in capabilities:
        raise _fail(errors.AUTH_UNSUPPORTED, settings, "no AUTH=XOAUTH2 capability")
    assert settings.oauth_token is not None
    initial = f"user={settings.username}\x01auth=Bearer {settings.oauth_token}\x01\x01"
    sent: list[bool] = []

    def respond(_challenge: bytes) -> str:
        if sent:
            return ""  # the error challenge: acknowledge it
        sent.append(True)
        return initial

    from imapclient.exceptions import LoginError

    try:
        client.sasl_login("XOAUTH2", respond)
    except LoginError as exc:
        text = str(exc).upper()
        code = errors.TLS_REQUIRED if "PRIVACYREQUIRED" in text else errors.TOKEN_REJECTED
        if "UNAVAILABLE" in text:  # [UNAVAILABLE]: temporary failure on the server's side
            code = errors.NETWORK_ERROR
        raise _fail(code, settings, "AUTHENTICATE XOAUTH2 NO") from None


def open_imap(settings: ServerSettings, options: TransportOptions) -> IMAPClient:
    """A logged-in IMAPClient, or ConnectionFailed with a stable code."""
    if not settings.imap_host or not settings.imap_port:
        raise _fail(errors.HOST_NOT_FOUND, settings, "no IMAP server configured")
    check_port(settings.imap_port, options.imap_ports, "imap")
    if settings.imap_security not in ("ssl", "starttls", "none"):
        raise _fail(errors.PROTOCOL_ERROR, settings, "unknown security")
    implicit = settings.imap_security == "ssl"
    try:
        client = _client_class()(settings, options)
    except Exception as exc:
        raise _fail(_code_for(exc, implicit=implicit), settings, _detail(exc)) from None
    try:
        _login(client, settings, options)
    except Exception as exc:
        _shutdown(client)
        raise _fail(_code_for(exc, implicit=implicit), settings, _detail(exc)) from None
    return client


def _detail(exc: BaseException) -> str:
    return exc.detail if isinstance(exc, ConnectionFailed) else type(exc).__name__


def _shutdown(client: IMAPClient) -> None:
    # Already closed or broken: nothing left to release.
    with contextlib.suppress(Exception):
        client.shutdown()


def _logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        _shutdown(client)


def _result(
    settings: ServerSettings, code: str, started: float, detail: str = ""
) -> ProtocolResult:
    return ProtocolResult(
        Protocol.IMAP,
        ok=code == errors.OK,
        code=code,
        message=message_for(code, settings.hints),
        detail=detail,
        elapsed=time.monotonic() - started,
    )


def check_imap(settings: ServerSettings, options: TransportOptions) -> ProtocolResult:
    """Connect, TLS as chosen, LOGIN, SELECT INBOX read-only, LOGOUT. Never raises."""
    started = time.monotonic()
    try:
        client = open_imap(settings, options)
    except ConnectionFailed as exc:
        log.info("IMAP check failed: %s (%s)", exc.code, exc.detail)
        return _result(settings, exc.code, started, exc.detail)
    except Exception as exc:  # never raise from a check
        log.warning("IMAP check crashed: %s", type(exc).__name__)
        return _result(settings, errors.PROTOCOL_ERROR, started, type(exc).__name__)
    try:
        client.select_folder("INBOX", readonly=True)
    except (imaplib.IMAP4.abort, OSError) as exc:
        _shutdown(client)
        return _result(settings, _code_for(exc, implicit=False), started, type(exc).__name__)
    except Exception as exc:
        _logout(client)
        return _result(settings, errors.MAILBOX_UNAVAILABLE, started, type(exc).__name__)
    _logout(client)
    return _result(settings, errors.OK, started)
