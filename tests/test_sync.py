"""Recent mail: sync_recent against Dovecot (60 messages) and the demo's IMAP server, and the
header / snippet decoding of transport/mailbox.py."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask
from imapclient import IMAPClient

from flask_mailconnect import MailAccount, MailConnect, SyncedMessage
from flask_mailconnect import sync as sync_module
from flask_mailconnect.exceptions import SyncError
from flask_mailconnect.signals import messages_synced
from flask_mailconnect.transport import mailbox
from flask_mailconnect.transport.imap import open_imap
from tests.conftest import database_urls
from tests.mailboxes import fill, imap_client, make_account, message, reset_inbox, rows
from tests.peers.dovecot import DovecotPeer

pytestmark = pytest.mark.peers


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every IMAP command sync.py sends, as text (``UID FETCH 61:* (...)``)."""
    sent: list[str] = []

    def spying_open_imap(*args: Any, **kwargs: Any) -> IMAPClient:
        client = open_imap(*args, **kwargs)
        real = client._imap._command

        def command(name: str, *cmd_args: Any) -> Any:
            parts = [a.decode() if isinstance(a, bytes) else str(a) for a in cmd_args]
            sent.append(" ".join([name, *parts]))
            return real(name, *cmd_args)

        client._imap._command = command  # type: ignore[method-assign]
        return client

    monkeypatch.setattr(sync_module, "open_imap", spying_open_imap)
    return sent


@pytest.fixture
def fired(peer_app: Flask) -> Iterator[list[int]]:
    """The ``count`` of each ``messages_synced`` signal during the test."""
    counts: list[int] = []
    with messages_synced.connected_to(lambda s, **kw: counts.append(kw["count"]), peer_app):
        yield counts


def fetches(sent: list[str]) -> list[str]:
    return [c for c in sent if c.startswith(("FETCH", "UID FETCH"))]


# -- Dovecot -----------------------------------------------------------------------------------


def test_first_sync_stores_the_newest_50_in_one_fetch(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer, commands: list[str],
    fired: list[int],
) -> None:  # fmt: skip
    with peer_app.app_context():
        account = make_account(db, inbox)
        result = mailconnect.sync_recent(account, limit=50)
        db.session.commit()
        assert (result.new, result.fetched, result.full) == (50, 50, True)
        assert fired == [50]
        assert len(fetches(commands)) == 1 and fetches(commands)[0].startswith("FETCH 11:*")
        assert "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE MESSAGE-ID" in commands[-2] or any(
            "BODY.PEEK[HEADER.FIELDS" in c for c in fetches(commands)
        )
        stored = rows(db, account)
        assert [m.uid for m in stored] == list(range(60, 10, -1))
        assert [m.subject for m in stored] == [f"Message {n:02d}" for n in range(60, 10, -1)]
        newest = stored[0]
        assert newest.sender == "Sender 60 <sender60@example.com>"
        assert newest.message_id == "<m60.message@example.com>"
        assert newest.sent_at == datetime(2025, 1, 6, 10, 0, tzinfo=timezone.utc)  # 12:00 +0200
        assert newest.snippet == "Hello number 60."
        assert "\\Seen" not in newest.flags.split()  # EXAMINE + BODY.PEEK: still unread
        assert (account.sync_uidnext, account.sync_uidvalidity) == (61, result.uidvalidity)
        assert account.last_synced_at is not None and account.status == "connected"


def test_second_sync_fetches_only_the_new_messages(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer, commands: list[str],
    fired: list[int],
) -> None:  # fmt: skip
    with peer_app.app_context():
        account = make_account(db, inbox)
        mailconnect.sync_recent(account)
        db.session.commit()
        fill(inbox, range(61, 64))
        commands.clear()
        result = mailconnect.sync_recent(account)
        db.session.commit()
        assert (result.new, result.full, result.uids) == (3, False, (63, 62, 61))
        header_fetches = [c for c in fetches(commands) if "BODY.PEEK" in c]
        assert header_fetches == [header_fetches[0]] and header_fetches[0].startswith(
            "UID FETCH 61:*"
        )
        # The only other FETCH reads flags of the kept range, no headers.
        assert [c.split(" (")[0] for c in fetches(commands)] == [
            "UID FETCH 61:*",
            "UID FETCH 11:60",
        ]
        stored = rows(db, account)
        assert [m.uid for m in stored] == list(range(63, 13, -1))  # the newest 50
        assert fired == [50, 3]

        commands.clear()  # nothing new: no header fetch at all
        result = mailconnect.sync_recent(account)
        assert result.new == 0 and not [c for c in fetches(commands) if "BODY.PEEK" in c]
        assert fired == [50, 3, 0]


