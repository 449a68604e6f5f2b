"""Header decoding for synced mail: from the raw bytes a FETCH returns to text people read.

Real-world mail breaks the rules in the same few ways, and none of them may cost a message its
row or the other headers their values. :func:`read_headers` reads each header on its own (one
that cannot be decoded is left empty; the others keep their values) and:

- raw 8-bit bytes (RFC 6532 UTF-8, or a legacy charset nobody declared) are decoded by a
  fallback chain: UTF-8, then the message's charset (``Content-Type: ...; charset=``), then
  Latin-1 (read as Windows-1252 where that defines the byte, as browsers do) - never U+FFFD;
- RFC 2047 encoded words are decoded in their charset; bytes that charset refuses, or a charset
  nobody knows (``=?NONE?B?...?=``, ``=?unknown-8bit?Q?...?=``), go through the same chain, so
  an encoded word is never shown raw. Adjacent words in one charset are joined before decoding
  (mailers split a multi-byte character across two words);
- whitespace follows RFC 2047 section 6.2: between two adjacent encoded words it is dropped
  (folding included), between an encoded word and plain text it is kept;
- From is parsed as an address (``email.policy.default``): RFC 5322 comments are removed from
  the display name (``Pete(A nice \\) chap) <pete(his account)@silly.test>`` is ``Pete
  <pete@silly.test>``); an address with no display name but a comment after it (``root@host
  (Cron Daemon)``, the RFC 822 convention) shows the comment as the name;
- Date tolerates 8-bit comments, comments anywhere and ISO 8601; a date that cannot be read is
  the arrival date (INTERNALDATE).

No Flask, no SQLAlchemy: :mod:`.mailbox` calls this for every fetched message.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.utils
import logging
import quopri
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

log = logging.getLogger(__name__)

#: NUL and other control characters (C0 but whitespace, DEL, C1) and lone surrogates: PostgreSQL
#: refuses NUL in text, and none of them belongs in a subject, a sender or a snippet.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: The longest header line RFC 5322 allows; longer subjects are cut.
MAX_HEADER_TEXT = 998
#: A header field name: printable ASCII except ":" (RFC 5322 ftext). What ``compose`` and
#: ``Draft`` accept in what they send.
HEADER_NAME = re.compile(r"^[!-9;-~]+$")
#: An RFC 2047 encoded word (RFC 2231 language suffix allowed): charset, encoding, text.
_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_ESCAPED = re.compile("[\udc80-\udcff]+")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_COMMENT = re.compile(r"\((?:[^()\\]|\\.)*\)")
_TRAILING_COMMENT = re.compile(r"\(((?:[^()\\]|\\.)*)\)\s*$")
#: Labels mailers use for a superset of what the label names (WHATWG's encoding table).
_SUPERSETS = {
    "gb2312": "gb18030", "gbk": "gb18030", "ks_c_5601-1987": "cp949", "euc-kr": "cp949",
    "iso-8859-8-i": "iso-8859-8", "x-sjis": "shift_jis", "tis-620": "cp874",
    "iso-8859-1": "cp1252", "iso_8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
}  # fmt: skip

T = TypeVar("T")


def clean_text(text: str) -> str:
    """``text`` without control characters (whitespace kept) or lone surrogates."""
    # Every character _CONTROL removes is unprintable (Cc or Cs), so printable text (nearly
    # every header) skips the regex.
    return text if text.isprintable() else _CONTROL.sub("", text)


def text_codec(charset: str | None) -> str | None:
    """The codec for ``charset`` when it names a text encoding, else None (unknown names,
    ``unknown-8bit``, and codecs that are not charsets: base64, zlib, rot13, idna...)."""
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    name = _SUPERSETS.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in ("idna", "punycode"):
        return None
    return info.name


def _strict(raw: bytes, codec: str | None) -> str | None:
    if codec is None:
        return None
    try:
        return raw.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None


def decode_bytes(raw: bytes, declared: str | None = None, charset: str | None = None) -> str:
    """Bytes as text: the ``declared`` charset, else UTF-8, else the message's ``charset``,
    else Windows-1252 / Latin-1 (which decodes anything). Never U+FFFD."""
    if declared is None and raw.isascii():
        return raw.decode("ascii")
    for codec in (text_codec(declared), "utf-8", text_codec(charset)):
        text = _strict(raw, codec)
        if text is not None:
            return text
    return "".join(
        _strict(bytes([b]), "cp1252") or chr(b) for b in raw
    )  # undefined cp1252 bytes (0x81...) as Latin-1


def _repair(text: str, charset: str | None) -> str:
    """Runs of surrogate-escaped bytes (8-bit the parser could not decode) through the chain."""
    return _ESCAPED.sub(
        lambda m: decode_bytes(m.group().encode("utf-8", "surrogateescape"), None, charset), text
    )


def _as_text(value: Any, charset: str | None) -> str:
    """A header value (bytes, or str with surrogate-escaped 8-bit) unfolded, as text."""
    if isinstance(value, bytes):
        text = decode_bytes(value, None, charset)
    else:
        text = _repair(str(value), charset)
    if "\n" in text:  # folded (_FOLD needs a line end): unfolded
        text = _FOLD.sub("", text)
    return text.strip("\r\n")


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        data = payload.encode("ascii")
    except UnicodeError:
        return None
    if encoding in "bB":
        data = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        data += b"=" * (-len(data) % 4)
        try:
            return base64.b64decode(data)
        except (binascii.Error, ValueError):
            return None
    return quopri.decodestring(data, header=True)


def _decode_run(parts: list[bytes], declared: str, charset: str | None) -> str:
    """Adjacent words of one charset: joined (a character may be split across two), else
    each word through the fallback chain."""
    joined = b"".join(parts)
    text = _strict(joined, text_codec(declared))
    if text is None and len(parts) > 1:
        return "".join(decode_bytes(p, declared, charset) for p in parts)
    return text if text is not None else decode_bytes(joined, declared, charset)


def decode_words(text: str, charset: str | None = None) -> str:
    """RFC 2047 encoded words in unstructured text decoded (see the module doc)."""
    if "=?" not in text:  # no encoded word: the loop below would return the text as it is
        return text
    out: list[str] = []
    parts: list[bytes] = []
    run_charset = ""
    previous_word = False
    position = 0
    for match in _WORD.finditer(text):
        between = text[position : match.start()]
        position = match.end()
        data = _word_bytes(match.group(2), match.group(3))
        adjacent = previous_word and not between.strip(" \t\r\n")
        word_charset = match.group(1).lower()
        if parts and (data is None or not adjacent or word_charset != run_charset):
            out.append(_decode_run(parts, run_charset, charset))
            parts = []
        if not adjacent or data is None:
            out.append(between)
        if data is None:  # not decodable: kept as the text it is
            out.append(match.group())
            previous_word = False
            continue
        parts.append(data)
        run_charset, previous_word = word_charset, True
    if parts:
        out.append(_decode_run(parts, run_charset, charset))
    out.append(text[position:])
    return "".join(out)


def _tidy(text: str) -> str:
    return " ".join(clean_text(text).split())[:MAX_HEADER_TEXT]


def decode_header_value(value: Any, charset: str | None = None) -> str:
    """An unstructured header (Subject) as one line of text; never raises."""
    if not value:
        return ""
    text = _as_text(value, charset)
    try:
        text = decode_words(text, charset)
    except Exception as exc:  # keep what we have rather than nothing
        log.info("header words not decoded (%s)", type(exc).__name__)
    return _tidy(text)


def _phrase(text: str) -> str | None:
    """The display name before the first ``<`` outside quotes and comments: comments dropped,
    quoted strings unquoted. None when the first address has no angle address."""
    out: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
            if not depth:
                out.append(char)
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif quoted:
            quoted = char != '"'
            out.append(char if quoted else "")
        elif depth:
            depth += {"(": 1, ")": -1}.get(char, 0)
            out.append("" if depth else " ")
        elif char in '"(<,':
            if char in "<,":  # the first address has an angle address, or has none
                return "".join(out) if char == "<" else None
            quoted, depth = char == '"', int(char == "(")
        else:
            out.append(char)
    return None


#: The common From (``Sender Name <local@domain>`` or a bare address) in plain ASCII: no
#: quotes, comments, encoded words or obsolete syntax, so the RFC 5322 parser (about 0.2 ms a
#: header, most of a sync's decoding) would find exactly these two parts.
_ADDR = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_FROM = re.compile(
    rf"[ \t]*(?:([A-Za-z0-9][A-Za-z0-9 ._'-]*?)[ \t]*<({_ADDR})>|({_ADDR}))[ \t]*\Z"
)


def format_sender(value: Any, charset: str | None = None) -> str:
    """``Name <address>`` (decoded, comments removed), or the address alone, or the decoded
    text when it holds no address."""
    if not value:
        return ""
    text = _as_text(value, charset)
    simple = _SIMPLE_FROM.match(text)
    if simple:  # the parser's answer without the parser (see _SIMPLE_FROM)
        name, address = simple.group(1), simple.group(2) or simple.group(3)
        return _tidy(f"{name} <{address}>") if name else _tidy(address)
    address = ""
    try:  # the address as the RFC 5322 parser reads it (comments and all)
        from email import policy  # see parse_compat32

        header: Any = policy.default.header_factory("From", text)
        addresses = list(getattr(header, "addresses", ()))
        if addresses and addresses[0].username and addresses[0].domain:
            address = _repair(addresses[0].addr_spec, charset)
    except Exception as exc:  # the parser failed on it: show the decoded text instead
        log.info("From not parsed (%s)", type(exc).__name__)
    if not address:
        return decode_header_value(text, charset)
    # The name: the parser keeps spaces between encoded words in a phrase (RFC 2047 drops
    # them) and cannot repair their bytes, so the phrase is decoded here.
    phrase = _phrase(text)
    name = decode_words(phrase, charset) if phrase else ""
    trailing = _TRAILING_COMMENT.search(text) if phrase is None else None
    if trailing:  # "root@host (Cron Daemon)"
        name = decode_words(re.sub(r"\\(.)", r"\1", trailing.group(1)), charset)
    name, address = _tidy(name), _tidy(address)
    return _tidy(f"{name} <{address}>") if name else address


def _without_comments(text: str) -> str:
    previous = None
    while previous != text:
        previous, text = text, _COMMENT.sub(" ", text)
    return " ".join(text.split())


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


#: The Date nearly every mailer writes (RFC 5322 section 3.3, no comments, no obsolete forms):
#: ``[Mon, ]6 Jan 2025 10:00[:00] +0000``. Read here without email.utils, which takes about
#: as long as the rest of a message's headers; anything else goes to :func:`_read_date`.
_MONTHS = {
    name: number for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}  # fmt: skip
_PLAIN_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct"
    r"|Nov|Dec) ([1-9]\d{3}) (\d\d):(\d\d)(?::(\d\d))? ([+-])(\d\d)(\d\d)"
)


def _read_plain_date(text: str) -> datetime | None:
    """:func:`_read_date`'s answer for the common form (see ``_PLAIN_DATE``), else None (the
    caller then asks :func:`_read_date`): what email.utils.parsedate_to_datetime computes for it,
    a zone of ``-0000`` (no zone information) read as UTC."""
    match = _PLAIN_DATE.fullmatch(text)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    offset = (
        0 if zone_hours == zone_minutes == "00" else int(zone_hours) * 3600 + int(zone_minutes) * 60
    )
    if offset >= 86400:  # datetime.timezone refuses it: left to the general path
        return None
    try:
        # The wall-clock time as if it were UTC, then moved by the zone's offset.
        wall = datetime(
            int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second or 0),
            tzinfo=timezone.utc,
        )  # fmt: skip
        return wall - timedelta(seconds=offset if sign == "+" else -offset) if offset else wall
    except (ValueError, OverflowError):  # e.g. 31 Feb, or past datetime's range in UTC
        return None


def _read_date(text: str) -> datetime | None:
    plain = _read_plain_date(text)
    if plain is not None:
        return plain
    for candidate in (text, _without_comments(text)):
        try:
            return _as_utc(email.utils.parsedate_to_datetime(candidate))
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    try:  # "2025-01-06T10:00:00Z" from scripts that never read RFC 5322
        return _as_utc(datetime.fromisoformat(_without_comments(text)))
    except (ValueError, OverflowError):
        return None


def parse_date(value: Any, fallback: datetime | None = None) -> datetime | None:
    """The Date header as an aware UTC datetime (``-0000`` and no zone read as UTC), else
    ``fallback`` (the arrival date) in UTC; never raises."""
    parsed: datetime | None = None
    if value:
        try:
            parsed = _read_date(_as_text(value, None).strip())
        except Exception:  # e.g. 31 Dec 9999 23:59:59 -1200: past datetime's range in UTC
            parsed = None
    if parsed is None and fallback is not None:
        try:
            parsed = _as_utc(fallback)
        except OverflowError:
            parsed = None
    return parsed


@dataclass(frozen=True)
class HeaderFields:
    """The headers a synced message shows, decoded."""

    message_id: str
    sender: str
    subject: str
    date: datetime | None


def _isolated(name: str, read: Callable[[], T], default: T) -> T:
    try:
        return read()
    except Exception as exc:
        log.info("%s header not decoded (%s); left empty", name, type(exc).__name__)
        return default


#: The headers :func:`read_headers` reads, by their lower-case names.
_WANTED = frozenset({"message-id", "from", "subject", "date", "content-type"})


def parse_compat32(data: bytes) -> email.message.Message:
    """``email.message_from_bytes(data, policy=email.policy.compat32)``. compat32 is the
    parser's default policy, so none is passed: importing :mod:`email.policy` loads the modern
    header classes (``email.headerregistry``, ``email._header_value_parser``, about 3 ms), which
    only :func:`format_sender`'s full parse needs, on its first use (issue 13)."""
    return email.message_from_bytes(data)


