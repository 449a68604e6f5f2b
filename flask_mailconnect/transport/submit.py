"""SMTP submission of one message over an open connection, and the Sent copy over IMAP.

:func:`submit` runs MAIL, RCPT and DATA itself instead of ``smtplib.sendmail`` because the one
thing a sender must know after a failure is whether the server may already hold the message:
``sendmail`` reports a connection lost while the data was being written and one lost while
waiting for the answer to the final "." the same way. Here the first is ``transient`` (the
message was never complete, sending again is safe) and the second ``unknown`` (the server may
have accepted it: never sent again automatically).

No Flask and no SQLAlchemy: sending.py maps :class:`SubmitFailed` to the typed errors.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from .. import codes as errors
from ..exceptions import ConnectionFailed, SubmitFailed, SubmitKind, SubmitStage
from .imap import open_imap
from .netguard import socket_error_code
from .settings import ServerSettings, TransportOptions

if TYPE_CHECKING:  # imapclient is imported where a connection is opened (transport.imap)
    from imapclient import IMAPClient

log = logging.getLogger(__name__)

#: imapclient's flag and SPECIAL-USE names, spelled here so that this module does not import
#: imapclient (~50 ms) with the package (issue 13).
SEEN = rb"\Seen"
SENT = rb"\Sent"

Kind = SubmitKind  # see flask_mailconnect.exceptions
Stage = SubmitStage

_CRLF = b"\r\n"
_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_CR = re.compile(rb"\r(?!\n)")
_REPLY_TEXT = re.compile(r"[^\x20-\x7e]+")


def reply_text(reply: bytes | str) -> str:
    """A server's reply as short printable ASCII (it may be logged or shown to a developer)."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return _REPLY_TEXT.sub(" ", text).strip()[:200]


@dataclass
class SubmitResult:
    """What the server accepted: recipients in the order given, and those refused with why."""

    accepted: list[str]
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)


def _kind_for(smtp_code: int) -> Kind:
    return "transient" if 400 <= smtp_code < 500 else "permanent"


def _reply_code(smtp_code: int) -> str:
    return "smtp_transient" if 400 <= smtp_code < 500 else "smtp_rejected"


def _lost(exc: BaseException) -> str:
    code = socket_error_code(exc)
    return errors.CONNECTION_LOST if code == errors.NETWORK_ERROR else code


def _rset(client: smtplib.SMTP) -> bool:
    """RSET after a refused transaction; False when the connection is no longer usable."""
    try:
        code, _ = client.docmd("RSET")
    except (smtplib.SMTPException, OSError):
        return False
    return code == 250


def _crlf(data: bytes) -> bytes:
    """Line endings as CRLF, ending with one: the message as the server will count it."""
    pairs = data.count(_CRLF)
    if data.count(b"\n") != pairs or data.count(b"\r") != pairs:  # a bare CR or LF somewhere
        data = _BARE_CR.sub(_CRLF, _BARE_LF.sub(_CRLF, data))
    return data if data.endswith(_CRLF) else data + _CRLF


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _dot_stuffed(wire: bytes) -> bytes:
    """``wire`` (already CRLF, see :func:`_crlf`) with leading dots doubled and the
    terminating "." CRLF."""
    return _LEADING_DOT.sub(b"..", wire) + b"." + _CRLF


