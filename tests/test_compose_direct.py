"""The second round of sending fast paths (issue 13) writes what the general paths write: a
single-part message's bytes written directly against the email package's generator (byte for
byte, and parsed), the one-pass header handling of ``prepare`` (From replaced, impostor
headers dropped, Date and Message-ID kept or added, Bcc only in the Sent copy), the Date text
cached per second, and the MAIL FROM / RCPT TO quoting against ``smtplib.quoteaddr``."""

from __future__ import annotations

import email
import email.policy
import io
import smtplib
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest

from flask_mailconnect import InvalidMessage, compose
from flask_mailconnect.compose import prepare
from flask_mailconnect.transport.submit import quote_address
from tests.sending import ADDRESSES, PLAIN_OR_NOT

POLICIES = [email.policy.SMTP, email.policy.SMTPUTF8]
ACCOUNT = dict(account_email="me@example.com", display_name="Me Example",
               signature_html="<p>Me <b>Example</b></p>", signature_text="Me Example")  # fmt: skip


def _single_parts() -> list[EmailMessage]:
    """Single-part messages as hosts build or parse them."""
    out = []
    for body, subtype in [
        ("Hello\nthere.\n", "plain"), ("Héllo wörld, ça va ?\n", "plain"), ("no newline", "plain"),
        ("a\r\nb\rc\nd\r\n", "plain"), ("<html><body><p>Hé</p></body></html>\n", "html"),
        ("word " * 60 + "\n", "plain"), ("Grüße " * 40 + "\n", "plain"), ("", "plain"),
    ]:  # fmt: skip
        msg = EmailMessage()
        msg["To"] = "Zoë Ünïcode <zoe@example.com>, plain@example.org"
        msg["Subject"] = "Grüße aus Köln: " + "a long subject that needs folding " * 4
        msg.set_content(body, subtype=subtype)
        out.append(msg)
    parsed = email.message_from_bytes(
        b"To: =?utf-8?q?Ren=C3=A9?= <rene@example.com>\r\nSubject: =?utf-8?b?w6k=?= plain\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xc3\xa9\r\nline two\r\n",
        policy=email.policy.default,
    )
    out.append(parsed)  # type: ignore[arg-type]
    latin = email.message_from_bytes(
        b"To: x@example.com\r\nSubject: latin\r\nContent-Type: text/plain; charset=latin-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xe9\r\n",
        policy=email.policy.default,
    )
    out.append(latin)  # type: ignore[arg-type]
    return out


def _generated(msg: EmailMessage, policy: Any) -> bytes:
    """What the email package's generator (with our header folding) writes."""
    buffer = io.BytesIO()
    compose._Generator(buffer, mangle_from_=False, policy=policy).flatten(msg)
    return buffer.getvalue()


@pytest.mark.parametrize("policy", POLICIES)
def test_single_part_bytes_are_the_generators_bytes(policy: Any) -> None:
    for msg in _single_parts():
        prepared = prepare(msg, **ACCOUNT)  # type: ignore[arg-type]
        direct = compose._single_part_bytes(prepared.message, policy)
        assert direct is not None
        assert direct == _generated(prepared.message, policy)


def test_the_generator_still_writes_what_the_direct_path_does_not_take() -> None:
    with_attachment = EmailMessage()
    with_attachment["To"] = "x@example.com"
    with_attachment.set_content("hi\n")
    with_attachment.add_attachment(b"\x00\x01", maintype="application", subtype="octet-stream")
    binary = EmailMessage()
    binary.set_content(b"\x00\x01", maintype="application", subtype="octet-stream")
    for msg in (with_attachment, binary):
        assert compose._single_part_bytes(msg, email.policy.SMTP) is None
        assert compose._as_bytes(msg, email.policy.SMTP) == _generated(msg, email.policy.SMTP)


def _parsed(data: bytes) -> tuple[list[tuple[str, str]], list[Any]]:
    message = email.message_from_bytes(data, policy=email.policy.default)
    headers = [(k, str(v)) for k, v in message.items()]
    return headers, [p.get_payload(decode=True) for p in message.walk()]


def test_prepared_messages_parse_as_the_email_package_writes_them() -> None:
    """Non-ASCII names, long subjects, HTML bodies, attachments, Bcc: what prepare sends reads
    back as what ``as_bytes`` of the same prepared message reads back as."""
    fancy = EmailMessage()
    fancy["To"] = '"Smith, John" <j@example.com>, Zoë <zoe@example.com>'
    fancy["Bcc"] = "eve@example.net"
    fancy["Subject"] = "Grüße: " + "long " * 40
    fancy.set_content("Héllo\n")
    fancy.add_alternative("<html><body><p>Héllo</p></body></html>", subtype="html")
    fancy.add_attachment(b"\x00" * 80, maintype="application", subtype="octet-stream",
                         filename="données.bin")  # fmt: skip
    for msg in [*_single_parts(), fancy]:
        for display_name in ("Me Example", "Mé Ëxample, Ltd.", ""):
            prepared = prepare(msg, **{**ACCOUNT, "display_name": display_name})  # type: ignore[arg-type]
            policy = email.policy.SMTPUTF8 if prepared.smtputf8 else email.policy.SMTP
            written = prepared.message.as_bytes(policy=policy)
            assert _parsed(prepared.smtp_bytes) == _parsed(written)
            assert b"\nBcc:" not in prepared.smtp_bytes and not prepared.smtp_bytes.startswith(
                b"Bcc:"
            )
            sender = email.message_from_bytes(prepared.smtp_bytes, policy=email.policy.default)
            assert sender["From"].addresses[0].display_name == display_name
            assert sender["Date"].datetime is not None
            if not display_name.isascii():  # an encoded word, not raw UTF-8
                assert b"=?utf-8?" in prepared.smtp_bytes.split(b"\r\n\r\n")[0]


