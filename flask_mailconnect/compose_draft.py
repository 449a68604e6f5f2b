"""Write a :class:`~flask_mailconnect.drafts.Draft` straight to the bytes :func:`compose.prepare`
writes for ``draft.as_email_message()``, without building that message (issue 13).

The email package spends most of a bulk send's time on header objects: one per header set on
an ``EmailMessage`` (about 13 us each, 11 a message), then prepare copies the message and
writes it again. Here a header the package would store as an object whose folded form is its
own text (printable ASCII, no encoded word, in an unstructured or a plain-address header) is
kept as text, and the body is encoded once by ``set_content``'s own encoder; everything else
(non-ASCII, encoded words, display names, long values, Date and Message-ID given by the host)
becomes the header object the package would make, folded by the same :func:`compose._fold`.

The guarantees are compose.py's, from its own functions: From from the account
(:func:`compose.from_header`), recipients checked strictly and deduplicated
(:func:`compose.recipients_in`, or for bare addresses :func:`compose_parts.unique_recipients`
alone, its last step), From, Date and Message-ID as stored (:func:`compose_parts.own_headers`),
the signature (:func:`compose.signature_texts`, :func:`compose.signed_html`,
:func:`compose.replaced_payload`), the envelope and SMTPUTF8 only when an address needs it
(:func:`compose_parts.envelope`), Bcc only in ``full_bytes``. The Draft refused line breaks and
bad header names when it was built.

A Draft with attachments goes through ``as_email_message`` and :func:`compose.prepare`.
``tests/sending_peers/test_drafts.py`` compares the two paths over a corpus of shapes and
fuzzed text.
"""

from __future__ import annotations

import email.policy
import functools
import random
import sys
from collections.abc import Callable
from datetime import datetime

# set_content's own encoder (private, stable since Python 3.6): the transfer encoding and
# payload set_content chooses, without the MIME headers it builds and parses around them.
from email.contentmanager import _encode_text  # type: ignore[attr-defined]
from email.headerregistry import HeaderRegistry, UnstructuredHeader
from email.message import Message
from email.policy import Policy
from typing import Any, cast

from .compose import (
    _PLAIN_ADDRESS,
    RECIPIENT_HEADERS,
    REPLACED_HEADERS,
    TEXT_DELIMITER,
    Prepared,
    _fold,
    from_header,
    is_plain,
    prepare,
    recipients_in,
    replaced_payload,
    signature_texts,
    signed_html,
)
from .compose_parts import envelope, line_endings, own_headers, unique_recipients
from .drafts import Draft

_DEFAULT = email.policy.default  # the policy an EmailMessage (and set_content) works under
_FACTORY = cast(HeaderRegistry, _DEFAULT.header_factory)
#: Headers the registry parses into structure (dates, message ids, addresses, MIME): their
#: text may be rewritten, so they always become header objects.
_STRUCTURED = frozenset(
    name for name, kind in _FACTORY.registry.items() if not issubclass(kind, UnstructuredHeader)
)
_TEXT_TYPE = 'text/{}; charset="utf-8"'
#: A boundary as the generator makes them: 15 "=", a 19-digit random number, "==".
_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))
_PLACEHOLDER = "=" * 15 + "0" * _BOUNDARY_DIGITS + "=="


def prepare_message(
    message: Message | Draft,
    *,
    account_email: str,
    display_name: str = "",
    signature_html: str = "",
    signature_text: str = "",
    now: datetime | None = None,
) -> Prepared:
    """:func:`compose.prepare` for a message or a :class:`Draft` (written directly unless it
    has attachments)."""
    if isinstance(message, Draft):
        if not message.attachments:
            return prepare_draft(
                message, account_email=account_email, display_name=display_name,
                signature_html=signature_html, signature_text=signature_text, now=now,
            )  # fmt: skip
        message = message.as_email_message()
    return prepare(
        message, account_email=account_email, display_name=display_name,
        signature_html=signature_html, signature_text=signature_text, now=now,
    )  # fmt: skip


def _stored(name: str, value: str) -> Any:
    """What ``msg[name] = value`` stores, as :func:`compose._fold` writes it: the text itself
    when _fold writes the text and the header object alike (printable ASCII in an
    unstructured header), else the header object."""
    if is_plain(value) and name.lower() not in _STRUCTURED:
        return value
    return _FACTORY(name, value)


