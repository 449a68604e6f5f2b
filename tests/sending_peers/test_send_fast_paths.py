"""The fast paths of sending (issue 13) give what the slow paths give: header folding, the
signature's body swap, Bcc removal and recipient normalisation against the email package and
email-validator; SMTP PIPELINING against aiosmtpd advertising it (with refusals at each stage);
Sent copies batched into one MULTIAPPEND against Dovecot; a session's outcomes bounded."""

from __future__ import annotations

import copy
import email
import email.policy
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from email_validator import EmailNotValidError, validate_email
from flask import Flask
from imapclient import IMAPClient

from flask_mailconnect import MailConnect, PermanentSendError, TransientSendError, compose
from flask_mailconnect.compose import prepare
from flask_mailconnect.sending import outcomes
from flask_mailconnect.sending.outcomes import MessageOutcome, SendLog, SendResult
from flask_mailconnect.transport import submit as submit_module
from flask_mailconnect.validation import normalize_address
from tests.peers.smtp_server import PeerHandler, start_smtp
from tests.sending import ADDRESSES, PLAIN_OR_NOT, make_account, message


@pytest.mark.parametrize("address", ADDRESSES)
def test_recipient_normalisation_matches_email_validator(address: str) -> None:
    try:
        expected = validate_email(address, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        with pytest.raises(ValueError):
            normalize_address(address)
        return
    assert normalize_address(address) == expected.normalized


@pytest.mark.parametrize("to", PLAIN_OR_NOT)
def test_recipients_shortcut_answers_as_the_cross_check(
    to: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare dot-atom address skips the second parser; with the shortcut off (a pattern that
    never matches) every header gives the same recipients or the same refusal."""
    import re

    def outcome() -> Any:
        msg = EmailMessage()
        try:
            msg["To"] = to
            return compose.parse_recipients(msg)
        except Exception as exc:  # InvalidMessage, or the email package refusing the header
            return type(exc).__name__, str(exc)

    if compose._PLAIN_ADDRESS.fullmatch(to):  # the shortcut's premise: one address, as is
        assert [a for _, a in email.utils.getaddresses([to]) if a] == [to]
    fast = outcome()
    monkeypatch.setattr(compose, "_PLAIN_ADDRESS", re.compile(r"(?!)"))
    assert outcome() == fast


def _corpus() -> list[EmailMessage]:
    """Messages as hosts build them: plain, HTML + text, display names, long and non-ASCII
    subjects, Bcc, attachments, encoded words, comments in addresses."""
    out = []
    plain = EmailMessage()
    plain["To"] = "Bob <bob@example.com>, carol@example.org"
    plain["Subject"] = "Hello"
    plain.set_content("Hi Bob,\nsee you.\n")
    out.append(plain)
    fancy = EmailMessage()
    fancy["To"] = '"Smith, John" <j@example.com>, Zoë <zoe@example.com>'
    fancy["Cc"] = "dave@example.net (Dave)"
    fancy["Bcc"] = "eve@example.net, frank@example.net"
    fancy["Subject"] = "Grüße aus Köln: " + "a long subject that needs folding " * 3
    fancy.set_content("Héllo,\nçà va ?\n")
    fancy.add_alternative("<html><body><p>Héllo</p></body></html>", subtype="html")
    fancy.add_attachment(b"\x00\x01" * 50, maintype="application", subtype="octet-stream",
                         filename="données.bin")  # fmt: skip
    out.append(fancy)
    parsed = email.message_from_bytes(
        b"To: =?utf-8?q?Ren=C3=A9?= <rene@example.com>\r\nSubject: =?utf-8?b?w6k=?= plain\r\n"
        b"Bcc: x@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nCaf\xc3\xa9\r\n",
        policy=email.policy.default,
    )
    out.append(parsed)  # type: ignore[arg-type]
    long_lines = EmailMessage()
    long_lines["To"] = "x@example.com"
    long_lines["Subject"] = "s"
    long_lines.set_content("word " * 60 + "\n")  # a line over 78: quoted-printable
    out.append(long_lines)
    return out


@pytest.mark.parametrize("policy", [email.policy.SMTP, email.policy.SMTPUTF8])
def test_header_folding_shortcut_writes_what_the_policy_writes(policy: Any) -> None:
    for msg in _corpus():
        prepared = prepare(msg, account_email="me@example.com", display_name="Mé Example",
                           signature_html="<p>Me</p>", signature_text="Me")  # fmt: skip
        for part in prepared.message.walk():
            for name, value in part.raw_items():
                fast = compose._fold(policy, name, value)
                slow = policy.fold_binary(name, value)
                if fast != slow:  # only address headers may differ, in spacing only
                    assert name.lower() in ("to", "cc", "bcc"), (name, fast, slow)
                    parse = email.policy.default.header_factory
                    assert str(parse(name, fast.decode().split(":", 1)[1].strip())) == str(
                        parse(name, slow.decode().split(":", 1)[1].strip())
                    )


def _slow_prepare(msg: EmailMessage, **kw: Any) -> tuple[bytes, bytes]:
    """The reference: the same steps through set_content and as_bytes, as before issue 13."""
    clone = copy.deepcopy(msg)
    prepared = prepare(clone, **kw)
    return prepared.full_bytes, prepared.smtp_bytes


def test_prepared_bytes_parse_to_the_same_message_as_the_email_package_writes() -> None:
    kw = dict(account_email="me@example.com", display_name="Me Example",
              signature_html="<p>Me <b>Example</b></p>", signature_text="Me Example")  # fmt: skip
    for msg in _corpus():
        prepared = prepare(msg, **kw)
        reference = prepared.message  # after prepare: signature in, Bcc gone
        written = reference.as_bytes(policy=email.policy.SMTPUTF8 if prepared.smtputf8
                                     else email.policy.SMTP)  # fmt: skip
        ours = email.message_from_bytes(prepared.smtp_bytes, policy=email.policy.default)
        theirs = email.message_from_bytes(written, policy=email.policy.default)
        assert [(k, str(v)) for k, v in ours.items()] == [(k, str(v)) for k, v in theirs.items()]
        assert [p.get_payload(decode=True) for p in ours.walk()] == [
            p.get_payload(decode=True) for p in theirs.walk()
        ]
        assert "Bcc" not in ours
        full = email.message_from_bytes(prepared.full_bytes, policy=email.policy.default)
        assert (full["Bcc"] is not None) == (msg["Bcc"] is not None)
        assert full.as_bytes().replace(b"\r\n", b"\n").count(b"Me Example") >= 1


@pytest.mark.parametrize(
    "body",
    [
        "Hello\n", "Héllo wörld\n", "x" * 100 + "\n", "a\r\nb\r\n",
        # what str.splitlines breaks at and set_content (bytes lines) keeps: a form feed
        # between pages of a pasted report, a Unicode line separator from a word processor
        "Seite eins\x0cSeite zwei, Grüße\n", "first\u2028second\n", "a\x1cb\x85c\u2029d\n",
    ],
)  # fmt: skip
def test_signature_body_swap_equals_set_content(body: str) -> None:
    msg = EmailMessage()
    msg["To"] = "x@example.com"
    msg.set_content(body)
    fast = prepare(msg, account_email="me@example.com", signature_text="Sig ñ")
    reference = copy.deepcopy(msg)
    part = reference
    text = part.get_content().rstrip("\r\n") + compose.TEXT_DELIMITER + "Sig ñ\n"
    part.set_content(text, charset="utf-8")
    assert fast.message.get_content() == reference.get_content()
    assert str(fast.message["Content-Transfer-Encoding"]) == str(
        reference["Content-Transfer-Encoding"]
    )


def test_body_lookup_shortcut_finds_what_get_body_finds() -> None:
    attached = EmailMessage()
    attached.set_content("notes")
    attached["Content-Disposition"] = "attachment; filename=notes.txt"
    html = EmailMessage()
    html.set_content("<p>hi</p>", subtype="html")
    data = EmailMessage()
    data.set_content(b"\x00\x01", maintype="application", subtype="octet-stream")
    for msg in [*_corpus(), attached, html, data]:
        found = compose._bodies(msg)
        assert found == (msg.get_body(("html",)), msg.get_body(("plain",)))
    assert compose._bodies(html)[0] is html and compose._bodies(attached) == (None, None)


def test_bcc_removed_with_its_folded_lines_only() -> None:
    data = (
        b"To: a@example.com\r\nBcc: b@example.com,\r\n c@example.com\r\nSubject: Bcc: no\r\n"
        b"X-Bcc: kept\r\n\r\nBcc: body line stays\r\n"
    )
    assert compose._without_bcc(data) == (
        b"To: a@example.com\r\nSubject: Bcc: no\r\nX-Bcc: kept\r\n\r\nBcc: body line stays\r\n"
    )


def test_send_log_counts_everything_and_keeps_the_most_recent() -> None:
    log = SendLog(keep=3)
    result = SendResult("<id>", ["x@example.com"], {}, 1, "smtp", None, sent_copy_pending=True)  # type: ignore[arg-type]
    refused = PermanentSendError("no", code="smtp_rejected")
    for i in range(5):
        if i == 1:
            log.append(MessageOutcome(i, f"<{i}>", error=refused))
        else:
            log.append(MessageOutcome(i, f"<{i}>", result=result))
    assert (log.total, log.sent, log.failed, log.dropped) == (5, 4, 1, 2)
    assert [o.index for o in log] == [2, 3, 4] and len(log) == 3 and log[-1].index == 4
    assert [o.index for o in log[-2:]] == [3, 4]
    log.copy_saved(3, "Sent", None)
    log.copy_saved(0, None, "append_failed")  # no longer kept: counted only
    assert log[1].result is not None and log[1].result.sent_copy == "Sent"
    assert not log[1].result.sent_copy_pending and log.copies_failed == 1
    assert outcomes.RESULTS_KEPT >= 1000


# -- SMTP PIPELINING (RFC 2920) against aiosmtpd advertising it --------------------------------


class PipeliningHandler(PeerHandler):
    """aiosmtpd reads commands from its stream one after another, so it serves a pipelined
    client correctly; it only does not say so in EHLO. This handler says so."""

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,  # noqa: N802
                          responses: list[str]) -> list[str]:  # fmt: skip
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


@pytest.fixture(scope="module")
def pipelining_server(peer_certs: Any) -> Iterator[Any]:
    peer, controller = start_smtp(
        "starttls", ca_file=peer_certs.ca_file, context=peer_certs.server_context(),
        handler_class=PipeliningHandler,
    )  # fmt: skip
    try:
        yield peer
    finally:
        controller.stop()


@pytest.fixture
def pipelining(pipelining_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    pipelining_server.reset()
    pipelining_server.groups = 0
    real = submit_module._envelope_pipelined

    def counted(*args: Any, **kw: Any) -> Any:
        pipelining_server.groups += 1
        return real(*args, **kw)

    monkeypatch.setattr(submit_module, "_envelope_pipelined", counted)
    return pipelining_server


pytestmark_peers = pytest.mark.peers


def _subject(delivered: Any) -> str:
    return str(email.message_from_bytes(delivered.data, policy=email.policy.default)["Subject"])


@pytestmark_peers
def test_pipelined_bulk_send_delivers_every_message(
    peer_app: Flask, mailconnect: MailConnect, db: Any, pipelining: Any
) -> None:
    account = make_account(db, pipelining)
    with mailconnect.sending(account) as conn:
        for i in range(5):
            conn.send(message(to=f"Rcpt {i} <r{i}@example.com>, cc{i}@example.org",
                              Subject=f"Message {i}"))  # fmt: skip
    assert pipelining.groups == 5 and conn.connections == 1
    assert [m.rcpt_tos for m in pipelining.messages] == [
        [f"r{i}@example.com", f"cc{i}@example.org"] for i in range(5)
    ]
    assert conn.results.sent == 5 and conn.results.failed == 0


@pytestmark_peers
def test_pipelined_refusals_keep_the_conversation_in_step(
    peer_app: Flask, mailconnect: MailConnect, db: Any, pipelining: Any
) -> None:
    account = make_account(db, pipelining)
    with mailconnect.sending(account) as conn:
        pipelining.inject("MAIL", reply="451 4.3.0 Try later")
        with pytest.raises(TransientSendError) as mail_refused:
            conn.send(message(Subject="m0"))
        pipelining.inject("RCPT", reply="550 5.1.1 No such user")  # the first of two
        partial = conn.send(message(to="gone@example.com, here@example.com", Subject="m1"))
        pipelining.inject("RCPT", reply="550 5.1.1 No such user", times=2)
        with pytest.raises(PermanentSendError) as all_refused:
            conn.send(message(to="a@example.com, b@example.com", Subject="m2"))
        pipelining.inject("DATA", reply="554 5.6.0 Not today")
        with pytest.raises(PermanentSendError) as data_refused:
            conn.send(message(Subject="m3"))
        last = conn.send(message(Subject="m4"))
    assert mail_refused.value.smtp_code == 451
    assert partial.accepted == ["here@example.com"] and "gone@example.com" in partial.refused
    assert all_refused.value.code == "recipients_refused"
    assert data_refused.value.smtp_code == 554
    assert last.accepted == ["bob@example.com"]
    assert [_subject(m) for m in pipelining.messages] == ["m1", "m4"]
    assert conn.connections == 1  # every refusal left the connection usable
    assert [o.ok for o in conn.results] == [False, True, False, False, True]


@pytestmark_peers
def test_pipelined_421_between_messages_reconnects_and_sends_once(
    peer_app: Flask, mailconnect: MailConnect, db: Any, pipelining: Any
) -> None:
    account = make_account(db, pipelining)
    pipelining.close_after = 2
    with mailconnect.sending(account) as conn:
        for i in range(4):
            conn.send(message(Subject=f"n{i}"))
    assert [_subject(m) for m in pipelining.messages] == [f"n{i}" for i in range(4)]
    assert conn.connections == 2


# -- Sent copies in batches (MULTIAPPEND, RFC 3502) against Dovecot ----------------------------


def _imap(dovecot: Any, certs: Any) -> IMAPClient:
    context = ssl.create_default_context(cafile=certs.ca_file)
    client = IMAPClient("localhost", dovecot.ssl_port, ssl=True, ssl_context=context, timeout=5)
    client.login(dovecot.user, dovecot.password)
    return client


@pytestmark_peers
def test_bulk_sent_copies_go_in_one_multiappend(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any, dovecot: Any,
    peer_certs: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from flask_mailconnect.sending import copies

    client = _imap(dovecot, peer_certs)
    try:
        assert client.has_capability("MULTIAPPEND")  # Dovecot has it: the batch path runs
        if not client.folder_exists("Sent"):
            client.create_folder("Sent")
        client.select_folder("Sent")
        before = set(client.search(["ALL"]))
        appends: list[int] = []
        real = IMAPClient.multiappend

        def counted(self: IMAPClient, folder: str, msgs: Any) -> Any:
            appends.append(len(msgs))
            return real(self, folder, msgs)

        monkeypatch.setattr(IMAPClient, "multiappend", counted)
        monkeypatch.setattr(copies, "COPY_BATCH", 4)
        account = make_account(db, smtp_starttls, dovecot)
        with mailconnect.sending(account) as conn:
            results = [conn.send(message(Subject=f"copy {i}")) for i in range(6)]
        assert appends == [4, 2]  # a full batch at the 4th message, the rest on close
        assert all(r.sent_copy_pending and r.sent_copy is None for r in results)
        kept = [o.result for o in conn.results if o.result]
        assert [(r.sent_copy, r.sent_copy_pending) for r in kept] == [("Sent", False)] * 6
        client.select_folder("Sent")
        new = sorted(set(client.search(["ALL"])) - before)
        fetched = client.fetch(new, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        ids = sorted(
            email.message_from_bytes(d[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"])["Message-ID"]
            for d in fetched.values()
        )
        assert ids == sorted(r.message_id for r in results)
        assert all(b"\\Seen" in d[b"FLAGS"] for d in fetched.values())
    finally:
        client.logout()


@pytestmark_peers
def test_an_idle_copy_thread_gets_a_smaller_batch_at_once(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any, dovecot: Any,
    peer_certs: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The thread starts idle, so IDLE_BATCH copies go at once instead of waiting for a full
    batch; later batches depend on how fast Dovecot is, but every copy is saved, once."""
    from flask_mailconnect.sending import copies

    appends: list[int] = []
    real = IMAPClient.multiappend

    def counted(self: IMAPClient, folder: str, msgs: Any) -> Any:
        appends.append(len(msgs))
        return real(self, folder, msgs)

    monkeypatch.setattr(IMAPClient, "multiappend", counted)
    monkeypatch.setattr(copies, "COPY_BATCH", 100)
    monkeypatch.setattr(copies, "IDLE_BATCH", 3)
    client = _imap(dovecot, peer_certs)
    try:
        if not client.folder_exists("Sent"):
            client.create_folder("Sent")
        client.select_folder("Sent")
        before = set(client.search(["ALL"]))
        account = make_account(db, smtp_starttls, dovecot)
        with mailconnect.sending(account) as conn:
            results = [conn.send(message(Subject=f"idle copy {i}")) for i in range(10)]
        assert appends[0] == 3 and sum(appends) == 10 and len(appends) >= 2, appends
        kept = [o.result for o in conn.results if o.result]
        assert [(r.sent_copy, r.sent_copy_pending) for r in kept] == [("Sent", False)] * 10
        client.select_folder("Sent")
        assert len(set(client.search(["ALL"])) - before) == 10
        assert len(results) == 10
    finally:
        client.logout()


@pytestmark_peers
def test_a_failed_batch_of_copies_is_reported_not_raised(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any, dovecot: Any,
) -> None:  # fmt: skip
    account = make_account(db, smtp_starttls, dovecot, folder_sent="No/Such/Folder")
    with mailconnect.sending(account) as conn:
        for i in range(3):
            conn.send(message(Subject=f"lost copy {i}"))
    assert len(smtp_starttls.messages) == 3 and conn.results.sent == 3
    assert conn.results.copies_failed == 3
    assert [o.result.sent_copy_error for o in conn.results if o.result] == ["append_failed"] * 3


@pytestmark_peers
def test_pipelined_smtputf8_and_8bitmime_as_one_at_a_time(
    peer_app: Flask, mailconnect: MailConnect, db: Any, pipelining: Any
) -> None:
    pipelining.smtputf8 = True
    account = make_account(db, pipelining)
    international = "ünïcode@example.org"
    msg = message(f"Ünï <{international}>, bob@example.com", Subject="Grüße")
    result = mailconnect.send(msg, account=account)
    assert pipelining.groups == 1
    assert result.accepted == [international, "bob@example.com"]
    [delivered] = pipelining.messages
    assert delivered.rcpt_tos == [international, "bob@example.com"]
    [mail_from] = pipelining.mail_commands
    assert {"SMTPUTF8", "BODY=8BITMIME"} <= set(mail_from.upper().split())
    assert f"To: Ünï <{international}>, bob@example.com".encode() in delivered.data