def test_flags_and_deletions_on_the_server_are_followed(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer
) -> None:
    with peer_app.app_context():
        account = make_account(db, inbox)
        mailconnect.sync_recent(account)
        db.session.commit()
        client = imap_client(inbox)
        client.select_folder("INBOX")
        client.add_flags([60], [b"\\Seen"])
        client.delete_messages([59])
        client.expunge()
        client.logout()
        result = mailconnect.sync_recent(account)
        db.session.commit()
        stored = {m.uid: m for m in rows(db, account)}
        assert "\\Seen" in stored[60].flags.split()
        assert 59 not in stored and result.removed == 1


def test_changed_uidvalidity_resyncs_and_keeps_pinned_mail_detached(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer
) -> None:
    with peer_app.app_context():
        account = make_account(db, inbox)
        first = mailconnect.sync_recent(account)
        pinned = rows(db, account)[0]
        pinned.pinned = True
        db.session.commit()
        reset_inbox(inbox)  # the server recreates INBOX: new UIDVALIDITY, UIDs from 1
        fill(inbox, range(1, 56), prefix="Renewed")
        result = mailconnect.sync_recent(account)
        db.session.commit()
        assert result.full and result.uidvalidity != first.uidvalidity
        stored = rows(db, account)
        assert [m.uid for m in stored] == list(range(55, 5, -1))
        assert all(m.subject.startswith("Renewed") for m in stored)
        db.session.refresh(pinned)
        assert pinned.account_id is None and pinned.subject == "Message 60"
        assert account.sync_uidvalidity == result.uidvalidity


def test_duplicate_and_concurrent_inserts_never_duplicate_rows(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer
) -> None:
    with peer_app.app_context():
        account = make_account(db, inbox)
        mailconnect.sync_recent(account, limit=10)
        db.session.commit()
        # A second worker that read the account before the first one saved its state: it
        # fetches the same 10 messages again, and inserting them adds nothing (new == 0).
        account.sync_uidnext = None
        result = mailconnect.sync_recent(account, limit=10)
        db.session.commit()
        assert result.full and result.new == 0
        assert [m.uid for m in rows(db, account)] == list(range(60, 50, -1))


def test_sync_pin_disconnect_keeps_only_pinned_mail(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer
) -> None:
    with peer_app.app_context():
        account = make_account(db, inbox)
        mailconnect.sync_recent(account)
        kept = rows(db, account)[3]
        kept.pinned = True
        db.session.commit()
        kept_id = kept.id
        mailconnect.disconnect(account)
        db.session.commit()
        remaining = db.session.query(SyncedMessage).all()
        assert [(m.id, m.account_id, m.subject) for m in remaining] == [
            (kept_id, None, "Message 57")
        ]


def test_refused_login_marks_needs_reconnect_and_stops_trying(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer, commands: list[str]
) -> None:
    with peer_app.app_context():
        account = make_account(db, inbox, password="wrong-password")
        with pytest.raises(SyncError) as caught:
            mailconnect.sync_recent(account)
        db.session.commit()
        assert caught.value.code == "auth_failed" and not caught.value.retryable
        assert account.status == "needs_reconnect"
        assert "rejected the login" in account.last_error_message
        commands.clear()
        with pytest.raises(SyncError) as again:  # no new login with a refused password
            mailconnect.sync_recent(account)
        assert again.value.code == "auth_failed" and commands == []


def test_server_down_is_a_retryable_error(
    peer_app: Flask, mailconnect: MailConnect, db: Any
) -> None:
    from tests.peers import free_port

    class Down:
        user, password, ssl_port = "nobody", "secret", free_port()

    with peer_app.app_context():
        account = make_account(db, Down)
        with pytest.raises(SyncError) as caught:
            mailconnect.sync_recent(account)
        db.session.commit()
        assert caught.value.code == "refused" and caught.value.retryable
        assert (account.status, account.last_error_code) == ("error", "refused")
        assert not isinstance(caught.value.__cause__, Exception)  # no imaplib error inside


def test_account_page_lists_recent_mail_in_constant_queries(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer, client: Any
) -> None:
    from tests.conftest import count_queries, login

    with peer_app.app_context():
        account = make_account(db, inbox)
        mailconnect.sync_recent(account, limit=5)
        db.session.commit()
        account_id = account.id
    login(client, 1)

    def count(limit_rows: int) -> tuple[int, str]:
        with count_queries(peer_app) as seen:
            page = client.get(f"/email/accounts/{account_id}")
        assert page.status_code == 200
        return len(seen), page.get_data(as_text=True)

    count(5)  # warm-up: the first request loads what later ones have cached
    few, html = count(5)
    assert "Message 60" in html and "Message 56" in html and "Message 55" not in html
    assert html.count("data-unread") == 5
    with peer_app.app_context():
        acc = db.session.get(MailAccount, account_id)
        mailconnect.sync_recent(acc, limit=50)
        db.session.commit()
    many, html = count(50)
    assert "Message 11" in html and many == few


