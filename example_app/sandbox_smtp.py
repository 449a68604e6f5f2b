"""The demo sandbox's SMTP side: aiosmtpd's handler, authenticator and protocol class.

Messages go into the sandbox's in-memory mailboxes (:mod:`example_app.imap_server`); AUTH
PLAIN/LOGIN checks a mailbox's password and AUTH XOAUTH2 a token at the demo provider.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SMTPSession

from .imap_server import Mailbox, TokenCheck

# -- SMTP ------------------------------------------------------------------------------------


class DeliverToMailbox:
    """aiosmtpd handler: accept any recipient; store the message in each recipient's mailbox
    that the sandbox holds, or in the demo INBOX when it holds none of them.

    With ``token_check``, AUTH XOAUTH2 too (after STARTTLS, like every AUTH here), for every
    mailbox the sandbox holds.
    """

    def __init__(
        self,
        mailbox: Mailbox,
        token_check: TokenCheck | None = None,
        mailboxes: dict[str, Mailbox] | None = None,
    ) -> None:
        self.mailbox = mailbox
        self.token_check = token_check
        self.mailboxes = mailboxes or {mailbox.username.lower(): mailbox}

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        """``base64("user=" u "^Aauth=Bearer " token "^A^A")``; the provider vouches for it."""
        if self.token_check is None:
            return AuthResult(success=False, handled=False)
        if len(args) > 1:
            blob = args[1].encode("ascii", "replace")
        else:
            answer = await server.challenge_auth("", encode_to_b64=False)
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)  # cancelled: aiosmtpd answered
            blob = base64.b64encode(answer)
        try:
            fields = base64.b64decode(blob, validate=True).decode("utf-8").split("\x01")
            user = fields[0].removeprefix("user=")
            token = fields[1].removeprefix("auth=Bearer ")
        except (binascii.Error, UnicodeDecodeError, IndexError):
            return AuthResult(success=False, handled=False, message="501 5.5.2 Cannot decode")
        ok = user.lower() in self.mailboxes
        if ok:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(None, self.token_check, user, token)
        if ok:
            return AuthResult(success=True, auth_data=user, handled=False)
        return AuthResult(success=False, handled=False, message="535 5.7.8 Token not accepted")

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: SMTPSession, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        trace = f"Return-Path: <{envelope.mail_from}>\r\n".encode()
        targets = {
            id(box): box
            for box in (self.mailboxes.get(r.lower()) for r in envelope.rcpt_tos)
            if box is not None
        }
        for box in targets.values() or [self.mailbox]:
            box.deliver(trace + content)
        return "250 Message accepted for delivery"


class MailboxAuthenticator:
    def __init__(self, mailboxes: dict[str, Mailbox]) -> None:
        self.mailboxes = mailboxes

    def __call__(
        self, server: SMTP, session: SMTPSession, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        box = (
            self.mailboxes.get(data.login.decode("utf-8", "replace").lower())
            if isinstance(data, LoginPassword)
            else None
        )
        ok = (
            box is not None
            and isinstance(data, LoginPassword)
            and data.password.decode("utf-8", "replace") == box.password
        )
        return AuthResult(success=ok, handled=False)


class _QuietSession(SMTPSession):
    """aiosmtpd 1.4 sets its own deprecated ``login_data`` on every login, which warns."""

    @property  # type: ignore[override]
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class TrackedSMTP(SMTP):
    """aiosmtpd's SMTP protocol that forgets itself when its connection ends."""

    sandbox_sessions: set[SMTP]
    # An XOAUTH2 line carries a long base64 token: aiosmtpd's 512-byte default would cut it.
    line_length_limit = 8192
    command_size_limit = 8192
    command_size_limits: dict[str, int] = collections.defaultdict(lambda: 8192)

    def _create_session(self) -> SMTPSession:
        return _QuietSession(self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.sandbox_sessions.discard(self)


__all__ = ["DeliverToMailbox", "MailboxAuthenticator", "TrackedSMTP"]
