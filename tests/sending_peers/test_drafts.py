"""Draft: the lean message type (issue 13). Sending a Draft writes what sending
``draft.as_email_message()`` writes: compared byte for byte (Message-ID and MIME boundary aside)
and parsed as a mail client reads them, over a corpus of shapes and fuzzed text; the same
refusals; and real deliveries to the suite's aiosmtpd (and Dovecot for the Sent copy)."""

from __future__ import annotations

import email.policy
import random
import re
from dataclasses import FrozenInstanceError
from datetime import datetime, timezone
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_mailconnect import Attachment, Draft, InvalidMessage, MailConnect
from flask_mailconnect.compose import Prepared, prepare
from flask_mailconnect.compose_draft import prepare_message
from tests.sending import imap_login, make_account, parsed, sent_messages

NOW = datetime(2026, 11, 30, 12, 0, 5, tzinfo=timezone.utc)
ACCOUNT: dict[str, Any] = dict(account_email="me@example.com", display_name="Mé Example")
SIGNATURES: dict[str, dict[str, Any]] = {
    "none": dict(signature_html="", signature_text=""),
    "both": dict(signature_html="<p>Me <b>Example</b></p>", signature_text="Me Example"),
    # Sanitised at send time (nh3): the script goes, the text is made from what is left.
    "html with script": dict(
        signature_html='<p onclick="x()">Mé<script>alert(1)</script></p>', signature_text=""
    ),
}
LONG_LINE = "word" * 300  # 1,200 characters on one line: beyond SMTP's 998
SHAPES: dict[str, Draft] = {
    "ascii": Draft("bob@example.com", "Hello", "Hi Bob,\nsee you.\n"),
    "non-ascii subject and names": Draft(
        ["Zoë Ünïcode <zoe@example.com>", "plain@example.org"], "Grüße aus Köln", "Héllo wörld\n"
    ),
    "very long subject": Draft("bob@example.com", "A subject that needs folding " * 12, "x"),
    "long body lines": Draft("bob@example.com", "Long", f"{LONG_LINE}\nshort\n{LONG_LINE}é\n"),
    "line endings": Draft("bob@example.com", "Ends", "a\r\nb\rc\nd\r\n\r\n"),
    "text and html": Draft(
        "bob@example.com", "Both", "Hi Bob\n", html="<html><body><p>Hé Bob</p></body></html>"
    ),
    "html without body tag": Draft("bob@example.com", "Both", "Hi\n", html="<p>Hi</p>"),
    "empty text": Draft("bob@example.com", "", ""),
    "empty text and html": Draft("bob@example.com", "Empty", "", html=""),
    "cc bcc reply-to": Draft(
        "Bob <bob@example.com>",
        "Copies",
        "Hi\n",
        cc=["carol@example.org", "BOB@example.com"],
        bcc="dave@example.net",
        reply_to="Help Desk <help@example.com>",
    ),
    "bcc only": Draft((), "Hidden", "Hi\n", bcc=["dave@example.net", "erin@example.net"]),
    "many recipients": Draft([f"rcpt{i}@example.com" for i in range(12)], "Many", "Hi\n"),
    "extra headers": Draft(
        "bob@example.com",
        "Extra",
        "Hi\n",
        headers={
            "List-Unsubscribe": "<mailto:unsubscribe@example.com>",
            "X-Campaign": "Grüße 7",
            "In-Reply-To": "<a1@example.com>",
            "X-Long": "token " * 30,
            "Date": "30 Nov 2026 10:00:00 GMT",
            "Message-ID": "<given@example.com>",
            "from": "ME@example.com",
            "Sender": "other@example.com",
        },
    ),
    "idn domain": Draft("Bob <bob@bücher.example>", "IDN", "Hi\n"),
    "non-ascii local part": Draft("ünïcode@example.org", "SMTPUTF8 Grüße", "Hi\n", html="<p>é</p>"),
    "lines beyond 78 in html": Draft("bob@example.com", "Wide", "t\n", html="<p>" + "é" * 90),
    "encoded-word lookalike": Draft("bob@example.com", "=?utf-8?q?caf=C3=A9?= ok", "Hi\n"),
}


def _canonical(data: bytes) -> bytes:
    """The bytes with what is random per message (Message-ID, MIME boundary) made equal."""
    data = re.sub(rb"Message-ID: <[^@>]*@", b"Message-ID: <id@", data)
    return re.sub(rb"={15}\d{19}==", b"BOUNDARY", data)


def _read(data: bytes) -> EmailMessage:
    message = parsed(data)
    assert not message.defects
    return message