def test_refresh_button_syncs(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer, client: Any
) -> None:
    from tests.conftest import login

    with peer_app.app_context():
        account_id = make_account(db, inbox).id
    login(client, 1)
    assert client.post(f"/email/accounts/{account_id}/sync").status_code == 400  # no CSRF
    peer_app.config["WTF_CSRF_ENABLED"] = False
    answer = client.post(f"/email/accounts/{account_id}/sync")
    assert answer.status_code == 302 and answer.location.endswith("#mc-recent-heading")
    with client.session_transaction() as session:
        assert session["_flashes"] == [("success", "50 new messages.")]
    assert "Message 60" in client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    login(client, 2)  # bob may not see alice's account
    assert client.post(f"/email/accounts/{account_id}/sync").status_code == 404


# -- the demo's pure-Python IMAP server --------------------------------------------------------


def test_sync_against_the_demo_imap_server(
    peer_app: Flask, mailconnect: MailConnect, db: Any, tmp_path: Any
) -> None:
    from example_app.sandbox import Sandbox

    with Sandbox(tmp_path, smtp_port=0, imap_port=0, oauth_port=0) as sandbox:
        peer_app.config["MAILCONNECT_CA_FILE"] = sandbox.ca_file
        inbox = sandbox.mailbox.folder("INBOX")
        assert inbox is not None
        seeded = len(inbox.messages)
        for n in range(1, 61 - seeded):
            sandbox.mailbox.deliver(message(n, "Demo"))
        with peer_app.app_context():
            account = make_account(
                db, sandbox, username=sandbox.address, imap_port=sandbox.imap_port
            )
            result = mailconnect.sync_recent(account)
            db.session.commit()
            assert (result.new, result.full) == (50, True)
            assert [m.uid for m in rows(db, account)] == list(range(60, 10, -1))
            sandbox.mailbox.deliver(message(99, "Late"))
            again = mailconnect.sync_recent(account)
            db.session.commit()
            assert (again.new, again.uids) == (1, (61,))
            assert rows(db, account)[0].subject == "Late 99"
            # EXAMINE and BODY.PEEK: the sync marked nothing as read.
            assert not any("\\Seen" in m.flags for m in inbox.messages if m.uid > seeded)
            listing = mailconnect.list_folders(account)
            assert listing.suggested == {
                "inbox": "INBOX", "sent": "Sent", "archive": "Archive", "trash": "Trash"
            }  # fmt: skip


# -- decoding (no server) ----------------------------------------------------------------------


def summarize(raw: bytes) -> mailbox.MessageSummary:
    head, _, body = raw.partition(b"\r\n\r\n")
    return mailbox.summarize(
        7, {b"BODY[HEADER.FIELDS (FROM SUBJECT)]": head + b"\r\n\r\n", b"BODY[TEXT]<0>": body}
    )


def test_encoded_headers_dates_and_base64_body() -> None:
    body = base64.encodebytes("Grüße aus Köln – bis bald!\n".encode()).replace(b"\n", b"\r\n")
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>\r\n"
        b"Subject: =?iso-8859-1?q?Gr=FC=DFe?= und =?utf-8?b?8J+Quw==?=\r\n"
        b"Date: Tue, 7 Jan 2025 09:30:00 -0000\r\n"
        b"Message-ID: <a@b>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\n" + body
    )
    m = summarize(raw)
    assert m.sender == "Jürgen Müller <jm@example.de>"
    assert m.subject == "Grüße und 🐻"
    assert m.date == datetime(2025, 1, 7, 9, 30, tzinfo=timezone.utc)
    assert m.snippet == "Grüße aus Köln – bis bald!"


def test_multipart_snippet_prefers_plain_text_and_decodes_quoted_printable() -> None:
    raw = (
        b"From: a@example.com\r\nSubject: x\r\nDate: nonsense\r\n"
        b'Content-Type: multipart/alternative; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/html\r\n\r\n<p>HTML</p>\r\n"
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"Caf=C3=A9 =\r\nau lait\r\n--b1--\r\n"
    )
    m = summarize(raw)
    assert m.snippet == "Café au lait" and m.date is None


def test_html_only_snippet_is_text_and_long_text_is_cut() -> None:
    raw = (
        b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n"
        b"<html><head><style>p{color:red}</style></head><body><p>Hi &amp; welcome</p>"
        b"<script>alert(1)</script>" + b"<b>word</b> " * 100
    )
    m = summarize(raw)
    assert m.snippet.startswith("Hi & welcome word word")
    assert "alert" not in m.snippet and "color" not in m.snippet
    assert len(m.snippet) <= 201 and m.snippet.endswith("…")


