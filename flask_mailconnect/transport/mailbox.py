"""IMAP mailbox helpers for recent-mail sync and folder mapping (no Flask, no SQLAlchemy).

Everything here takes a logged-in :class:`imapclient.IMAPClient` (from
:func:`~flask_mailconnect.transport.imap.open_imap`) and returns plain data:

- :func:`list_folders`: one ``LIST "" "*"``; SPECIAL-USE attributes (RFC 6154) included.
- :func:`examine`: ``EXAMINE`` (read-only SELECT, so fetching never marks mail as read) with
  UIDVALIDITY, UIDNEXT and the message count.
- :func:`fetch_newest` / :func:`fetch_from_uid`: headers, flags and a snippet of many messages
  in ONE ``FETCH`` over a range (``<n>:*`` by sequence number for the newest ``limit``, ``UID
  FETCH <uid>:*`` for the incremental case), issued and read by :mod:`.fetch_reader`.
- :func:`fetch_flags`: the flags of a UID range (one ``UID FETCH ... (FLAGS)``).
- :func:`summarize`: turns one message's FETCH data into a :class:`MessageSummary` (pure;
  headers decoded by :mod:`.headers`, each on its own; snippet from the first text part).
"""

from __future__ import annotations

import base64
import binascii
import html
import logging
import quopri
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import Message
from typing import TYPE_CHECKING, Any

from .fetch_reader import fetch as _fetch
from .headers import clean_text, parse_compat32, parse_date, read_headers, text_codec

if TYPE_CHECKING:  # imapclient is imported where a mailbox is opened, not with the package
    from imapclient import IMAPClient

log = logging.getLogger(__name__)

#: Header fields fetched per message; the content fields let us decode the snippet.
HEADER_FIELDS = "FROM SUBJECT DATE MESSAGE-ID CONTENT-TYPE CONTENT-TRANSFER-ENCODING"
#: How much of each body is fetched to find and decode the first text part.
BODY_BYTES = 4096
SNIPPET_LENGTH = 200
FETCH_ITEMS = (
    "UID",
    "FLAGS",
    "INTERNALDATE",
    f"BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})]",
    f"BODY.PEEK[TEXT]<0.{BODY_BYTES}>",
)
#: The names servers answer those two sections with: looked up first, else found by prefix.
_HEADER_ITEM = f"BODY[HEADER.FIELDS ({HEADER_FIELDS})]".encode()
_TEXT_ITEM = b"BODY[TEXT]<0>"
#: The SPECIAL-USE attributes a folder mapping cares about, by mapping role.
SPECIAL_USE = {"sent": "\\Sent", "archive": "\\Archive", "trash": "\\Trash"}
ROLES = ("inbox", "sent", "archive", "trash")
_KNOWN_SPECIAL = ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
#: Common names, for servers without SPECIAL-USE (compared case-insensitively, last segment).
_NAME_GUESSES = {
    "sent": ("sent", "sent items", "sent messages", "sent mail"),
    "archive": ("archive", "archives", "all mail"),
    "trash": ("trash", "deleted items", "deleted messages", "bin"),
}


@dataclass(frozen=True)
class FolderInfo:
    """One folder from LIST: its name (decoded from modified UTF-7) and attributes."""

    name: str
    delimiter: str | None
    flags: tuple[str, ...]

    @property
    def selectable(self) -> bool:
        lowered = {f.lower() for f in self.flags}
        return "\\noselect" not in lowered and "\\nonexistent" not in lowered

    @property
    def special_use(self) -> str | None:
        lowered = {f.lower(): f for f in self.flags}
        for known in _KNOWN_SPECIAL:
            if known.lower() in lowered:
                return known
        return None


@dataclass(frozen=True)
class MailboxStatus:
    """What EXAMINE says about a folder."""

    uidvalidity: int
    uidnext: int | None
    exists: int