def _view(message: EmailMessage) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """What a mail client shows: decoded headers (Message-ID by its domain), and each part's
    type, transfer encoding and decoded content."""
    headers = [
        (name, value.rpartition("@")[2] if name == "Message-ID" else str(value))
        for name, value in message.items()
        if name != "Content-Type" or not message.is_multipart()  # holds the random boundary
    ]
    parts = [
        (part.get_content_type(), str(part.get("Content-Transfer-Encoding")),
         str(part.get_content()))
        for part in message.walk() if not part.is_multipart()
    ]  # fmt: skip
    return headers, parts


def _both(draft: Draft, **signature: str) -> tuple[Prepared, Prepared]:
    fast = prepare_message(draft, **ACCOUNT, **signature, now=NOW)
    slow = prepare(draft.as_email_message(), **ACCOUNT, **signature, now=NOW)
    return fast, slow


def _assert_same(fast: Prepared, slow: Prepared) -> None:
    assert fast.message is None  # written directly, no EmailMessage built
    assert (fast.envelope_from, fast.recipients, fast.smtputf8) == (
        slow.envelope_from, slow.recipients, slow.smtputf8,
    )  # fmt: skip
    for ours, theirs in ((fast.smtp_bytes, slow.smtp_bytes), (fast.full_bytes, slow.full_bytes)):
        assert _canonical(ours) == _canonical(theirs)
        assert _view(_read(ours)) == _view(_read(theirs))
        assert b"\r\n" in ours and not re.search(rb"[^\r]\n|\r[^\n]", ours)  # CRLF only
        assert max(len(line) for line in ours.split(b"\r\n")) <= 998


@pytest.mark.parametrize("signature", sorted(SIGNATURES))
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_draft_is_written_as_its_email_message_is(shape: str, signature: str) -> None:
    fast, slow = _both(SHAPES[shape], **SIGNATURES[signature])
    _assert_same(fast, slow)


def test_what_the_draft_path_guarantees_for_a_full_shape() -> None:
    """The guarantees read off the Draft path's bytes themselves, not only by comparison."""
    draft = SHAPES["cc bcc reply-to"]
    fast = prepare_message(draft, **ACCOUNT, **SIGNATURES["html with script"], now=NOW)
    sent, kept = _read(fast.smtp_bytes), _read(fast.full_bytes)
    # BOB@ deduplicated with bob@; To, Cc, Bcc order.
    assert fast.recipients == ["bob@example.com", "carol@example.org", "dave@example.net"]
    assert sent["Bcc"] is None and b"dave@" not in fast.smtp_bytes
    assert kept["Bcc"] == "dave@example.net"
    assert sent["From"] == "Mé Example <me@example.com>"
    assert b"=?utf-8?q?M=C3=A9_Example?= <me@example.com>" in fast.smtp_bytes  # RFC 2047
    assert sent["Date"].datetime == NOW and sent["Message-ID"] == fast.message_id
    assert fast.message_id.endswith("@example.com>")
    assert sent.get_content().endswith("Hi\n\n-- \nMé\n")  # from the sanitised HTML
    assert b"script" not in fast.full_bytes and b"onclick" not in fast.full_bytes
    assert not fast.smtputf8


def test_smtputf8_only_when_an_address_needs_it() -> None:
    assert prepare_message(SHAPES["non-ascii subject and names"], **ACCOUNT).smtputf8 is False
    utf8 = prepare_message(SHAPES["non-ascii local part"], **ACCOUNT)
    assert utf8.smtputf8 is True and utf8.recipients == ["ünïcode@example.org"]
    assert "SMTPUTF8 Grüße".encode() in utf8.smtp_bytes  # UTF-8 headers, no encoded words


def test_the_signature_goes_before_the_last_body_close_tag() -> None:
    fast = prepare_message(SHAPES["text and html"], **ACCOUNT, **SIGNATURES["both"])
    html = _read(fast.smtp_bytes).get_body(("html",))
    assert html is not None
    assert html.get_content().rstrip() == (
        '<html><body><p>Hé Bob</p><div class="mailconnect-signature">-- <br>'
        "<p>Me <b>Example</b></p></div></body></html>"
    )


