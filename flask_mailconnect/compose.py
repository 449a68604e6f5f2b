"""Turn a host's :class:`~email.message.EmailMessage` into what an account sends.

:func:`prepare` works on a copy (the host's object is never changed) and:

* refuses a line break (CR or LF) in any header value and a malformed header name;
* sets From to the account's address and display name (a From naming another address is
  refused; the same address is accepted and rewritten);
* parses To, Cc and Bcc strictly (the RFC 5322 parser's defects, then email-validator on every
  address), dedupes them across the three headers, and removes Bcc from what SMTP transmits;
  a non-ASCII local part (``ünïcode@example.org``) is valid: the message then needs SMTPUTF8
  (``Prepared.smtputf8``) and is written with UTF-8 headers;
* sets Date and Message-ID when missing (Message-ID on the account's domain);
* appends the account's signature, sanitised again with nh3 at send time, to the HTML body and
  to the plain-text body (a plain message gets the text signature).
"""

from __future__ import annotations

import email
import email.policy
import functools
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email import headerregistry
from email.errors import HeaderDefect, NonASCIILocalPartDefect, ObsoleteHeaderDefect
from email.generator import BytesGenerator
from email.message import EmailMessage, Message, MIMEPart
from email.policy import Policy
from email.utils import formataddr, getaddresses
from typing import Any, cast

from .compose_parts import envelope, line_endings, own_headers, unique_recipients
from .exceptions import InvalidMessage
from .signatures import sanitize_signature, signature_to_text
from .transport.headers import HEADER_NAME

RECIPIENT_HEADERS = ("To", "Cc", "Bcc")
#: Headers prepare removes: From (set again from the account), Sender and Return-Path (with
#: the Resent-* block, matched by prefix).
REPLACED_HEADERS = frozenset({"from", "sender", "return-path"})
_WANTED = ("from", "to", "cc", "bcc", "date", "message-id")  # what prepare reads
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
#: A header that is one bare dot-atom address and nothing else: both parsers read exactly that
#: one address, so the cross-check in parse_recipients has nothing to find (it costs ~40% of
#: parse_recipients, issue 13).
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)
#: Marks where the signature begins (RFC 3676 "-- " line in text; a class in HTML).
TEXT_DELIMITER = "\n\n-- \n"
HTML_CLASS = "mailconnect-signature"


@dataclass(frozen=True)
class Prepared:
    """A message ready to go: envelope, the bytes SMTP transmits (no Bcc), and the bytes kept
    in the Sent folder and handed to Graph (with Bcc, as mail clients keep it). ``message``:
    the completed EmailMessage, None for a Draft written directly (compose_draft.py)."""

    message: EmailMessage | None
    message_id: str
    envelope_from: str
    recipients: list[str]
    smtp_bytes: bytes
    full_bytes: bytes
    smtputf8: bool


def _check_headers(message: Message) -> None:
    """Refuse bad header names and line breaks in header values, in every MIME part (a part's
    Content-Disposition filename is a header too)."""
    for part in message.walk():
        _check_part_headers(part)


def _check_part_headers(message: Message) -> None:
    for name, value in message.raw_items():
        if not HEADER_NAME.match(name or ""):
            raise InvalidMessage(f"Header name {name!r} is not allowed.", field=str(name))
        text = _FOLD.sub(" ", str(value))  # folding of a parsed message is fine
        if "\r" in text or "\n" in text or "\x00" in text:
            raise InvalidMessage(
                f"The {name} header contains a line break, which is not allowed.", field=name
            )


def _clone(part: Message) -> Any:
    """A copy sharing the immutable pieces: new header lists and part lists all the way down, so
    changing headers or setting a part's content never touches the host's object (deepcopy
    would also copy every header object and the policy: ~1 ms a message)."""
    # copy.copy of a Message (no __copy__ or __setstate__) without __reduce_ex__ (1/3 of it).
    new = object.__new__(type(part))
    new.__dict__.update(part.__dict__)
    new._headers = list(part._headers)  # type: ignore[attr-defined]
    if part.is_multipart():
        parts: list[Message] = list(part.get_payload())  # type: ignore[arg-type]
        new._payload = [_clone(p) for p in parts]  # type: ignore[attr-defined]
    return new