@dataclass(frozen=True)
class MessageSummary:
    """Headers of one message, decoded."""

    uid: int
    message_id: str
    sender: str
    subject: str
    date: datetime | None
    snippet: str
    flags: tuple[str, ...]
    arrived: datetime | None = None  #: INTERNALDATE: when the server received it

    @property
    def unread(self) -> bool:
        return "\\Seen" not in self.flags


# -- commands ---------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def list_folders(client: IMAPClient) -> list[FolderInfo]:
    """Every folder of the account (one LIST), sorted with INBOX first."""
    found = []
    for flags, delimiter, name in client.list_folders():
        found.append(
            FolderInfo(
                name=_text(name),
                delimiter=_text(delimiter) if delimiter is not None else None,
                flags=tuple(_text(f) for f in flags),
            )
        )
    found.sort(key=lambda f: (f.name.upper() != "INBOX", f.name.lower()))
    return found


def suggest_mapping(folders: Iterable[FolderInfo]) -> dict[str, str | None]:
    """inbox, sent, archive, trash from SPECIAL-USE attributes, else from common names."""
    folders = [f for f in folders if f.selectable]
    mapping: dict[str, str | None] = dict.fromkeys(ROLES)
    mapping["inbox"] = next((f.name for f in folders if f.name.upper() == "INBOX"), None)
    for role, attribute in SPECIAL_USE.items():
        mapping[role] = next((f.name for f in folders if f.special_use == attribute), None)
        if mapping[role] is None:
            for folder in folders:
                last = folder.name.rsplit(folder.delimiter, 1)[-1] if folder.delimiter else ""
                if (last or folder.name).lower() in _NAME_GUESSES[role]:
                    mapping[role] = folder.name
                    break
    return mapping


def examine(client: IMAPClient, folder: str = "INBOX") -> MailboxStatus:
    """Open ``folder`` read-only (EXAMINE): UIDVALIDITY, UIDNEXT, EXISTS in one round trip."""
    info = client.select_folder(folder, readonly=True)
    uidnext = info.get(b"UIDNEXT")
    return MailboxStatus(
        uidvalidity=int(info.get(b"UIDVALIDITY") or 0),
        uidnext=int(uidnext) if uidnext is not None else None,
        exists=int(info.get(b"EXISTS") or 0),
    )


def fetch_newest(client: IMAPClient, status: MailboxStatus, limit: int) -> list[MessageSummary]:
    """The newest ``limit`` messages of the examined folder, newest first, in one FETCH.

    Sequence numbers ``<exists - limit + 1>:*`` name exactly the newest ``limit`` messages
    whatever gaps expunges left in the UIDs: one round trip, where UID SEARCH then UID FETCH
    would take two. Each response carries the message's UID.
    """
    if status.exists <= 0 or limit <= 0:
        return []
    first = max(1, status.exists - limit + 1)
    data = _fetch(client, f"{first}:*", FETCH_ITEMS, by_uid=False)
    found = [
        summarize(int(item[b"UID"]), item)
        for item in data.values()
        if b"UID" in item and (_HEADER_ITEM in item or _has(item, b"BODY[HEADER"))
    ]
    found.sort(key=lambda m: m.uid, reverse=True)
    return found[:limit]


def fetch_from_uid(client: IMAPClient, first_uid: int) -> list[MessageSummary]:
    """Messages with UID >= ``first_uid`` (one ``UID FETCH first:*``), newest first.

    ``n:*`` always includes the last message even when its UID is below ``n`` (RFC 3501), so
    that one is filtered out here.
    """
    data = _fetch(client, f"{max(1, first_uid)}:*", FETCH_ITEMS, by_uid=True)
    found = [
        summarize(int(uid), item)
        for uid, item in data.items()
        if int(uid) >= first_uid and (_HEADER_ITEM in item or _has(item, b"BODY[HEADER"))
    ]
    found.sort(key=lambda m: m.uid, reverse=True)
    return found