def _address_header(name: str, addresses: tuple[str, ...]) -> Any:
    """An address header as it is stored: text when every entry is one bare address (the
    header object's text is then the same, and _fold writes it as it is), else the object."""
    value = ", ".join(addresses)
    if all(_PLAIN_ADDRESS.fullmatch(address) for address in addresses):
        return value
    return _FACTORY(name, value)


def _recipients(fields: dict[str, tuple[str, ...]], stored: dict[str, Any]) -> list[str]:
    """compose.recipients_in over To, Cc and Bcc (``fields``: their addresses; ``stored``: as
    :func:`_address_header` stores them). When all are bare addresses, each is checked as
    recipients_in checks one (email-validator), without a header object."""
    if any(type(value) is not str for value in stored.values()):  # header objects are str
        objects = {f: v if type(v) is not str else _FACTORY(f, v) for f, v in stored.items()}
        return recipients_in({f: [objects[f]] if f in objects else [] for f in RECIPIENT_HEADERS})
    return unique_recipients([(f, a) for f in RECIPIENT_HEADERS for a in fields.get(f, ())])


def _body(content: str, sign: Callable[[str], str] | None) -> tuple[str, str, bool]:
    """(transfer encoding, payload, rewritten) of a text part set to ``content`` and then
    signed as compose.add_signature signs it: ``sign`` maps the part's decoded text to the
    signed text (None: not signed). ``rewritten``: set_content ran again (compose then moves
    the part's Content-* headers after the others). The body is encoded once: the signed one
    (when signed), or ``content``."""
    if sign is None:
        cte, payload = _encode_text(content, "utf-8", None, _DEFAULT)
        return cte, payload, False
    # compose._body_text: the decoded payload, its lines joined by "\n" plus one, whatever the
    # transfer encoding set_content chose for ``content``.
    lines = content.encode("utf-8").splitlines()
    decoded = b"\n".join(lines) + b"\n"
    # That encoding, by _encode_text's rule: 7bit or 8bit when every line fits, else
    # quoted-printable or base64 (None here: compose's replaced_payload then declines).
    limit = _DEFAULT.max_line_length or 78
    fits = max(map(len, lines), default=0) <= limit
    current = ("7bit" if decoded.isascii() else "8bit") if fits else None
    signed = sign(decoded.decode("utf-8"))
    replaced = replaced_payload(signed, current, limit)
    if replaced is not None:
        return cast(str, current), replaced, False
    cte, payload = _encode_text(signed, "utf-8", None, _DEFAULT)
    return cte, payload, True


def _payload_bytes(payload: str) -> bytes:
    """What the generator writes for a payload: 8-bit bytes back from surrogate escapes, each
    line ending CRLF."""
    return line_endings(payload.encode("ascii", "surrogateescape"), b"\r\n")


@functools.lru_cache(maxsize=4)
def _multipart_template(policy: Policy) -> bytes:
    """The folded multipart Content-Type with a placeholder boundary of the real one's shape
    (same length, same characters: folded alike)."""
    value = f'multipart/alternative; boundary="{_PLACEHOLDER}"'
    return _fold(policy, "Content-Type", _FACTORY("Content-Type", value))


def _multipart_type(policy: Policy, boundary: str) -> bytes:
    if len(boundary) == len(_PLACEHOLDER):
        return _multipart_template(policy).replace(_PLACEHOLDER.encode(), boundary.encode())
    value = f'multipart/alternative; boundary="{boundary}"'
    return _fold(policy, "Content-Type", _FACTORY("Content-Type", value))


def _boundary(parts: bytes) -> str:
    """A boundary as the generator picks one (``Generator._make_boundary``): the same random
    draw, and while a candidate is found in the parts, the next of ``X.0``, ``X.1``... (the
    stdlib's suffixes). Found here means anywhere in the parts, not only as a whole line: the
    stdlib's own line check never matches a CRLF line (its ``$`` stops before LF, not
    CR), so with the SMTP policies it keeps a boundary a body line already holds."""
    token = random.randrange(sys.maxsize)
    boundary = candidate = "=" * 15 + f"{token:0{_BOUNDARY_DIGITS}d}" + "=="
    counter = 0
    while f"--{candidate}".encode() in parts:
        candidate = f"{boundary}.{counter}"
        counter += 1
    return candidate