def _as_email_message(message: Message) -> EmailMessage:
    """A copy with the default policy (EmailMessage API: get_body, structured headers)."""
    if isinstance(message, EmailMessage) and message.policy == email.policy.default:
        return cast(EmailMessage, _clone(message))
    if not isinstance(message, Message):
        raise TypeError("send() takes an email.message.EmailMessage")
    raw = message.as_bytes(policy=email.policy.compat32.clone(linesep="\r\n"))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parse_recipients(message: EmailMessage) -> list[str]:
    """The unique recipient addresses in To, Cc, Bcc order.

    Strict: any defect the RFC 5322 parser reports (other than obsolete-but-valid syntax) or an
    address email-validator refuses raises :class:`InvalidMessage`.
    """
    return recipients_in({field: message.get_all(field) or [] for field in RECIPIENT_HEADERS})


def recipients_in(headers: dict[str, list[Any]]) -> list[str]:
    """:func:`parse_recipients` over To, Cc and Bcc already fetched (header objects)."""
    return unique_recipients(_addresses(headers))


def _addresses(headers: dict[str, list[Any]]) -> Iterator[tuple[str, str]]:
    """(header, address) of each address in To, Cc and Bcc, each header refused when either
    parser finds it malformed."""
    for field in RECIPIENT_HEADERS:
        for header in headers[field]:
            # A non-ASCII local part is no defect with SMTPUTF8 (RFC 6531); email-validator
            # still checks every address strictly below.
            defects = [
                d for d in getattr(header, "defects", ())
                if isinstance(d, HeaderDefect)
                and not isinstance(d, (ObsoleteHeaderDefect, NonASCIILocalPartDefect))
            ]  # fmt: skip
            addresses = getattr(header, "addresses", None)
            if defects or addresses is None:
                raise InvalidMessage(f"{field}: malformed address list.", field=field)
            # Cross-check with the other parser: both must see the same number of addresses.
            text = str(header)
            plain = len(addresses) == 1 and _PLAIN_ADDRESS.fullmatch(text) is not None
            if not plain and len([a for _, a in getaddresses([text]) if a]) != len(addresses):
                raise InvalidMessage(f"{field}: malformed address list.", field=field)
            for address in addresses:
                if not address.addr_spec or not address.domain:
                    raise InvalidMessage(f"{field}: an address is incomplete.", field=field)
                yield field, address.addr_spec


def from_header(existing: list[Any], account_email: str, display_name: str) -> str:
    """The From to send with, given the message's own From headers (header objects)."""
    account_address = account_email.strip()  # validated when the account was connected
    if len(existing) > 1:
        raise InvalidMessage("The message has more than one From header.", field="From")
    if existing:
        addresses: tuple[Any, ...] = tuple(getattr(existing[0], "addresses", ()))
        if len(addresses) != 1 or not addresses[0].addr_spec:
            raise InvalidMessage("From must name exactly one address.", field="From")
        given = addresses[0].addr_spec
        if given.lower() != account_address.lower():
            raise InvalidMessage(
                f"From is {given}, but this account sends as {account_address}.", field="From"
            )
    return formataddr((display_name, account_address)) if display_name else account_address


# -- writing the bytes ---------------------------------------------------------------------

#: Header classes whose text is a function of the value's own text (decoded == the parse
#: tree's text): their folded form can be cached by name and value.
_CACHEABLE = (
    headerregistry.ParameterizedMIMEHeader,
    headerregistry.ContentTransferEncodingHeader,
    headerregistry.MIMEVersionHeader,
    headerregistry.MessageIDHeader,
)
_FOLDED: dict[tuple[int, str, str], bytes] = {}
_FOLDED_MAX = 512


def is_plain(text: str) -> bool:
    """Printable ASCII with no encoded word: written as it is when it fits one line."""
    return text.isascii() and text.isprintable() and "=?" not in text