def fetch_flags(client: IMAPClient, first_uid: int, last_uid: int) -> dict[int, tuple[str, ...]]:
    """Flags of the messages still present with UIDs in ``first_uid:last_uid`` (one command)."""
    if last_uid < first_uid:
        return {}
    data = _fetch(client, f"{first_uid}:{last_uid}", ("FLAGS",), by_uid=True)
    return {
        int(uid): _flags(item.get(b"FLAGS", ()))
        for uid, item in data.items()
        if first_uid <= int(uid) <= last_uid and b"FLAGS" in item
    }


# -- parsing ----------------------------------------------------------------------------------


def _has(data: Mapping[bytes, Any], prefix: bytes) -> bool:
    return any(isinstance(k, bytes) and k.upper().startswith(prefix) for k in data)


def _flags(values: Iterable[Any]) -> tuple[str, ...]:
    """Flags as text, without ``\\Recent`` (it belongs to one session, not the message)."""
    return tuple(t for t in (_text(f) for f in values) if t.lower() != "\\recent")


def _items(data: Mapping[bytes, Any], *prefixes: bytes) -> tuple[bytes, ...]:
    """For each prefix, the value of the first FETCH item whose name starts with it (in any
    case): bytes, else ``b""``. One pass over ``data`` whatever the number of prefixes."""
    found: list[bytes | None] = [None] * len(prefixes)
    for key, value in data.items():
        # Most items (UID, FLAGS, ...) match no prefix: one startswith() rules them out.
        if isinstance(key, bytes) and (upper := key.upper()).startswith(prefixes):
            for i, prefix in enumerate(prefixes):
                if found[i] is None and upper.startswith(prefix):
                    found[i] = value if isinstance(value, bytes) else b""
    if None in found:  # rare (an item missing); the common case skips a pass
        found = [b"" if value is None else value for value in found]
    return tuple(found)  # type: ignore[arg-type]  # no None left


def _decode_body(payload: str | bytes, encoding: str, charset: str | None) -> str:
    raw = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else payload
    encoding = encoding.strip().lower()
    if encoding == "base64":
        compact = re.sub(rb"[^A-Za-z0-9+/=]", b"", raw)
        compact = compact[: len(compact) - len(compact) % 4]  # the fetch may cut a group
        try:
            raw = base64.b64decode(compact)
        except (binascii.Error, ValueError):
            raw = b""
    elif encoding == "quoted-printable":
        raw = quopri.decodestring(raw)
    codec = text_codec(charset) or "utf-8"
    try:
        return raw.decode(codec, "replace")
    except (LookupError, UnicodeError):  # e.g. charset=idna raises whatever the errors mode
        return raw.decode("utf-8", "replace")


