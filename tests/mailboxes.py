"""Mailboxes on a private Dovecot, for the tests that sync, read or watch mail.

The ``imap_server`` (one Dovecot per test module) and ``inbox`` (its INBOX holding messages 1..60)
fixtures live in tests/conftest_peers.py; these are the helpers those tests share: log in with
imapclient, empty INBOX, build and APPEND numbered messages, store an account for the peer and
read back what a sync stored.
"""

from __future__ import annotations

import shutil
import ssl
from typing import Any

from imapclient import IMAPClient

from flask_mailconnect import MailAccount, SyncedMessage
from tests.peers.dovecot import DovecotPeer


def imap_client(peer: DovecotPeer) -> IMAPClient:
    """imapclient logged in to ``peer`` over implicit TLS (the test CA trusted)."""
    client = IMAPClient(
        peer.host, peer.ssl_port, ssl_context=ssl.create_default_context(cafile=peer.ca_file)
    )
    client.login(peer.user, peer.password)
    return client


def reset_inbox(peer: DovecotPeer) -> None:
    """Delete INBOX's messages, UID list and indexes: Dovecot recreates it with a new
    UIDVALIDITY (it keeps the dovecot-uidvalidity counter) and UIDs from 1."""
    maildir = peer.maildir
    for entry in maildir.iterdir():
        if entry.name.startswith("dovecot-uidvalidity"):
            continue
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir()
    shutil.chown(maildir, "dovecot", "dovecot")
    for sub in ("new", "cur", "tmp"):
        shutil.chown(maildir / sub, "dovecot", "dovecot")


def message(n: int, prefix: str = "Message") -> bytes:
    """Message number ``n``: subject "<prefix> <n:02d>", from sender<n>@example.com."""
    return (
        f"From: Sender {n} <sender{n}@example.com>\r\n"
        f"To: test@example.com\r\n"
        f"Subject: {prefix} {n:02d}\r\n"
        f"Date: Mon, 6 Jan 2025 {n % 24:02d}:00:00 +0200\r\n"
        f"Message-ID: <m{n}.{prefix.lower()}@example.com>\r\n"
        f"\r\n"
        f"Hello number {n}.\r\n"
    ).encode()


def fill(peer: DovecotPeer, numbers: range, prefix: str = "Message") -> None:
    """APPEND ``message(n, prefix)`` to INBOX for each n, in order (UIDs follow)."""
    client = imap_client(peer)
    try:
        for n in numbers:
            client.append("INBOX", message(n, prefix))
    finally:
        client.logout()


def make_account(db: Any, peer: Any, *, password: str | None = None, **extra: Any) -> MailAccount:
    """Alice's manual account reading ``peer`` over IMAPS (``extra`` overrides any field),
    committed."""
    fields: dict[str, Any] = dict(
        owner_kind="user", owner_id="1", provider="other", email="alice@example.com",
        username=getattr(peer, "user", ""), password=password or peer.password,
        smtp_host="localhost", smtp_port=587, smtp_security="starttls", imap_host="localhost",
        imap_port=getattr(peer, "ssl_port", 0), imap_security="ssl",
    )  # fmt: skip
    fields.update(extra)
    account = MailAccount(**fields)
    db.session.add(account)
    db.session.commit()
    return account


def rows(db: Any, account: MailAccount) -> list[SyncedMessage]:
    """The messages synced for ``account``, newest UID first."""
    return list(
        db.session.query(SyncedMessage)
        .filter_by(account_id=account.id)
        .order_by(SyncedMessage.uid.desc())
    )