text = st.text(st.characters(codec="utf-8"), max_size=200)  # no lone surrogates
#: Bare, named (non-ASCII, quoted with a comma, long enough to fold), IDN, SMTPUTF8, and a
#: case duplicate; To may also hold one the checks refuse (both paths must refuse it alike).
ADDRESSES = [
    "bob@example.com", "BOB@example.com", "Zoë <zoe@example.org>", "ünï@example.org",
    '"Smith, John" <john@example.com>', "Bob <bob@bücher.example>", "o'neil@example.ie",
    "Zoë Ünïcode-Lönger Display Name For Folding Purposes <zoe.long@example.org>",
]  # fmt: skip
addresses = st.lists(st.sampled_from(ADDRESSES), max_size=3)
to_addresses = st.lists(st.sampled_from([*ADDRESSES, "bob@localhost", "Bob <bob@example.com"]),
                        max_size=3)  # fmt: skip
message_id = st.from_regex(r"<[a-z0-9.$%-]{1,24}@[a-z0-9-]{1,12}\.example>", fullmatch=True)
unsubscribe = st.sampled_from(
    ["<mailto:u@example.com>", "<https://example.com/u?id=7&l=fr>", "<mailto:ü@example.com>"]
)
extra_headers = st.fixed_dictionaries(
    {"X-Extra": text},
    optional={
        "List-Unsubscribe": st.lists(unsubscribe, min_size=1, max_size=3).map(", ".join),
        "In-Reply-To": message_id,
        "References": st.lists(message_id, min_size=1, max_size=8).map(" ".join),
        "Message-ID": message_id,
        "Reply-By": st.sampled_from(["Mon, 30 Nov 2026 12:00:00 +0100", "soon"]),
    },
)  # fmt: skip
display_names = st.sampled_from(
    ["", "Me", "Mé Example", 'Acme "Support", Inc.', "Zoë Ünïcode " * 7, "=?utf-8?q?x?="]
)


@settings(
    max_examples=400, derandomize=True, database=None, deadline=None,
    suppress_health_check=list(HealthCheck),
)  # fmt: skip
@given(
    subject=text, body=text, html=st.none() | text, headers=extra_headers, signed=st.booleans(),
    to=to_addresses, cc=addresses, bcc=addresses, reply_to=addresses, display_name=display_names,
)  # fmt: skip
def test_fuzzed_drafts_are_written_as_their_email_messages_are(
    subject: str, body: str, html: str | None, headers: dict[str, str], signed: bool,
    to: list[str], cc: list[str], bcc: list[str], reply_to: list[str], display_name: str,
) -> None:  # fmt: skip
    try:
        draft = Draft(to, subject, body, html=html, cc=cc, bcc=bcc, reply_to=reply_to,
                      headers=headers)  # fmt: skip
    except InvalidMessage:  # a line break in the subject or the header: refused, see below
        extra = headers["X-Extra"]
        assert any(len(f"a{v}b".splitlines()) > 1 or "\x00" in v for v in (subject, extra))
        return
    account = {**ACCOUNT, "display_name": display_name}
    signature = SIGNATURES["both" if signed else "none"]
    try:
        slow = prepare(draft.as_email_message(), **account, **signature, now=NOW)
    except InvalidMessage as theirs:  # a refused address, or no recipient: refused alike
        with pytest.raises(InvalidMessage) as ours:
            prepare_message(draft, **account, **signature, now=NOW)
        assert (str(ours.value), ours.value.field) == (str(theirs), theirs.field)
        return
    _assert_same(prepare_message(draft, **account, **signature, now=NOW), slow)