def test_truncated_base64_still_gives_a_snippet() -> None:
    text = ("Zeile " * 2000).encode()
    body = base64.encodebytes(text)[:1001]  # cut mid-group, as a partial fetch does
    raw = b"Subject: x\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body
    assert summarize(raw).snippet.startswith("Zeile Zeile")


def test_hostile_messages_are_stored_cleaned_and_never_break_the_sync(
    peer_app: Flask, mailconnect: MailConnect, db: Any, imap_server: DovecotPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    reset_inbox(imap_server)
    hostile = [
        # A Date past datetime's range once converted to UTC (OverflowError).
        b"From: a@example.com\r\nSubject: far future\r\n"
        b"Date: Fri, 31 Dec 9999 23:59:59 -1200\r\nMessage-ID: <f@example.com>\r\n\r\nhi\r\n",
        # A charset that is a codec but raises whatever the errors mode (idna).
        b"From: b@example.com\r\nSubject: idna body\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=idna\r\n\r\n" + b"a" * 80 + b"..\xff\r\n",
        # NUL and control characters in encoded words and in the body.
        b"From: =?utf-8?q?Eve=00=07?= <e@example.com>\r\nSubject: =?utf-8?q?nul=00here=1b?=\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(b"x\x00y\x01z") + b"\r\n",
        # A subject far longer than a header line may be.
        b"From: c@example.com\r\nSubject: " + b"s" * 3000 + b"\r\n\r\nlong\r\n",
        # A non-text codec as charset.
        b"From: d@example.com\r\nSubject: zlib\r\nContent-Type: text/plain; charset=zlib_codec"
        b"\r\n\r\nplain\r\n",
    ]
    client = imap_client(imap_server)
    try:
        for raw in hostile:
            client.append("INBOX", raw)
    finally:
        client.logout()
    with peer_app.app_context():
        account = make_account(db, imap_server)
        result = mailconnect.sync_recent(account)
        db.session.commit()
        assert result.new == 5
        stored = {m.uid: m for m in rows(db, account)}
        far, idna, nul, long, zlib = (stored[uid] for uid in sorted(stored))
        assert far.subject == "far future" and far.sent_at is not None
        assert idna.subject == "idna body" and idna.snippet.startswith("aaaa")
        assert nul.subject == "nulhere" and nul.sender == "Eve <e@example.com>"
        assert nul.snippet == "xyz"
        assert len(long.subject) == 998
        assert zlib.snippet == "plain"
        # A message that cannot be read at all is kept with its UID and no headers.
        fill(imap_server, range(1, 2))

        def broken(header: bytes, body: bytes, length: int = 0) -> str:
            raise RuntimeError("boom")

        monkeypatch.setattr(mailbox, "make_snippet", broken)
        again = mailconnect.sync_recent(account)
        db.session.commit()
        assert again.new == 1 and account.status == "connected"
        assert rows(db, account)[0].subject == ""


@pytest.mark.parametrize("url", database_urls(), ids=lambda u: u.split(":")[0])
def test_one_insert_per_batch_and_each_message_parsed_once(
    url: str, peer_config: dict[str, Any], inbox: DovecotPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13: 50 rows go in with ONE statement (a cached executemany) on every database,
    and each message's fetched bytes are parsed once (headers and snippet share the parse;
    single-part messages are read without the email feed parser)."""
    import email

    from tests import hostapp
    from tests.conftest import count_queries

    parsed: list[int] = []
    fed: list[int] = []
    real_parse, real_feed = mailbox._parse, email.message_from_bytes

    def counting(header: bytes, body: bytes) -> Any:
        parsed.append(len(header) + len(body))
        return real_parse(header, body)

    def feeding(data: bytes, *args: Any, **kwargs: Any) -> Any:
        fed.append(len(data))
        return real_feed(data, *args, **kwargs)

    app, ext = hostapp.create_app(url, **peer_config, MAILCONNECT_CONNECT_TIMEOUT=5)
    db = hostapp.db
    try:
        with app.app_context():
            account = make_account(db, inbox)
            monkeypatch.setattr(mailbox, "_parse", counting)
            monkeypatch.setattr(email, "message_from_bytes", feeding)
            with count_queries(app) as seen:
                result = ext.sync_recent(account)
            monkeypatch.undo()
            db.session.commit()
            assert result.new == 50
            assert len(rows(db, account)) == 50
        inserts = [s for s in seen if s.lstrip().upper().startswith("INSERT")
                   and "mailconnect_synced_message" in s]  # fmt: skip
        assert len(inserts) == 1, inserts
        assert len(parsed) == 50 and not fed
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