def test_from_is_replaced_and_impostor_headers_dropped_in_one_pass() -> None:
    msg = EmailMessage()
    msg["From"] = "ME@example.com"
    msg["Sender"] = "ceo@example.com"
    msg["Return-Path"] = "<ceo@example.com>"
    msg["Resent-From"] = "ceo@example.com"
    msg["RESENT-DATE"] = "Mon, 1 Jan 2024 00:00:00 +0000"
    msg["To"] = "a@example.com"
    msg["Cc"] = "b@example.com, A@example.com"
    msg["Bcc"] = "c@example.com"
    msg["Date"] = "Tue, 2 Jan 2024 10:00:00 +0000"
    msg["Message-ID"] = "<kept@example.com>"
    msg["X-Mailer"] = "host"
    msg.set_content("hi\n")
    prepared = prepare(msg, **ACCOUNT)  # type: ignore[arg-type]
    names = [k for k, _ in prepared.message.items()]
    assert names == ["To", "Cc", "Date", "Message-ID", "X-Mailer", "Content-Type",
                     "Content-Transfer-Encoding", "MIME-Version", "From"]  # fmt: skip
    assert prepared.recipients == ["a@example.com", "b@example.com", "c@example.com"]
    assert prepared.message_id == "<kept@example.com>"
    sent = email.message_from_bytes(prepared.smtp_bytes, policy=email.policy.default)
    assert str(sent["Date"]) == "Tue, 02 Jan 2024 10:00:00 +0000"
    assert sent["Bcc"] is None and sent["Sender"] is None and sent["Resent-Date"] is None
    full = email.message_from_bytes(prepared.full_bytes, policy=email.policy.default)
    assert str(full["Bcc"]) == "c@example.com"
    assert msg["Sender"] is not None and msg["Bcc"] is not None  # the host's object unchanged


def test_another_from_and_injection_are_still_refused() -> None:
    msg = EmailMessage()
    msg["To"] = "a@example.com"
    msg["From"] = "ceo@example.com"
    with pytest.raises(InvalidMessage):
        prepare(msg, **ACCOUNT)  # type: ignore[arg-type]
    for value in ("hi\r\nBcc: victim@example.com", "hi\nX-Evil: 1", "hi\rX: 1"):
        injected = EmailMessage()
        injected["To"] = "a@example.com"
        injected.set_content("hi\n")
        injected.set_raw("Subject", value)  # past the policy's own check
        with pytest.raises(InvalidMessage, match="line break"):
            prepare(injected, **ACCOUNT)  # type: ignore[arg-type]
    # An encoded CR LF stays an encoded word on the wire: no header is added.
    encoded = email.message_from_bytes(
        b"To: a@example.com\r\nSubject: =?utf-8?q?a=0D=0ABcc=3A_x=40evil.test?=\r\n\r\nhi\r\n",
        policy=email.policy.default,
    )
    sent = prepare(encoded, **ACCOUNT).smtp_bytes  # type: ignore[arg-type]
    assert b"\r\nBcc:" not in sent and b"Subject: =?utf-8?q?a=0D=0ABcc" in sent


def test_message_ids_are_unique_and_dates_current_across_a_bulk_send() -> None:
    ids = set()
    for i in range(500):
        msg = EmailMessage()
        msg["To"] = f"r{i}@example.com"
        msg.set_content("x\n")
        prepared = prepare(msg, **ACCOUNT)  # type: ignore[arg-type]
        ids.add(prepared.message_id)
        assert prepared.message_id.endswith("@example.com>")
    assert len(ids) == 500


@pytest.mark.parametrize(
    "when",
    [
        datetime(2024, 1, 2, 3, 4, 5, 999_999, tzinfo=timezone.utc),
        datetime(2024, 1, 2, 3, 4, 5, 1, tzinfo=timezone.utc),
        datetime(2024, 1, 2, 3, 4, 6, tzinfo=timezone.utc),
        datetime(2024, 1, 2, 4, 4, 6, tzinfo=timezone(timedelta(hours=1))),  # same instant
        datetime(2024, 1, 2, 3, 4, 6),  # naive
    ],
)
def test_date_text_is_format_datetime(when: datetime) -> None:
    """Date is written per whole second from a cache keyed by the instant and its zone."""
    utc = datetime(2024, 1, 2, 3, 4, 6, tzinfo=timezone.utc)
    for first in (utc, when):  # the same instant in UTC cached first must not answer for it
        msg = EmailMessage()
        msg["To"] = "a@example.com"
        msg.set_content("x\n")
        prepare(msg, **ACCOUNT, now=first)  # type: ignore[arg-type]
        sent = prepare(msg, **ACCOUNT, now=when).message  # type: ignore[arg-type]
        assert sent["Date"] == format_datetime(when.replace(microsecond=0))


@pytest.mark.parametrize(
    "address",
    [*ADDRESSES, *PLAIN_OR_NOT, "o'neil@example.ie", "a/b=c?d@example.com", "x@-a-.com",
     "a.@example.com", "a@b..com", "<a@example.com>", "Bob <bob@example.com>", " a@b.com "],
)  # fmt: skip
def test_envelope_quoting_is_smtplibs(address: str) -> None:
    assert quote_address(address) == smtplib.quoteaddr(address)