def test_a_body_holding_the_boundary_moves_it_as_the_email_package_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A text body with the boundary the random draw gives (and its first retry) on lines of
    its own: the Draft picks the next one, with the email package's ``X.0``, ``X.1`` suffixes,
    and the body reads back whole."""
    monkeypatch.setattr(random, "randrange", lambda stop: 42)
    boundary = "=" * 15 + "42".zfill(19) + "=="
    body = f"a\n--{boundary}\n--{boundary}.0\nb\n"
    draft = Draft("bob@example.com", "Boundary", body, html="<p>h</p>")
    message = _read(prepare_message(draft, **ACCOUNT).smtp_bytes)
    assert message.get_boundary() == f"{boundary}.1"
    plain = message.get_body(("plain",))
    assert plain is not None and plain.get_content() == body
    # The email package picks the same under LF line endings (under CRLF its line check
    # misses, see compose_draft._boundary).
    reference = draft.as_email_message()
    reference.as_bytes(policy=email.policy.default)
    assert reference.get_boundary() == f"{boundary}.1"


def test_a_draft_with_attachments_goes_through_its_email_message() -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256))
    draft = Draft(
        "bob@example.com", "Report", "See attached.\n", html="<p>See attached.</p>",
        attachments=[("report.pdf", pdf, "application/pdf"), Attachment("a.txt", b"hi")],
    )  # fmt: skip
    prepared = prepare_message(draft, **ACCOUNT, **SIGNATURES["both"])
    assert prepared.message is not None  # the EmailMessage path
    message = _read(prepared.smtp_bytes)
    assert message.get_content_type() == "multipart/mixed"
    files = [(a.get_filename(), a.get_content_type(), a.get_content()) for a in
             message.iter_attachments()]  # fmt: skip
    assert files == [
        ("report.pdf", "application/pdf", pdf), ("a.txt", "application/octet-stream", b"hi"),
    ]  # fmt: skip
    body = message.get_body(("plain",))
    assert body is not None and body.get_content().endswith("-- \nMe Example\n")


# -- what a Draft is, what it refuses -------------------------------------------------------------


def test_a_draft_is_frozen_and_keeps_its_own_copies() -> None:
    extra = {"X-Tag": "a"}
    to = ["bob@example.com"]
    draft = Draft(to, "s", "t", headers=extra, attachments=[("f.txt", b"x", "text/plain")])
    extra["X-Tag"] = "changed"
    to.append("mallory@example.com")
    assert draft.to == ("bob@example.com",) and draft.headers == {"X-Tag": "a"}
    assert draft.attachments == (Attachment("f.txt", b"x", "text/plain"),)
    assert Draft("bob@example.com", "s", "t").to == ("bob@example.com",)
    with pytest.raises(FrozenInstanceError):
        draft.subject = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        draft.headers["X-Tag"] = "b"  # type: ignore[index]


@pytest.mark.parametrize(
    "fields, field",
    [
        (dict(subject="Hi\r\nBcc: victim@example.com"), "Subject"),
        (dict(subject="Hi\nthere"), "Subject"),
        (dict(subject="Hi\rthere"), "Subject"),
        (dict(subject="Hi\u2028there"), "Subject"),
        (dict(to="bob@example.com\r\nBcc: victim@example.com"), "To"),
        (dict(reply_to=["a@example.com\n"]), "Reply-To"),
        (dict(headers={"X-Tag": "a\r\nBcc: victim@example.com"}), "X-Tag"),
        (dict(headers={"X-Bad:Name": "v"}), "X-Bad:Name"),
        (dict(headers={"X Bad": "v"}), "X Bad"),
        (dict(headers={"": "v"}), ""),
        (dict(headers={"Bcc": "victim@example.com"}), "Bcc"),
        (dict(headers={"Content-Type": "text/html"}), "Content-Type"),
        (dict(headers={"X-Tag": "a", "x-tag": "b"}), "x-tag"),
        (dict(attachments=[("a\r\n.txt", b"", "text/plain")]), "Content-Disposition"),
        (dict(attachments=[("a.txt", b"", "not a type")]), "Content-Type"),
    ],
)  # fmt: skip
def test_line_breaks_and_bad_header_names_are_refused(fields: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = dict(to="bob@example.com", subject="Hi", text="t")
    with pytest.raises(InvalidMessage) as caught:
        Draft(**{**values, **fields})
    assert caught.value.field == field and caught.value.retryable is False


@pytest.mark.parametrize(
    "to",
    ["bob@@example.com", "bob", "Bob <bob@example.com", "a@b.example c@d.example",
     "x@-bad-.example.com", "<>", "bob@localhost"],
)  # fmt: skip
def test_bad_addresses_are_refused_as_in_an_email_message(to: str) -> None:
    draft = Draft(to, "Hi", "t")
    with pytest.raises(InvalidMessage) as ours:
        prepare_message(draft, **ACCOUNT)
    with pytest.raises(InvalidMessage) as theirs:
        prepare(draft.as_email_message(), **ACCOUNT)
    assert ours.value.field == theirs.value.field == "To"


def test_another_from_and_no_recipient_are_refused_as_in_an_email_message() -> None:
    for draft, match in [
        (Draft("bob@example.com", "Hi", "t", headers={"From": "mallory@example.com"}), "sends as"),
        (Draft("bob@example.com", "Hi", "t", headers={"From": "a@example.com, b@example.com"}),
         "exactly one"),
        (Draft((), "Hi", "t"), "no recipient"),
    ]:  # fmt: skip
        with pytest.raises(InvalidMessage, match=match):
            prepare_message(draft, **ACCOUNT)
        with pytest.raises(InvalidMessage, match=match):
            prepare(draft.as_email_message(), **ACCOUNT)


# -- real peers ---------------------------------------------------------------------------------

peers = pytest.mark.peers


@peers
def test_drafts_sent_in_a_session_arrive_with_their_headers_and_bodies(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any
) -> None:
    account = make_account(db, smtp_starttls, signature_text="Alice", signature_html="<b>Al</b>")
    drafts = [Draft(f"rcpt{i}@example.com", f"Message {i}", f"Hello {i}\n") for i in range(3)]
    drafts.append(Draft(
        "Bob <bob@example.com>", "Grüße", "Hi Bob\n", html="<p>Hi Bob</p>",
        cc="carol@example.org", bcc=["dave@example.net", "BOB@example.com"],
        headers={"List-Unsubscribe": "<mailto:u@example.com>"},
    ))  # fmt: skip
    with mailconnect.sending(account) as conn:
        results = [conn.send(draft) for draft in drafts]
    delivered = smtp_starttls.messages
    assert [m.rcpt_tos for m in delivered] == [
        ["rcpt0@example.com"], ["rcpt1@example.com"], ["rcpt2@example.com"],
        ["bob@example.com", "carol@example.org", "dave@example.net"],
    ]  # fmt: skip
    assert all(m.mail_from == account.email for m in delivered)
    for i, (sent, result) in enumerate(zip(delivered[:3], results, strict=False)):
        message = parsed(sent.data)
        assert message["Subject"] == f"Message {i}" and message["To"] == f"rcpt{i}@example.com"
        assert message["From"] == f"Alice Example <{account.email}>"
        assert message["Message-ID"] == result.message_id and message["Date"] is not None
        assert message.get_content() == f"Hello {i}\n\n-- \nAlice\n"
    last = parsed(delivered[3].data)
    assert last["Bcc"] is None and b"dave@" not in delivered[3].data  # Bcc never transmitted
    assert last["Subject"] == "Grüße" and last["Cc"] == "carol@example.org"
    assert last["List-Unsubscribe"] == "<mailto:u@example.com>"
    html = last.get_body(("html",))
    assert html is not None and "-- <br><b>Al</b></div>" in html.get_content()
    assert [o.ok for o in conn.results] == [True] * 4


@peers
def test_mailconnect_send_takes_a_draft(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any
) -> None:
    account = make_account(db, smtp_starttls)
    result = mailconnect.send(
        Draft("bob@example.com", "One", "Hi\n", bcc="dave@example.net"), account=account
    )
    [sent] = smtp_starttls.messages
    assert sent.rcpt_tos == ["bob@example.com", "dave@example.net"] == result.accepted
    assert parsed(sent.data)["Message-ID"] == result.message_id
    with pytest.raises(InvalidMessage, match="sends as"):
        mailconnect.send(
            Draft("bob@example.com", "x", "y", headers={"From": "eve@example.com"}),
            account=account,
        )  # fmt: skip
    assert len(smtp_starttls.messages) == 1


@peers
def test_the_sent_copy_of_a_draft_keeps_its_bcc(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any, dovecot: Any,
    peer_certs: Any,
) -> None:  # fmt: skip
    client = imap_login(dovecot, peer_certs)
    try:
        if not client.folder_exists("Sent"):
            client.create_folder("Sent")
        before = set(sent_messages(client, "Sent"))
        account = make_account(db, smtp_starttls, dovecot)
        with mailconnect.sending(account) as conn:
            result = conn.send(Draft("bob@example.com", "Copy", "Hi\n", bcc="dave@example.net"))
        new = {u: d for u, d in sent_messages(client, "Sent").items() if u not in before}
        [(_, data)] = new.items()
        copy = parsed(data[b"BODY[]"])
        assert copy["Message-ID"] == result.message_id and copy["Bcc"] == "dave@example.net"
        assert b"dave@" not in smtp_starttls.messages[0].data
    finally:
        client.logout()


@pytest.mark.parametrize("given", ["", "   "])
def test_a_blank_message_id_given_is_replaced_not_doubled(given: str) -> None:
    """A blank Message-ID (a host's template left it empty) is replaced by ours, on both
    paths: the message carries one Message-ID, the one the result reports."""
    draft = Draft("bob@example.com", "Hi", "Hello\n", headers={"Message-ID": given})
    fast, slow = _both(draft)
    _assert_same(fast, slow)
    for prepared in (fast, slow):
        for data in (prepared.smtp_bytes, prepared.full_bytes):
            ids = parsed(data).get_all("Message-ID")
            assert ids == [prepared.message_id], ids
    assert fast.message_id.endswith("@" + ACCOUNT["account_email"].split("@")[1] + ">")
