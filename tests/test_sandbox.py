"""The demo sandbox: its IMAP server through IMAPClient over verified TLS, its SMTP server."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from example_app.imap_server import parse_command, parse_sequence_set
from example_app.sandbox import Sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path_factory.mktemp("sandbox"), smtp_port=0, imap_port=0)
    box.start()
    yield box
    box.stop()


def tls(sandbox: Sandbox) -> ssl.SSLContext:
    """Trusts the sandbox's demo CA only, and checks the host name, like the extension does."""
    return ssl.create_default_context(cafile=sandbox.ca_file)


@pytest.fixture
def imap(sandbox: Sandbox) -> Iterator[IMAPClient]:
    client = IMAPClient(
        sandbox.imap_host, sandbox.imap_port, ssl=True, ssl_context=tls(sandbox), timeout=5
    )
    client.login(sandbox.address, sandbox.password)
    yield client
    client.logout()


def test_login_over_verified_tls(sandbox: Sandbox) -> None:
    with IMAPClient("localhost", sandbox.imap_port, ssl=True, ssl_context=tls(sandbox)) as c:
        assert b"SPECIAL-USE" in c.capabilities()
        assert c.login(sandbox.address, sandbox.password) is not None


def test_wrong_password_is_refused_with_authenticationfailed(sandbox: Sandbox) -> None:
    refused = pytest.raises(LoginError, match="AUTHENTICATIONFAILED")
    with (
        IMAPClient("localhost", sandbox.imap_port, ssl=True, ssl_context=tls(sandbox)) as c,
        refused,
    ):
        c.login(sandbox.address, "not-the-password")


def test_certificate_is_not_trusted_without_the_demo_ca(sandbox: Sandbox) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(
            "localhost", sandbox.imap_port, ssl=True, ssl_context=ssl.create_default_context()
        )


def test_login_with_literal_strings(sandbox: Sandbox) -> None:
    """Quoted strings with escapes (IMAPClient) and a UTF-8 ``{n}`` literal sent after the
    server's ``+`` continuation (imaplib)."""
    box = Sandbox(sandbox.directory, smtp_port=0, imap_port=0, seed=False)
    box.mailbox.password = 'pa"ss\\word'
    with box, IMAPClient("localhost", box.imap_port, ssl=True, ssl_context=tls(box)) as c:
        c.login(box.address, box.mailbox.password)
        assert c.select_folder("INBOX")[b"EXISTS"] == 0
    box.mailbox.password = "pässwörd"
    with box, imaplib.IMAP4_SSL("localhost", box.imap_port, ssl_context=tls(box)) as raw:
        raw.literal = box.mailbox.password.encode()  # sent as {10} + continuation + bytes
        typ, _ = raw._simple_command("LOGIN", f'"{box.address}"')
        assert typ == "OK"
        raw.state = "AUTH"  # what imaplib's own login() records
        assert raw.select("INBOX") == ("OK", [b"0"])


def test_authenticate_plain(sandbox: Sandbox) -> None:
    with IMAPClient("localhost", sandbox.imap_port, ssl=True, ssl_context=tls(sandbox)) as c:
        c.plain_login(sandbox.address, sandbox.password)
        assert c.select_folder("INBOX", readonly=True)[b"EXISTS"] >= 4


def test_select_reports_counts_and_uids(imap: IMAPClient) -> None:
    info = imap.select_folder("INBOX")
    assert info[b"EXISTS"] >= 4
    assert info[b"UIDVALIDITY"] > 0
    assert info[b"UIDNEXT"] > info[b"EXISTS"]
    assert b"\\Seen" in info[b"PERMANENTFLAGS"]
    assert b"READ-ONLY" in imap.select_folder("INBOX", readonly=True)


def test_list_shows_special_use_folders(imap: IMAPClient) -> None:
    folders = {name: flags for flags, _delim, name in imap.list_folders()}
    assert set(folders) >= {"INBOX", "Sent", "Drafts", "Archive", "Trash"}
    assert b"\\Sent" in folders["Sent"]
    assert b"\\Trash" in folders["Trash"]
    assert imap.find_special_folder(b"\\Archive") == "Archive"
    assert imap.find_special_folder(b"\\Drafts") == "Drafts"


