"""Real-world mail through the real sync: the corpus in tests/corpus/ is appended to Dovecot as
it is (8-bit headers, odd charsets, folding, comments, broken dates, multipart oddities) and
synced with ``sync_recent``; every stored subject, sender, date and snippet must match the
table in tests/corpus/expected.json (each entry says which shape its message has)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_mailconnect import MailConnect
from flask_mailconnect.transport import headers
from tests.mailboxes import imap_client, make_account, reset_inbox, rows
from tests.peers.dovecot import DovecotPeer

pytestmark = pytest.mark.peers

CORPUS = Path(__file__).parent / "corpus"
EXPECTED: dict[str, dict[str, str]] = {
    name: entry
    for name, entry in json.loads((CORPUS / "expected.json").read_text(encoding="utf-8")).items()
    if not name.startswith("_")
}
#: The INTERNALDATE every corpus message is appended with ("internal" in the table).
ARRIVED = datetime(2024, 12, 31, 23, 0, tzinfo=timezone.utc)


def append_corpus(peer: DovecotPeer) -> list[str]:
    """Empty INBOX, then APPEND every corpus file byte for byte; the names in UID order."""
    reset_inbox(peer)
    names = sorted(EXPECTED)
    client = imap_client(peer)
    try:
        for name in names:
            client.append("INBOX", (CORPUS / name).read_bytes(), msg_time=ARRIVED)
    finally:
        client.logout()
    return names


def expected_date(value: str) -> datetime:
    return ARRIVED if value == "internal" else datetime.fromisoformat(value)


def test_corpus_files_and_table_agree() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)
    assert len(EXPECTED) >= 20


def test_realworld_corpus_is_synced_decoded(
    peer_app: Flask, mailconnect: MailConnect, db: Any, imap_server: DovecotPeer
) -> None:
    names = append_corpus(imap_server)
    with peer_app.app_context():
        account = make_account(db, imap_server)
        result = mailconnect.sync_recent(account, limit=len(names))
        db.session.commit()
        assert result.new == len(names)
        stored = {m.uid: m for m in rows(db, account)}
        mismatches = []
        for uid, name in enumerate(names, start=1):
            want = EXPECTED[name]
            row = stored[uid]
            got = {
                "subject": row.subject,
                "sender": row.sender,
                "date": row.sent_at,
                "snippet": row.snippet,
            }
            wanted: dict[str, Any] = {
                "subject": want["subject"],
                "sender": want["sender"],
                "date": expected_date(want["date"]),
                "snippet": want["snippet"],
            }
            if "message_id" in want:
                got["message_id"], wanted["message_id"] = row.message_id, want["message_id"]
            for key, value in wanted.items():
                if got[key] != value:
                    mismatches.append(f"{name} {key}: {got[key]!r} != {value!r}")
            shown = row.subject + row.sender + row.snippet
            if "\ufffd" in shown or "=?" in row.subject + row.sender:
                mismatches.append(f"{name}: U+FFFD or a raw encoded word in {shown!r}")
        assert mismatches == []


def test_one_unreadable_header_leaves_the_others(
    peer_app: Flask, mailconnect: MailConnect, db: Any, imap_server: DovecotPeer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """A header whose decoding fails is left empty (the Date: the arrival date); the message's
    other headers and snippet are stored all the same."""
    reset_inbox(imap_server)
    client = imap_client(imap_server)
    try:
        client.append("INBOX", (CORPUS / "12-date-8bit-comment.eml").read_bytes(), msg_time=ARRIVED)
        client.append("INBOX", (CORPUS / "09-comments-in-from.eml").read_bytes(), msg_time=ARRIVED)
    finally:
        client.logout()

    def broken(value: Any, fallback: datetime | None = None) -> datetime | None:
        if value:
            raise RuntimeError("this decoder is broken")
        return fallback

    def broken_sender(value: Any, charset: str | None = None) -> str:
        raise RuntimeError("so is this one")

    monkeypatch.setattr(headers, "parse_date", broken)
    monkeypatch.setattr(headers, "format_sender", broken_sender)
    with peer_app.app_context():
        account = make_account(db, imap_server)
        assert mailconnect.sync_recent(account).new == 2
        db.session.commit()
        dated, commented = sorted(rows(db, account), key=lambda m: m.uid)
        assert dated.subject == "Date with an 8-bit comment"
        assert dated.sent_at == ARRIVED and dated.sender == ""
        assert dated.message_id == "<date-8bit@example.de>"
        assert dated.snippet == "The date header has raw 8-bit bytes."
        assert commented.subject == "Comments everywhere" and commented.sender == ""