def _fold(policy: Policy, name: str, value: Any) -> bytes:
    """``policy.fold_binary(name, value)`` without refolding what needs none (105 us a message
    for the handful of headers a message has, issue 13). Only short printable-ASCII values of
    header classes whose folded form is then the text itself take the shortcut; everything else
    (long, non-ASCII, encoded words, display names with specials) is folded by the policy."""
    limit = policy.max_line_length or 78
    if type(value) is str:  # source text: the policy writes it as it is, or folds it
        if len(name) + 2 + len(value) <= limit and value.isascii() and value.isprintable():
            # What fold_binary writes for a short one-line value (refold_source="long"):
            # "name: value" and the line ending (our From, Date and Message-ID).
            return f"{name}: {value}{policy.linesep}".encode("ascii")
        return policy.fold_binary(name, value)
    if not hasattr(value, "name"):  # not a header object (the policy knows what to do)
        return policy.fold_binary(name, value)
    text = str(value)
    if len(name) + 2 + len(text) <= limit and is_plain(text):
        if isinstance(value, headerregistry.UnstructuredHeader):
            return f"{name}: {text}\r\n".encode("ascii")
        if isinstance(value, headerregistry.AddressHeader) and all(
            g.display_name is None and all(not a.display_name for a in g.addresses)
            for g in value.groups
        ):
            return f"{name}: {text}\r\n".encode("ascii")
        if isinstance(value, _CACHEABLE):
            # The name picks the header class (the registry makes a new class object per
            # header, so the type itself cannot be part of the key).
            key = (id(policy), name, text)
            folded = _FOLDED.get(key)
            if folded is None:
                folded = policy.fold_binary(name, value)  # type: ignore[arg-type]
                if len(_FOLDED) >= _FOLDED_MAX:
                    _FOLDED.clear()
                _FOLDED[key] = folded
            return folded
    return policy.fold_binary(name, value)


class _Generator(BytesGenerator):
    """The email package's generator with :func:`_fold` for headers; bodies are unchanged."""

    def _write_headers(self, msg: Message) -> None:
        policy = cast(Policy, self.policy)
        for name, value in msg.raw_items():
            self._fp.write(_fold(policy, name, value))  # type: ignore[attr-defined]
        self.write(self._NL)  # type: ignore[attr-defined]


def _single_part_bytes(msg: EmailMessage, policy: Policy) -> bytes | None:
    """What :class:`_Generator` writes for a single-part text message (most bulk mail): the
    folded headers, a blank line, the payload with each line ending made the policy's. None
    when the generator does more: multipart, not text (a multipart type with a str payload
    keeps its line endings), a payload beyond ASCII and surrogate escapes, cte_type 7bit."""
    payload = msg._payload  # type: ignore[attr-defined]
    if not isinstance(payload, str) or policy.cte_type != "8bit":
        return None
    if msg.get_content_maintype() != "text":
        return None
    try:
        # ASCII, or 8-bit bytes kept as surrogate escapes: the generator writes them back as
        # they are (BytesGenerator._handle_text); anything else takes the generator's path.
        data = payload.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return None
    linesep = policy.linesep.encode("ascii")
    head = b"".join([_fold(policy, name, value) for name, value in msg.raw_items()])
    return head + linesep + line_endings(data, linesep)


def _as_bytes(msg: EmailMessage, policy: Policy) -> bytes:
    direct = _single_part_bytes(msg, policy)
    if direct is not None:
        return direct
    buffer = io.BytesIO()
    _Generator(buffer, mangle_from_=False, policy=policy).flatten(msg)
    return buffer.getvalue()


_FIELD_NAME = re.compile(rb"^([!-9;-~]+):")