#: An ASCII dot-atom address (RFC 5322 atext, no quotes, comments, brackets or spaces): what
#: compose.prepare hands over for nearly every message. ``smtplib.quoteaddr`` parses it with
#: ``email.utils.parseaddr`` and returns it unchanged between angle brackets (6.5 us an
#: address, issue 13); anything else still goes through quoteaddr.
_DOT_ATOM_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def quote_address(address: str) -> str:
    """``smtplib.quoteaddr(address)``: the address as MAIL FROM and RCPT TO carry it."""
    if _DOT_ATOM_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def size_limit(client: smtplib.SMTP) -> int | None:
    """The server's advertised ``SIZE`` in bytes (RFC 1870), or None: not advertised, or 0
    (no fixed limit)."""
    if not client.has_extn("size"):
        return None
    value = client.esmtp_features.get("size", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _refused_at_mail(
    client: smtplib.SMTP, code: int, reply: bytes, size: int, limit: int | None, *, usable: bool
) -> SubmitFailed:
    """What a refused MAIL FROM means: over the advertised SIZE (RFC 1870), or the reply's
    own kind."""
    if code == 552 and client.has_extn("size"):
        return _too_large(size, limit, "mail", smtp_code=code, reply=reply_text(reply),
                          connection_usable=usable)  # fmt: skip
    return SubmitFailed(
        _kind_for(code), "mail", code=_reply_code(code), smtp_code=code,
        reply=reply_text(reply), connection_usable=usable,
    )  # fmt: skip


def _rcpt_replies(
    recipients: list[str], reply_to: Callable[[str], tuple[int, bytes]]
) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """Each recipient's RCPT reply (sent now, or already pipelined and only read): the accepted
    ones and the refused ones with their reply; a 421 or a lost connection ends the session."""
    accepted: list[str] = []
    refused: dict[str, tuple[int, str]] = {}
    for rcpt in recipients:
        try:
            code, reply = reply_to(rcpt)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise SubmitFailed("transient", "rcpt", code=_lost(exc), refused=refused) from None
        if code in (250, 251):
            accepted.append(rcpt)
        elif code == 421:  # closing: nothing was accepted
            raise SubmitFailed(
                "transient", "rcpt", code="smtp_transient", smtp_code=code,
                reply=reply_text(reply), refused=refused,
            )  # fmt: skip
        else:
            refused[rcpt] = (code, reply_text(reply))
    return accepted, refused


def _too_large(size: int, limit: int | None, stage: Stage, **reply: object) -> SubmitFailed:
    return SubmitFailed(
        "permanent", stage, code=errors.MESSAGE_TOO_LARGE, size=size, size_limit=limit,
        **reply,  # type: ignore[arg-type]
    )  # fmt: skip


def _envelope(
    client: smtplib.SMTP, envelope_from: str, recipients: list[str], mail_options: list[str],
    size: int, limit: int | None,
) -> tuple[list[str], dict[str, tuple[int, str]]]:  # fmt: skip
    """MAIL, RCPT each and DATA, one command at a time, up to the server's 354."""
    # MAIL FROM. A connection lost here (the server closed it between messages) is safe to retry.
    try:
        code, reply = client.mail(envelope_from, mail_options)
    except smtplib.SMTPServerDisconnected as exc:
        raise SubmitFailed("transient", "mail", code=_lost(exc)) from None
    except OSError as exc:
        raise SubmitFailed("transient", "mail", code=_lost(exc)) from None
    if code != 250:
        usable = code != 421 and _rset(client)
        raise _refused_at_mail(client, code, reply, size, limit, usable=usable)
    accepted, refused = _rcpt_replies(recipients, client.rcpt)
    if not accepted:
        any_temporary = any(400 <= c < 500 for c, _ in refused.values())
        raise SubmitFailed(
            "transient" if any_temporary else "permanent", "rcpt",
            code="recipients_refused", smtp_code=next(iter(refused.values()))[0],
            refused=refused, connection_usable=_rset(client),
        )  # fmt: skip
    # DATA: until the final "." has been written, the message cannot have been accepted.
    try:
        client.putcmd("data")
        code, reply = client.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise SubmitFailed("transient", "data", code=_lost(exc), refused=refused) from None
    if code != 354:
        usable = code != 421 and _rset(client)
        raise SubmitFailed(
            _kind_for(code), "data", code=_reply_code(code), smtp_code=code,
            reply=reply_text(reply), refused=refused, connection_usable=usable,
        )  # fmt: skip
    return accepted, refused


def _envelope_pipelined(
    client: smtplib.SMTP, envelope_from: str, recipients: list[str], mail_options: list[str],
    size: int, limit: int | None,
) -> tuple[list[str], dict[str, tuple[int, str]]]:  # fmt: skip
    """MAIL, every RCPT and DATA in one write, then their replies in order (RFC 2920
    PIPELINING): one round trip instead of two plus one per recipient. Each reply is judged as
    :func:`_envelope` judges it; after a refusal the replies still owed are read so that the
    conversation stays in step. Nothing of the message is sent before the 354 to DATA, so every
    failure here is one where the server cannot hold the message."""
    options = "".join(f" {option}" for option in mail_options)
    lines = [
        f"MAIL FROM:{quote_address(envelope_from)}{options}",
        *(f"RCPT TO:{quote_address(rcpt)}" for rcpt in recipients),
        "DATA",
    ]
    text = "\r\n".join(lines) + "\r\n"
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        # A line break inside an address: the one-at-a-time path refuses it (ValueError).
        return _envelope(client, envelope_from, recipients, mail_options, size, limit)
    encoding = "utf-8" if "SMTPUTF8" in mail_options else "ascii"
    try:
        client.send(text.encode(encoding))
        code, reply = client.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        # Nothing answered MAIL FROM (the server closed it between messages): safe to retry.
        raise SubmitFailed("transient", "mail", code=_lost(exc)) from None
    if code != 250:
        # The server answers the RCPTs and DATA too (503, "no valid sender"): read them.
        usable = code != 421 and _drain(client, len(recipients) + 1) and _rset(client)
        raise _refused_at_mail(client, code, reply, size, limit, usable=usable)
    accepted, refused = _rcpt_replies(recipients, lambda _rcpt: client.getreply())
    try:
        code, reply = client.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise SubmitFailed("transient", "data", code=_lost(exc), refused=refused) from None
    if not accepted:
        # RFC 2920 section 3.1: a server may still answer 354 with no valid recipient; end
        # that empty message with a lone "." (it has no recipient to go to) and reset.
        usable = code != 421 and (code != 354 or _end_empty(client)) and _rset(client)
        any_temporary = any(400 <= c < 500 for c, _ in refused.values())
        raise SubmitFailed(
            "transient" if any_temporary else "permanent", "rcpt",
            code="recipients_refused", smtp_code=next(iter(refused.values()))[0],
            refused=refused, connection_usable=usable,
        )  # fmt: skip
    if code != 354:
        usable = code != 421 and _rset(client)
        raise SubmitFailed(
            _kind_for(code), "data", code=_reply_code(code), smtp_code=code,
            reply=reply_text(reply), refused=refused, connection_usable=usable,
        )  # fmt: skip
    return accepted, refused


def _drain(client: smtplib.SMTP, replies: int) -> bool:
    """Read ``replies`` pipelined replies nobody needs; False when the connection broke."""
    try:
        for _ in range(replies):
            client.getreply()
    except (smtplib.SMTPException, OSError):
        return False
    return True


def _end_empty(client: smtplib.SMTP) -> bool:
    """End a DATA the server accepted when no recipient was: a lone "." and its reply."""
    try:
        client.send(b"." + _CRLF)
        client.getreply()
    except (smtplib.SMTPException, OSError):
        return False
    return True


def submit(
    client: smtplib.SMTP,
    envelope_from: str,
    recipients: list[str],
    data: bytes,
    *,
    smtputf8: bool = False,
) -> SubmitResult:
    """One SMTP transaction on an authenticated connection. Raises :class:`SubmitFailed`.

    Some recipients refused while others are accepted is a success listing the refused ones;
    all refused is a failure (``transient`` when any refusal was a 4xx). Refused before MAIL
    FROM, with the connection left usable: ``smtputf8`` without SMTPUTF8 in the server's EHLO
    (``smtputf8_unsupported``), and a message larger than its ``SIZE`` (``message_too_large``;
    ``SIZE=`` goes with MAIL FROM whenever the server advertises the extension).
    """
    mail_options: list[str] = []
    # Both refusals come before MAIL FROM: no transaction begun, the connection still usable.
    if smtputf8:
        if not client.has_extn("smtputf8"):
            raise SubmitFailed(
                "permanent", "mail", code=errors.SMTPUTF8_UNSUPPORTED, connection_usable=True
            )
        mail_options.append("SMTPUTF8")
    wire = _crlf(data)  # once: its length is SIZE=, and it is what DATA sends
    size, limit = len(wire), size_limit(client)
    if limit is not None and size > limit:  # never send it all to be told 552 at the end
        raise _too_large(size, limit, "mail", connection_usable=True)
    if client.has_extn("size"):
        mail_options.append(f"SIZE={size}")
    if client.has_extn("8bitmime") and not data.isascii():  # C speed, unlike a byte loop
        mail_options.append("BODY=8BITMIME")
    if client.has_extn("pipelining"):
        accepted, refused = _envelope_pipelined(
            client, envelope_from, recipients, mail_options, size, limit
        )
    else:
        accepted, refused = _envelope(client, envelope_from, recipients, mail_options, size, limit)
    try:
        client.send(_dot_stuffed(wire))
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise SubmitFailed("transient", "data", code=_lost(exc), refused=refused) from None
    # The whole message is out. From here a missing answer means "may have been delivered".
    try:
        code, reply = client.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise SubmitFailed(
            "unknown", "end", code="delivery_unknown", reply=_lost(exc), refused=refused
        ) from None
    if code == 552:  # RFC 1870: the message exceeds the server's fixed maximum size
        raise _too_large(size, limit, "end", smtp_code=code, reply=reply_text(reply),
                         refused=refused, connection_usable=True)  # fmt: skip
    if code != 250:
        raise SubmitFailed(
            _kind_for(code), "end", code=_reply_code(code), smtp_code=code,
            reply=reply_text(reply), refused=refused, connection_usable=code != 421,
        )  # fmt: skip
    return SubmitResult(accepted=accepted, refused=refused)


def quit_quietly(client: smtplib.SMTP | None) -> None:
    """QUIT if the server still listens; close the socket in any case."""
    if client is None:
        return
    try:
        if client.sock is not None:
            client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


# -- the Sent copy ------------------------------------------------------------------------------


def sent_folder(client: IMAPClient, mapped: str | None) -> str | None:
    """The folder to keep sent mail in: the mapped one, else the \\Sent SPECIAL-USE folder
    (imapclient also recognises the common names "Sent", "Sent Items"...)."""
    if mapped:
        return mapped
    return client.find_special_folder(SENT)


def append_message(
    client: IMAPClient,
    folder: str,
    message_bytes: bytes,
    flags: tuple[bytes, ...] = (SEEN,),
    msg_time: datetime | None = None,
) -> None:
    """APPEND one message to ``folder`` with ``flags`` (``\\Seen`` by default)."""
    client.append(folder, message_bytes, flags=flags, msg_time=msg_time)


class SentCopy:
    """One lazily opened IMAP connection that appends sent messages to the Sent folder.

    Used for one message (send) or many (a bulk session). :meth:`save` never raises: it
    returns ``None`` on success or a stable code (``no_sent_folder`` or a transport code).
    """

    def __init__(
        self, settings: ServerSettings, options: TransportOptions, mapped: str | None
    ) -> None:
        self._settings = settings
        self._options = options
        self._mapped = mapped
        self._client: IMAPClient | None = None
        self._folder: str | None = None

    @property
    def folder(self) -> str | None:
        """The folder copies go to, once the first save found it."""
        return self._folder

    def save(self, message_bytes: bytes, when: datetime | None = None) -> str | None:
        for attempt in (1, 2):  # the connection may have timed out between two messages
            try:
                if self._client is None:
                    self._client = open_imap(self._settings, self._options)
                    self._folder = sent_folder(self._client, self._mapped)
                if self._folder is None:
                    return "no_sent_folder"
                append_message(self._client, self._folder, message_bytes, msg_time=when)
                return None
            except ConnectionFailed as exc:
                return exc.code
            except (imaplib.IMAP4.abort, OSError) as exc:
                self.close()
                if attempt == 2:
                    return _lost(exc)
            except Exception as exc:  # a NO to APPEND, a missing folder: not the send's fault
                log.info("Sent copy refused: %s", type(exc).__name__)
                return "append_failed"
        return errors.CONNECTION_LOST  # pragma: no cover - the loop always returns

    def save_many(self, messages: Sequence[tuple[bytes, datetime | None]]) -> list[str | None]:
        """Save several copies: one result per message, as :meth:`save` returns them.

        When the server advertises MULTIAPPEND (RFC 3502; Dovecot, Cyrus, Gmail do) the batch
        is one APPEND command, one round trip instead of one per message (with LITERAL+, no
        wait for a continuation either): all of them saved, or none. Otherwise one APPEND
        each, on the same connection."""
        if len(messages) <= 1:
            return [self.save(data, when) for data, when in messages]
        for attempt in (1, 2):
            try:
                if self._client is None:
                    self._client = open_imap(self._settings, self._options)
                    self._folder = sent_folder(self._client, self._mapped)
                if self._folder is None:
                    return ["no_sent_folder"] * len(messages)
                if not self._client.has_capability("MULTIAPPEND"):
                    break
                batch: list[dict[str, object]] = [
                    {"msg": data, "flags": (SEEN,), **({"date": when} if when else {})}
                    for data, when in messages
                ]
                # imapclient hands back imaplib's (type, data) here without checking it: a NO
                # (no such folder, over quota) must be looked for.
                answer = self._client.multiappend(self._folder, batch)
                if isinstance(answer, tuple) and answer and answer[0] != "OK":
                    log.info("Sent copies refused: %s", reply_text(str(answer[1])[:80]))
                    return ["append_failed"] * len(messages)
                return [None] * len(messages)
            except ConnectionFailed as exc:
                return [exc.code] * len(messages)
            except (imaplib.IMAP4.abort, OSError) as exc:
                self.close()
                if attempt == 2:
                    return [_lost(exc)] * len(messages)
            except Exception as exc:  # a NO (quota, folder gone): none of the batch was saved
                log.info("Sent copies refused: %s", type(exc).__name__)
                return ["append_failed"] * len(messages)
        return [self.save(data, when) for data, when in messages]

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.logout()
            except Exception:
                with contextlib.suppress(Exception):
                    client.shutdown()
