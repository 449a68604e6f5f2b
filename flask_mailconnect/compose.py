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

import copy
import email
import email.policy
import functools
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.errors import HeaderDefect, NonASCIILocalPartDefect, ObsoleteHeaderDefect
from email.message import EmailMessage, Message, MIMEPart
from email.utils import format_datetime, formataddr, getaddresses, make_msgid
from typing import Any, cast

from email_validator import EmailNotValidError, validate_email

from .exceptions import InvalidMessage
from .signatures import sanitize_signature, signature_to_text

RECIPIENT_HEADERS = ("To", "Cc", "Bcc")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ":" (RFC 5322 ftext)
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_BODY_CLOSE = re.compile(r"</body\s*>", re.IGNORECASE)
#: Marks where the signature begins (RFC 3676 "-- " line in text; a class in HTML).
TEXT_DELIMITER = "\n\n-- \n"
HTML_CLASS = "mailconnect-signature"


@dataclass(frozen=True)
class Prepared:
    """A message ready to go: envelope, the bytes SMTP transmits (no Bcc), and the bytes kept
    in the Sent folder and handed to Graph (with Bcc, as mail clients keep it)."""

    message: EmailMessage
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
        if not _HEADER_NAME.match(name or ""):
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
    new = copy.copy(part)
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


def _normalize(address: str, field: str) -> str:
    try:
        return validate_email(address, check_deliverability=False, allow_smtputf8=True).normalized
    except EmailNotValidError as exc:
        raise InvalidMessage(
            f"{field}: {address!r} is not a valid address ({exc}).", field=field
        ) from None


def parse_recipients(message: EmailMessage) -> list[str]:
    """The unique recipient addresses in To, Cc, Bcc order.

    Strict: any defect the RFC 5322 parser reports (other than obsolete-but-valid syntax) or an
    address email-validator refuses raises :class:`InvalidMessage`.
    """
    seen: dict[str, str] = {}
    for field in RECIPIENT_HEADERS:
        for header in message.get_all(field) or []:
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
            if len([a for _, a in getaddresses([str(header)]) if a]) != len(addresses):
                raise InvalidMessage(f"{field}: malformed address list.", field=field)
            for address in addresses:
                if not address.addr_spec or not address.domain:
                    raise InvalidMessage(f"{field}: an address is incomplete.", field=field)
                normalized = _normalize(address.addr_spec, field)
                seen.setdefault(normalized.lower(), normalized)
    if not seen:
        raise InvalidMessage("The message has no recipient (To, Cc or Bcc).", field="To")
    return list(seen.values())


def _from_header(message: EmailMessage, account_email: str, display_name: str) -> str:
    account_address = account_email.strip()  # validated when the account was connected
    existing = message.get_all("From") or []
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


def _domain(address: str) -> str:
    domain = address.rpartition("@")[2].strip().rstrip(".")
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain.lower()


@functools.lru_cache(maxsize=64)
def _signature_texts(signature_html: str, signature_text: str) -> tuple[str, str]:
    clean_html = sanitize_signature(signature_html or "")
    text = (signature_text or "").strip() or signature_to_text(clean_html)
    return clean_html, text


def _set_text(part: MIMEPart, content: str, subtype: str, *, root: bool) -> None:
    params = {k: v for k, v in (part.get_params(header="content-type") or [])[1:]}
    params.pop("charset", None)
    had_version = "MIME-Version" in part
    part.set_content(content, subtype=subtype, charset="utf-8", params=params)
    if not root and not had_version:
        del part["MIME-Version"]  # set_content adds it; only the top level carries it


def add_signature(message: EmailMessage, signature_html: str, signature_text: str) -> None:
    """Append the signature to the HTML body and the plain-text body (in place)."""
    clean_html, text = _signature_texts(signature_html, signature_text)
    if not clean_html and not text:
        return
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    if html_part is not None and html_part.get_content_type() == "text/html":
        html_sig = clean_html or "<br>".join(
            re.sub(r"[&<>\"]", lambda m: f"&#{ord(m.group())};", line) for line in text.splitlines()
        )
        block = f'<div class="{HTML_CLASS}">-- <br>{html_sig}</div>'
        body = html_part.get_content()
        closes = list(_BODY_CLOSE.finditer(body))
        if closes:
            at = closes[-1].start()
            body = body[:at] + block + body[at:]
        else:
            body = body + block
        _set_text(html_part, body, "html", root=html_part is message)
    if text_part is not None and text_part.get_content_type() == "text/plain" and text:
        body = text_part.get_content().rstrip("\r\n")
        _set_text(
            text_part, body + TEXT_DELIMITER + text + "\n", "plain", root=text_part is message
        )


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
    from_value = _from_header(msg, account_email, display_name)
    recipients = parse_recipients(msg)
    del msg["From"]
    msg["From"] = from_value
    # Headers that would name another sender than the account: Sender, Return-Path and the
    # Resent-* block (which mail clients show as who sent it).
    impostors = {k for k in msg.keys() if k.lower().startswith("resent-")}  # noqa: SIM118
    for name in impostors | {"Sender", "Return-Path"}:
        del msg[name]
    if msg["Date"] is None:
        msg["Date"] = format_datetime(now or datetime.now(timezone.utc))
    message_id = str(msg["Message-ID"] or "").strip()
    if not message_id:
        message_id = make_msgid(domain=_domain(account_email))
        msg["Message-ID"] = message_id
    if signature_html or signature_text:
        add_signature(msg, signature_html, signature_text)
    envelope_from = account_email.strip()
    smtputf8 = not all(a.isascii() for a in [envelope_from, *recipients])
    policy = email.policy.SMTPUTF8 if smtputf8 else email.policy.SMTP
    if msg["Bcc"] is not None:
        full = msg.as_bytes(policy=policy)
        del msg["Bcc"]  # never transmitted over SMTP
        smtp_bytes = msg.as_bytes(policy=policy)
    else:
        full = smtp_bytes = msg.as_bytes(policy=policy)
    return Prepared(
        message=msg,
        message_id=message_id,
        envelope_from=envelope_from,
        recipients=recipients,
        smtp_bytes=smtp_bytes,
        full_bytes=full,
        smtputf8=smtputf8,
    )
