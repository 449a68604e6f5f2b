"""What both ways of composing a message share: :func:`compose.prepare` (an ``EmailMessage``)
and :func:`compose_draft.prepare_draft` (a :class:`~flask_mailconnect.Draft` written straight to
bytes). One rule each, so the two paths cannot drift apart: the recipients' final check and
dedupe, the headers the account adds (From, Date, Message-ID) as they are stored, the envelope
and the policy the bytes are written with, and a body's line endings.
"""

from __future__ import annotations

import email.policy
import functools
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from email.policy import Policy
from email.utils import format_datetime, make_msgid
from typing import Any

from .exceptions import InvalidMessage
from .validation import normalize_address

_DEFAULT = email.policy.default  # an EmailMessage's policy: what msg[name] = value parses with
_NEWLINES = re.compile(rb"\r\n|\r|\n")  # the generator's NLCRE, on bytes


def normalize_recipient(address: str, field: str) -> str:
    try:
        return normalize_address(address)
    except ValueError as exc:
        raise InvalidMessage(
            f"{field}: {address!r} is not a valid address ({exc}).", field=field
        ) from None


def unique_recipients(found: Iterable[tuple[str, str]]) -> list[str]:
    """The recipients of ``found`` ((header, address) in To, Cc, Bcc order), each checked by
    email-validator, the first spelling of each kept (compared without case); none at all is
    refused. ``found`` is read lazily: an address refused stops the reading there."""
    seen: dict[str, str] = {}
    for field, address in found:
        normalized = normalize_recipient(address, field)
        seen.setdefault(normalized.lower(), normalized)
    if not seen:
        raise InvalidMessage("The message has no recipient (To, Cc or Bcc).", field="To")
    return list(seen.values())


def stored_header(name: str, value: str) -> Any:
    """How a header we build ourselves is stored. Printable ASCII (From with an ASCII display
    name, Date, Message-ID) is kept as source text: the policy writes it as it is when it fits
    a line and folds it otherwise, and no header object is parsed for it (107 + 58 + 46 us a
    message for From, Date and Message-ID, issue 13). Anything else is the header object
    ``msg[name] = value`` stores, with its refusal of line breaks; printable ASCII has none by
    definition."""
    if value.isascii() and value.isprintable():
        return value
    return _DEFAULT.header_store_parse(name, value)[1]


@functools.lru_cache(maxsize=256)
def account_domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip().rstrip(".")
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain.lower()


@functools.lru_cache(maxsize=8)
def date_text(second: datetime, _offset: Any) -> str:
    """``format_datetime`` of a whole second, cached: a bulk send asks for one second hundreds
    of times. The UTC offset is part of the key (one instant in two zones: equal datetimes)."""
    return format_datetime(second)


def own_headers(
    from_value: str, *, has_date: bool, message_id: str, account_email: str, now: datetime | None
) -> tuple[list[tuple[str, Any]], str]:
    """The headers the account adds, in order and as stored: From, then Date and Message-ID
    when the message has none (``message_id``: the one it has, "" for none); and the
    Message-ID the message goes out with."""
    added = [("From", stored_header("From", from_value))]
    if not has_date:
        second = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        # format_datetime writes printable ASCII: stored as text, as stored_header would.
        added.append(("Date", date_text(second, second.utcoffset())))
    if not message_id:
        message_id = make_msgid(domain=account_domain(account_email))
        added.append(("Message-ID", stored_header("Message-ID", message_id)))
    return added, message_id


def envelope(account_email: str, recipients: list[str]) -> tuple[str, bool, Policy]:
    """MAIL FROM, whether the message needs SMTPUTF8 (only when an address is not ASCII), and
    the policy its bytes are written with (UTF-8 headers only then)."""
    envelope_from = account_email.strip()  # validated when the account was connected
    smtputf8 = not all(a.isascii() for a in [envelope_from, *recipients])
    return envelope_from, smtputf8, email.policy.SMTPUTF8 if smtputf8 else email.policy.SMTP


def line_endings(data: bytes, linesep: bytes) -> bytes:
    """A text body's bytes with each line ending (CRLF, CR or LF) made ``linesep``, as the
    generator writes a body."""
    if b"\r" in data or linesep != b"\r\n":
        return _NEWLINES.sub(linesep, data)
    return data.replace(b"\n", b"\r\n")  # LF only (most bodies): no regex needed
