"""A lean message to send: :class:`Draft`, the recommended input for bulk sending (issue 13).

An :class:`~email.message.EmailMessage` builds a header object per header as it is set (the
email package's header registry: about 13 us each), and sending then copies and writes it
again. A Draft is plain data: ``to``, ``subject``, ``text``, optional ``html``, ``cc``,
``bcc``, ``reply_to``, extra ``headers`` and ``attachments``. ``send`` accepts it wherever it
accepts an ``EmailMessage`` and writes the bytes directly (compose_draft.py), with every check
and completion compose.py gives an ``EmailMessage``: the result is the message
:meth:`Draft.as_email_message` would give.

What a Draft refuses when it is built (:class:`~flask_mailconnect.exceptions.InvalidMessage`,
as sending an ``EmailMessage`` refuses it): a line break or NUL in any header value (subject,
addresses, extra headers, attachment file names), a malformed header name, the same extra
header twice, and extra headers the Draft writes itself (To, Cc, Bcc, Reply-To, Subject,
MIME-Version, Content-*). Addresses are checked strictly when the Draft is sent, against the
account (From) and with email-validator (recipients), as for an ``EmailMessage``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from .exceptions import InvalidMessage
from .transport.headers import HEADER_NAME

if TYPE_CHECKING:
    from email.message import EmailMessage

#: CR, LF, NUL, and what else ``str.splitlines`` splits at (the email package's header policy
#: refuses a value it splits: form feed, vertical tab, U+2028...).
_BREAK = re.compile("[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_MIME_TYPE = re.compile(r"^[!#$%&'*+.0-9A-Z^_`a-z|~-]+/[!#$%&'*+.0-9A-Z^_`a-z|~-]+$")
#: Extra headers a Draft writes itself (its fields, and the MIME structure of its body).
_OWN = frozenset({"to", "cc", "bcc", "reply-to", "subject", "mime-version"})


def _refuse_breaks(value: object, field_name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field_name} must be a str, not {type(value).__name__}")
    if _BREAK.search(value):
        raise InvalidMessage(
            f"The {field_name} header contains a line break, which is not allowed.",
            field=field_name,
        )
    return value


def _addresses(value: str | Iterable[str], field_name: str) -> tuple[str, ...]:
    entries = (value,) if isinstance(value, str) else tuple(value)
    return tuple(_refuse_breaks(entry, field_name) for entry in entries if entry != "")


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to a :class:`Draft`: its name, its bytes and its MIME type."""

    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"

    def __post_init__(self) -> None:
        _refuse_breaks(self.filename, "Content-Disposition")
        if not isinstance(self.content, bytes):
            raise TypeError("an attachment's content must be bytes")
        if not _MIME_TYPE.match(self.mime_type):
            raise InvalidMessage(
                f"{self.mime_type!r} is not a MIME type (type/subtype).", field="Content-Type"
            )


#: What ``Draft.attachments`` takes: an :class:`Attachment` or ``(filename, content, mime_type)``.
AttachmentLike = Attachment | tuple[str, bytes, str]


@dataclass(frozen=True, slots=True)
class Draft:
    """A message to send, as plain data: cheaper to build and to send than an
    :class:`~email.message.EmailMessage`, with the same checks (see the module doc).

    ``to``, ``cc``, ``bcc`` and ``reply_to`` take one address or a sequence of them, each
    ``"bob@example.com"`` or ``"Bob <bob@example.com>"`` (stored as tuples). ``headers`` adds
    headers such as ``List-Unsubscribe`` or ``In-Reply-To``; a From there must name the
    account's own address, and Sender, Return-Path and Resent-* are dropped when sending, as
    for an ``EmailMessage``. ``attachments`` takes :class:`Attachment` objects or
    ``(filename, content, mime_type)`` tuples. From, Date, Message-ID and the account's
    signature are added when the Draft is sent; Bcc is kept in the Sent copy, never
    transmitted.
    """

    to: str | Sequence[str]
    subject: str
    text: str
    html: str | None = None
    cc: str | Sequence[str] = ()
    bcc: str | Sequence[str] = ()
    reply_to: str | Sequence[str] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: Sequence[AttachmentLike] = ()

    def __post_init__(self) -> None:
        # Frozen: the checked, normalised values are set once, here.
        set_ = object.__setattr__
        for name, header in (("to", "To"), ("cc", "Cc"), ("bcc", "Bcc"), ("reply_to", "Reply-To")):
            set_(self, name, _addresses(getattr(self, name), header))
        _refuse_breaks(self.subject, "Subject")
        if not isinstance(self.text, str) or not isinstance(self.html, (str, type(None))):
            raise TypeError("text must be a str and html a str or None")
        seen: set[str] = set()
        for name, value in self.headers.items():
            if not isinstance(name, str) or not HEADER_NAME.match(name):
                raise InvalidMessage(f"Header name {name!r} is not allowed.", field=str(name))
            _refuse_breaks(value, name)
            lowered = name.lower()
            if lowered in _OWN or lowered.startswith("content-"):
                raise InvalidMessage(
                    f"The Draft writes {name} itself (from its fields and body).", field=name
                )
            if lowered in seen:
                raise InvalidMessage(f"The {name} header is given twice.", field=name)
            seen.add(lowered)
        set_(self, "headers", MappingProxyType(dict(self.headers)))
        set_(self, "attachments", tuple(
            a if isinstance(a, Attachment) else Attachment(*a) for a in self.attachments
        ))  # fmt: skip

    def as_email_message(self) -> EmailMessage:
        """The equivalent :class:`~email.message.EmailMessage` (what the Draft sends, before
        From, Date, Message-ID and the signature are added): text/plain, or
        multipart/alternative with ``html``, inside multipart/mixed with attachments."""
        from email.message import EmailMessage

        msg = EmailMessage()
        for name, addresses in self.address_fields():
            msg[name] = ", ".join(addresses)
        msg["Subject"] = self.subject
        for name, value in self.headers.items():
            msg[name] = value
        msg.set_content(self.text)
        if self.html is not None:
            msg.add_alternative(self.html, subtype="html")
        for attachment in self.attachments:
            assert isinstance(attachment, Attachment)  # made so by __post_init__
            maintype, _, subtype = attachment.mime_type.partition("/")
            msg.add_attachment(
                attachment.content, maintype=maintype, subtype=subtype,
                filename=attachment.filename,
            )  # fmt: skip
        return msg

    def address_fields(self) -> list[tuple[str, tuple[str, ...]]]:
        """(header name, addresses) of To, Cc, Bcc and Reply-To, each that has any."""
        fields = (("To", self.to), ("Cc", self.cc), ("Bcc", self.bcc), ("Reply-To", self.reply_to))
        return [(name, tuple(value)) for name, value in fields if value]


__all__ = ["Attachment", "Draft"]