def test_fetch_envelope_and_selected_headers(imap: IMAPClient) -> None:
    imap.select_folder("INBOX", readonly=True)
    ids = imap.search("ALL")
    data = imap.fetch(
        ids[:1], ["ENVELOPE", "FLAGS", "RFC822.SIZE", "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]"]
    )[ids[0]]
    envelope = data[b"ENVELOPE"]
    assert envelope.subject == b"Quote request: 40 standing desks"
    assert envelope.from_[0].mailbox == b"dana" and envelope.from_[0].host == b"northwind.example"
    headers = data[b"BODY[HEADER.FIELDS (FROM SUBJECT)]"]
    assert headers.startswith(b"From: Dana Whitfield <dana@northwind.example>\r\n")
    assert b"To:" not in headers
    assert data[b"RFC822.SIZE"] > len(headers)


def test_partial_body_peek_leaves_the_message_unread(imap: IMAPClient) -> None:
    imap.select_folder("INBOX")
    unread = imap.search("UNSEEN")
    data = imap.fetch(unread[:1], ["BODY.PEEK[TEXT]<0.20>"])[unread[0]]
    assert len(data[b"BODY[TEXT]<0>"]) == 20
    assert b"\\Seen" not in imap.get_flags(unread[:1])[unread[0]]


def test_uid_fetch_of_a_range(imap: IMAPClient) -> None:
    imap.select_folder("INBOX", readonly=True)
    uids = imap.search(["UID", "2:*"])
    assert uids and min(uids) == 2
    typ, lines = imap._imap.uid("FETCH", "2:3", "(FLAGS INTERNALDATE)")
    assert typ == "OK"
    assert [line.split(b" (")[1].split(b" ")[:2] for line in lines] == [
        [b"UID", b"2"],
        [b"UID", b"3"],
    ]  # UID first, added by the server although not asked for
    assert all(b"INTERNALDATE" in line for line in lines)


def test_append_then_it_appears(imap: IMAPClient) -> None:
    before = imap.folder_status("Drafts", [b"MESSAGES"])[b"MESSAGES"]
    imap.append("Drafts", b"Subject: Draft reply\r\n\r\nStill writing.\r\n", flags=[b"\\Draft"])
    imap.select_folder("Drafts")
    ids = imap.search("ALL")
    assert len(ids) == before + 1
    body = imap.fetch(ids[-1:], ["BODY[]", "FLAGS"])[ids[-1]]
    assert body[b"BODY[]"].endswith(b"Still writing.\r\n")
    assert b"\\Draft" in body[b"FLAGS"]
    imap.close_folder()


def test_unknown_commands_get_bad(imap: IMAPClient) -> None:
    with pytest.raises(imaplib.IMAP4.error, match="unknown command"):
        imap._imap.xatom("XYZZY")
    assert imap.noop()  # the session goes on


def test_smtp_auth_then_mail_arrives_in_the_imap_inbox(sandbox: Sandbox, imap: IMAPClient) -> None:
    message = EmailMessage()
    message["From"] = sandbox.address
    message["To"] = "customer@northwind.example"
    message["Subject"] = "Sent through the sandbox"
    message.set_content("Hello from the demo.")
    with smtplib.SMTP(sandbox.smtp_host, sandbox.smtp_port, timeout=5) as smtp:
        smtp.starttls(context=tls(sandbox))
        smtp.login(sandbox.address, sandbox.password)
        smtp.send_message(message)
    imap.select_folder("INBOX", readonly=True)
    newest = imap.search("ALL")[-1]
    envelope = imap.fetch([newest], ["ENVELOPE"])[newest][b"ENVELOPE"]
    assert envelope.subject == b"Sent through the sandbox"


def test_smtp_refuses_login_before_starttls_and_wrong_passwords(sandbox: Sandbox) -> None:
    with smtplib.SMTP(sandbox.smtp_host, sandbox.smtp_port, timeout=5) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth")  # no password over plaintext
        smtp.starttls(context=tls(sandbox))
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(sandbox.address, "wrong")


def test_parser_handles_literals_lists_and_sections() -> None:
    tokens = parse_command(
        b'a1 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.10>) {3}\r\nabc "q\\"x" NIL'
    )
    assert tokens == [
        "a1", "UID", "FETCH", "1:*",
        ["FLAGS", "BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.10>"], b"abc", 'q"x', None,
    ]  # fmt: skip
    assert parse_sequence_set("1:3,7,9:*", largest=10) == {1, 2, 3, 7, 9, 10}
    assert parse_sequence_set("5:*", largest=3) == {3, 4, 5}