_HIDDEN = re.compile(r"<(script|style|head|title)\b.*?(</\1\s*>|$)", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>|<[^>]*$")


def html_to_text(markup: str) -> str:
    text = _HIDDEN.sub(" ", markup)
    text = re.sub(r"<!--.*?(-->|$)", " ", text, flags=re.DOTALL)
    return html.unescape(_TAG.sub(" ", text))


def _first_text_part(message: Message) -> tuple[Message | None, bool]:
    """The first text/plain part (else the first text/html one) and whether it is HTML."""
    if not message.is_multipart():  # what walk() would find: the message itself, or nothing
        kind = message.get_content_type()
        if kind in ("text/plain", "text/html") and (
            message.get_content_disposition() != "attachment"
        ):
            return message, kind == "text/html"
        return None, False
    html_part = None
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        if part.get_content_disposition() == "attachment":
            continue
        if kind == "text/plain":
            return part, False
        if kind == "text/html" and html_part is None:
            html_part = part
    return html_part, html_part is not None


def _head(header: bytes) -> bytes:
    """The fetched header block with the blank line that ends it (a server may leave it out)."""
    return header if header.endswith((b"\r\n\r\n", b"\n\n")) else header + b"\r\n"


def _parse(header: bytes, body: bytes) -> Message:
    """The fetched header block and body start as one message, parsed once as compat32 does
    (it keeps raw 8-bit bytes for :mod:`.headers`): :func:`_parse_simple`, else the feed parser."""
    data = _head(header) + body
    return _parse_simple(data) or parse_compat32(data)


#: A header line's start as the feed parser accepts it: a name of printable ASCII but the colon.
_FIELD_NAME = re.compile(r"[\041-\071\073-\176]+:")


def _parse_simple(data: bytes) -> Message | None:
    """``email.message_from_bytes(data, policy=compat32)`` for the common shape, in a third of
    its time (the feed parser cuts the body into lines and joins them again), else None.

    The common shape: CRLF line ends only in the header block, each line ``Name: value`` or
    its folded continuation, then a blank line and a single-part body (not ``multipart/*`` or
    ``message/*``). Headers are split as ``compat32.header_source_parse`` does and the rest is
    the payload. Anything else (an envelope ``From `` line, a continuation first, a line with
    no name, bare LF or CR) is left to the feed parser, defects and all.
    """
    text = data.decode("ascii", "surrogateescape")
    end = text.find("\r\n\r\n")
    if end <= 0 or text[0] in "\r\n":
        return None  # no header block, or one that starts with a blank line
    block = text[:end]  # the header lines, without the last line end
    if block.count("\r") != block.count("\n") or block.count("\r\n") != block.count("\r"):
        return None  # a lone CR or LF: the feed parser splits lines there too
    message = Message()
    name = ""
    value: list[str] = []
    for line in block.split("\r\n"):
        if line[0] in " \t":  # folded: part of the header above
            if not name:
                return None  # a continuation first
            value.append(line)
            continue
        if line.startswith("From ") or _FIELD_NAME.match(line) is None:
            return None
        if name:
            message.set_raw(name, "\r\n".join(value))
        name, first = line.split(":", 1)
        value = [first.lstrip(" \t")]
    message.set_raw(name, "\r\n".join(value))
    if message.get_content_maintype() in ("multipart", "message"):
        return None  # the feed parser reads their parts
    message.set_payload(text[end + 4 :])
    return message


def make_snippet(
    header: bytes, body: bytes, length: int = SNIPPET_LENGTH, *, parsed: Message | None = None
) -> str:
    """About ``length`` characters of the first text part: decoded (base64, quoted-printable,
    charset), HTML reduced to its text, whitespace collapsed. ``body`` may be cut short;
    ``parsed``: the message :func:`summarize` already parsed from them (parsed once)."""
    if not body:
        return ""
    message = parsed if parsed is not None else _parse(header, body)
    if not message.is_multipart() and message.get_content_maintype() == "multipart":
        # No boundary parameter: take the first delimiter line the body starts a part with.
        found = re.search(rb"^--([^\s]{1,70})\r?$", body, re.MULTILINE)
        if found:
            boundary = b'Content-Type: multipart/mixed; boundary="' + found.group(1) + b'"\r\n'
            message = parse_compat32(boundary + _head(header) + body)
    part, is_html = _first_text_part(message)
    if part is None:
        return ""
    # The body as parsed (8-bit bytes surrogate-escaped): get_payload() would decode 8-bit
    # text with the charset already, and fail on one that is no codec.
    payload = getattr(part, "_payload", "")
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogateescape")
    if not isinstance(payload, bytes):
        return ""
    encoding = str(part.get("Content-Transfer-Encoding", "7bit"))
    text = _decode_body(payload, encoding, part.get_content_charset())
    if is_html:
        text = html_to_text(text)
    text = " ".join(clean_text(text).split())
    if len(text) > length:
        cut = text[:length].rsplit(" ", 1)[0] if " " in text[:length] else text[:length]
        text = cut.rstrip() + "…"
    return text


def summarize(uid: int, data: Mapping[bytes, Any]) -> MessageSummary:
    """One message's FETCH data as a :class:`MessageSummary`; never raises: a message that
    cannot be read is kept with what is safe (its UID, flags and arrival date), so one hostile
    message cannot stop every later sync."""
    internal = data.get(b"INTERNALDATE")
    arrived = internal if isinstance(internal, datetime) else None
    try:
        header, body = data.get(_HEADER_ITEM), data.get(_TEXT_ITEM)
        if not (isinstance(header, bytes) and isinstance(body, bytes)):  # spelt otherwise
            header, body = _items(data, b"BODY[HEADER", b"BODY[TEXT]")
        # Parsed once: the headers and the snippet read the same message.
        parsed = _parse(header, body) if body else None
        fields = read_headers(header, arrived, parsed=parsed)  # each header on its own
        return MessageSummary(
            uid=uid,
            message_id=fields.message_id,
            sender=fields.sender,
            subject=fields.subject,
            date=fields.date,
            snippet=make_snippet(header, body, parsed=parsed),
            flags=_flags(data.get(b"FLAGS", ())),
            arrived=arrived,
        )
    except Exception as exc:
        log.warning("message UID %s could not be read (%s); kept without its headers",
                    uid, type(exc).__name__)  # fmt: skip
        try:
            flags = _flags(data.get(b"FLAGS", ()))
        except Exception:
            flags = ()
        return MessageSummary(
            uid=uid, message_id="", sender="", subject="", date=parse_date(None, arrived),
            snippet="", flags=flags, arrived=arrived,
        )  # fmt: skip


__all__ = [
    "FolderInfo", "MailboxStatus", "MessageSummary", "examine", "fetch_flags", "fetch_from_uid",
    "fetch_newest", "list_folders", "make_snippet", "suggest_mapping", "summarize",
]  # fmt: skip


# -- one whole message, for the message page ---------------------------------------------------

#: The most of one message fetched for the message page (bigger ones are cut and say so).
MESSAGE_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class FetchedMessage:
    """One message as the server holds it (``BODY.PEEK[]``: fetching marks nothing as read)."""

    uid: int
    raw: bytes  #: the RFC 5322 bytes, at most ``max_bytes`` of them
    size: int  #: RFC822.SIZE: the whole message's size on the server
    flags: tuple[str, ...]
    arrived: datetime | None  #: INTERNALDATE

    @property
    def truncated(self) -> bool:
        return len(self.raw) < self.size


def fetch_message(
    client: IMAPClient, folder: str, uid: int, max_bytes: int = MESSAGE_MAX_BYTES
) -> FetchedMessage | None:
    """EXAMINE ``folder`` then ``UID FETCH <uid> (FLAGS INTERNALDATE RFC822.SIZE
    BODY.PEEK[]<0.max_bytes>)``: two round trips. ``None`` when the folder does not exist (the
    server answers NO to EXAMINE) or holds no message with that UID; a lost connection raises.
    """
    from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

    try:
        client.select_folder(folder, readonly=True)
    except IMAPClientAbortError:
        raise
    except IMAPClientError:  # NO / BAD: no such folder (or not selectable)
        return None
    items = ("UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", f"BODY.PEEK[]<0.{int(max_bytes)}>")
    data = _fetch(client, str(int(uid)), items, by_uid=True)
    item = data.get(int(uid))
    if item is None:  # "UID FETCH n" of a UID that is gone answers OK with nothing
        return None
    (raw,) = _items(item, b"BODY[")
    internal = item.get(b"INTERNALDATE")
    size = item.get(b"RFC822.SIZE")
    return FetchedMessage(
        uid=int(uid),
        raw=raw,
        size=int(size) if size is not None else len(raw),
        flags=_flags(item.get(b"FLAGS", ())),
        arrived=internal if isinstance(internal, datetime) else None,
    )


__all__ += ["MESSAGE_MAX_BYTES", "FetchedMessage", "fetch_message"]