def _without_bcc(data: bytes) -> bytes:
    """``data`` with the top-level Bcc header (and its folded continuation lines) removed:
    the same bytes as writing the message again without it, for half the cost."""
    end = data.find(b"\r\n\r\n")
    head, body = (data, b"") if end < 0 else (data[: end + 2], data[end + 2 :])
    kept: list[bytes] = []
    dropping = False
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        field = _FIELD_NAME.match(line)
        dropping = field is not None and field.group(1).lower() == b"bcc"
        if not dropping:
            kept.append(line)
    return b"".join(kept) + body


@functools.lru_cache(maxsize=64)
def signature_texts(signature_html: str, signature_text: str) -> tuple[str, str]:
    clean_html = sanitize_signature(signature_html or "")
    text = (signature_text or "").strip() or signature_to_text(clean_html)
    return clean_html, text


def _set_text(
    part: MIMEPart, content: str, subtype: str, *, root: bool, current: str | None
) -> None:
    """Set a text part's content; ``current``: its :func:`_plain_utf8` encoding."""
    payload = replaced_payload(content, current, part.policy.max_line_length or 78)
    if payload is not None:
        part.set_payload(payload)
        return
    params = {k: v for k, v in (part.get_params(header="content-type") or [])[1:]}
    params.pop("charset", None)
    had_version = "MIME-Version" in part
    part.set_content(content, subtype=subtype, charset="utf-8", params=params)
    if not root and not had_version:
        del part["MIME-Version"]  # set_content adds it; only the top level carries it


def _plain_utf8(part: MIMEPart) -> str | None:
    """The part's transfer encoding when it is UTF-8 text sent as it is (``7bit``/``8bit``),
    read from the parsed header objects (no reparse); None otherwise."""
    params = getattr(part.get("Content-Type"), "params", None)
    if params is None or str(params.get("charset", "")).lower() != "utf-8":
        return None
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    return cte if cte in ("7bit", "8bit") else None


def _body_text(part: MIMEPart, current: str | None) -> str:
    """``part.get_content()`` ("" with no payload), read straight from the payload for UTF-8
    7bit/8bit text (the stored text, 8-bit bytes as surrogate escapes, decoded as UTF-8).
    ``current``: the part's :func:`_plain_utf8` encoding."""
    payload = part._payload  # type: ignore[attr-defined]
    if payload is None:  # no body yet (a signature then becomes the body)
        return ""
    if isinstance(payload, str) and current:
        try:
            return payload.encode("ascii", "surrogateescape").decode("utf-8")
        except UnicodeError:
            pass  # not valid UTF-8: get_content replaces what it cannot decode
    return str(part.get_content())


def replaced_payload(content: str, current: str | None, limit: int) -> str | None:
    """The payload swapping the body of a UTF-8 7bit/8bit text part (``current``) for
    ``content`` when ``set_content`` would write the very same headers (charset utf-8, the same
    transfer encoding): only the payload changes. ``set_content`` rebuilds and reparses every
    MIME header (185 us a message, issue 13). The encoding is chosen by set_content's own rule:
    lines within ``limit``, ``7bit`` when ASCII, else ``8bit``; anything else (long lines,
    quoted-printable, base64, another charset): None, for ``set_content``."""
    if current is None:
        return None
    # set_content splits the encoded bytes into lines: at CR and LF only, not at what
    # str.splitlines also breaks (form feed, U+0085, U+2028...), which stay in the text
    lines = content.encode("utf-8").splitlines()
    if any(len(line) > limit for line in lines):
        return None
    wanted = "7bit" if content.isascii() else "8bit"
    if wanted != current:
        return None
    # What set_content stores: the lines joined by "\n" plus one, 8-bit as surrogate escapes.
    return (b"\n".join(lines) + b"\n").decode("ascii", "surrogateescape")


def _bodies(message: EmailMessage) -> tuple[MIMEPart | None, MIMEPart | None]:
    """``get_body(("html",))`` and ``get_body(("plain",))``; a single-part message (most bulk
    mail) answered directly, by get_body's own rule: the message itself when it is not an
    attachment and its type is the one asked for."""
    if message.is_multipart():
        return message.get_body(("html",)), message.get_body(("plain",))
    kind = None if message.is_attachment() else message.get_content_type()
    return (message if kind == "text/html" else None), (message if kind == "text/plain" else None)