def _raw_headers(message: email.message.Message) -> dict[str, Any]:
    """The first of each wanted header by lower-case name, as the parser holds it: one pass
    over the headers instead of one per header. :func:`_raw` makes it bytes."""
    found: dict[str, Any] = {}
    for key, value in message.raw_items():
        name = key.lower()
        if name in _WANTED and name not in found:
            found[name] = value
    return found


def _raw(headers: dict[str, Any], name: str) -> bytes | None:
    """The ``name`` header as the bytes it arrived as (folding kept); here, not in
    :func:`_raw_headers`, so a value that cannot be made bytes costs only its own header."""
    value = headers.get(name)
    return None if value is None else str(value).encode("utf-8", "surrogateescape")


def read_headers(
    header: bytes,
    arrived: datetime | None = None,
    *,
    parsed: email.message.Message | None = None,
) -> HeaderFields:
    """Subject, From, Date and Message-ID of a fetched header block; each header decoded on
    its own, so one that cannot be read never blanks the others. Never raises. ``parsed``:
    the same bytes already parsed (compat32) by the caller, so they are parsed once."""
    message = parsed if parsed is not None else parse_compat32(header or b"")
    no_headers: dict[str, Any] = {}
    raw = _isolated("headers", lambda: _raw_headers(message), no_headers)
    # No Content-Type: no charset, which get_content_charset would find by another scan.
    charset = (
        _isolated("Content-Type", lambda: text_codec(message.get_content_charset()), None)
        if "content-type" in raw
        else None
    )
    return HeaderFields(
        message_id=_isolated(
            "Message-ID", lambda: decode_header_value(_raw(raw, "message-id"), charset), ""
        ),
        sender=_isolated("From", lambda: format_sender(_raw(raw, "from"), charset), ""),
        subject=_isolated(
            "Subject", lambda: decode_header_value(_raw(raw, "subject"), charset), ""
        ),
        date=_isolated(
            "Date", lambda: parse_date(_raw(raw, "date"), arrived), parse_date(None, arrived)
        ),
    )


__all__ = [
    "MAX_HEADER_TEXT",
    "HeaderFields",
    "parse_compat32",
    "clean_text",
    "decode_bytes",
    "decode_header_value",
    "decode_words",
    "format_sender",
    "parse_date",
    "read_headers",
    "text_codec",
]