def _part(policy: Policy, headers: list[tuple[str, str]], payload: str) -> bytes:
    head = b"".join([_fold(policy, name, value) for name, value in headers])
    return head + b"\r\n" + _payload_bytes(payload)


def _content(
    draft: Draft, policy: Policy, signature_html: str, signature_text: str
) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]], bytes]:
    """The top-level MIME headers written before From, Date and Message-ID and those written
    after them (where compose's order puts them), and the body."""
    clean_html, text = signature_texts(signature_html, signature_text)
    signed = bool(clean_html or text)
    sign_text = (lambda body: body.rstrip("\r\n") + TEXT_DELIMITER + text + "\n") if text else None
    cte, payload, rewritten = _body(draft.text, sign_text)
    plain = [("Content-Type", _TEXT_TYPE.format("plain")), ("Content-Transfer-Encoding", cte)]
    version = ("MIME-Version", "1.0")
    if draft.html is None:
        if rewritten:  # set_content on the message: its Content-* headers go last
            return [version], plain, _payload_bytes(payload)
        return [*plain, version], [], _payload_bytes(payload)
    sign_html = (lambda body: signed_html(body, clean_html, text)) if signed else None
    text_part = _part(policy, plain, payload)
    cte, payload, rewritten = _body(draft.html, sign_html)
    html = [("Content-Type", _TEXT_TYPE.format("html")), ("Content-Transfer-Encoding", cte)]
    # add_alternative's part is an EmailMessage: set_content gave it a MIME-Version.
    html_part = _part(policy, [version, *html] if rewritten else [*html, version], payload)
    boundary = _boundary(text_part + html_part)
    mark = f"--{boundary}".encode()
    body = b"".join([
        mark, b"\r\n", text_part, b"\r\n", mark, b"\r\n", html_part, b"\r\n", mark, b"--\r\n"
    ])  # fmt: skip
    return [version, ("Content-Type", _multipart_type(policy, boundary))], [], body


def prepare_draft(
    draft: Draft,
    *,
    account_email: str,
    display_name: str = "",
    signature_html: str = "",
    signature_text: str = "",
    now: datetime | None = None,
) -> Prepared:
    """:func:`compose.prepare` of ``draft.as_email_message()``, written directly (the module
    doc says how). ``draft`` has no attachments."""
    fields = dict(draft.address_fields())
    head: list[tuple[str, Any]] = [(n, _address_header(n, a)) for n, a in fields.items()]
    stored = {name: value for name, value in head if name in RECIPIENT_HEADERS}
    head.append(("Subject", _stored("Subject", draft.subject)))
    given_from: list[Any] = []
    date_given, message_id = False, ""
    for name, value in draft.headers.items():
        lowered = name.lower()
        if lowered == "from":
            given_from.append(_FACTORY(name, value))
        if lowered in REPLACED_HEADERS or lowered.startswith("resent-"):
            continue  # From is set from the account; the others would name another sender
        header = _stored(name, value)
        if lowered == "message-id":
            message_id = str(header).strip()
            if not message_id:
                continue  # given blank: ours replaces it, as compose.prepare does
        head.append((name, header))
        date_given = date_given or lowered == "date"
    from_value = from_header(given_from, account_email, display_name)
    recipients = _recipients(fields, stored)
    own, message_id = own_headers(
        from_value, has_date=date_given, message_id=message_id, account_email=account_email,
        now=now,
    )  # fmt: skip
    envelope_from, smtputf8, policy = envelope(account_email, recipients)
    before, after, body = _content(draft, policy, signature_html, signature_text)
    chunks = [
        (name, value if isinstance(value, bytes) else _fold(policy, name, value))
        for name, value in [*head, *before, *own, *after]
    ]
    full = b"".join([chunk for _, chunk in chunks]) + b"\r\n" + body
    smtp_bytes = full
    if "Bcc" in fields:  # never transmitted over SMTP
        smtp_bytes = b"".join([c for name, c in chunks if name != "Bcc"]) + b"\r\n" + body
    return Prepared(
        message=None, message_id=message_id, envelope_from=envelope_from, recipients=recipients,
        smtp_bytes=smtp_bytes, full_bytes=full, smtputf8=smtputf8,
    )  # fmt: skip