def signed_html(body: str, clean_html: str, text: str) -> str:
    """``body`` with the signature block before its last ``</body>`` (or at its end)."""
    html_sig = clean_html or "<br>".join(
        re.sub(r"[&<>\"]", lambda m: f"&#{ord(m.group())};", line) for line in text.splitlines()
    )
    closes = list(_BODY_CLOSE.finditer(body))
    at = closes[-1].start() if closes else len(body)
    return f'{body[:at]}<div class="{HTML_CLASS}">-- <br>{html_sig}</div>{body[at:]}'


def add_signature(message: EmailMessage, signature_html: str, signature_text: str) -> None:
    """Append the signature to the HTML body and the plain-text body (in place)."""
    clean_html, text = signature_texts(signature_html, signature_text)
    if not clean_html and not text:
        return
    html_part, text_part = _bodies(message)
    if html_part is not None and html_part.get_content_type() == "text/html":
        current = _plain_utf8(html_part)
        body = signed_html(_body_text(html_part, current), clean_html, text)
        _set_text(html_part, body, "html", root=html_part is message, current=current)
    if text_part is not None and text_part.get_content_type() == "text/plain" and text:
        current = _plain_utf8(text_part)
        body = _body_text(text_part, current).rstrip("\r\n")
        _set_text(
            text_part, body + TEXT_DELIMITER + text + "\n", "plain",
            root=text_part is message, current=current,
        )  # fmt: skip


def prepare(
    message: Message,
    *,
    account_email: str,
    display_name: str = "",
    signature_html: str = "",
    signature_text: str = "",
    now: datetime | None = None,
) -> Prepared:
    """Check and complete ``message`` for sending from ``account_email`` (see the module doc)."""
    _check_headers(message)
    msg = _as_email_message(message)
    # One pass over the headers instead of a lookup per question (each get, `in` or del scans
    # and lowercases every header name: 12 scans a message, issue 13).
    wanted: dict[str, list[Any]] = {k: [] for k in _WANTED}
    kept: list[tuple[str, Any]] = []
    for name, value in msg._headers:  # type: ignore[attr-defined]
        lowered = name.lower()
        found = wanted.get(lowered)
        if found is not None:
            found.append((name, value))
        # From is replaced; Sender, Return-Path and the Resent-* block would name another
        # sender than the account (mail clients show them as who sent it).
        if lowered not in REPLACED_HEADERS and not lowered.startswith("resent-"):
            kept.append((name, value))

    def fetched(field: str) -> list[Any]:  # what get_all returns: header objects
        return [msg.policy.header_fetch_parse(n, v) for n, v in wanted[field]]

    from_value = from_header(fetched("from"), account_email, display_name)
    recipients = recipients_in({"To": fetched("to"), "Cc": fetched("cc"), "Bcc": fetched("bcc")})
    given_id = str(fetched("message-id")[0]).strip() if wanted["message-id"] else ""
    if wanted["message-id"] and not given_id:  # given blank: ours replaces it (not two)
        kept = [h for h in kept if h[0].lower() != "message-id"]
    added, message_id = own_headers(
        from_value, has_date=bool(wanted["date"]), message_id=given_id,
        account_email=account_email, now=now,
    )  # fmt: skip
    msg._headers = kept + added  # type: ignore[attr-defined]
    if signature_html or signature_text:
        add_signature(msg, signature_html, signature_text)
    envelope_from, smtputf8, policy = envelope(account_email, recipients)
    full = _as_bytes(msg, policy)
    if wanted["bcc"]:
        del msg["Bcc"]  # never transmitted over SMTP
        smtp_bytes = _without_bcc(full)
    else:
        smtp_bytes = full
    return Prepared(
        message=msg, message_id=message_id, envelope_from=envelope_from, recipients=recipients,
        smtp_bytes=smtp_bytes, full_bytes=full, smtputf8=smtputf8,
    )  # fmt: skip
