"""New mail: the ``new_mail`` signal against Dovecot, and the notification settings.

The signal fires once per account and sync for the messages that arrived since the previous
sync (never for the first sync, never twice for one message, not even when two workers sync
the same account), carrying sender, subject, times, a link to the message page and the
account's notification settings.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask

from flask_mailconnect import MailAccount, MailConnect, NewMessage, NotificationSettings
from flask_mailconnect.signals import new_mail
from tests import hostapp
from tests.conftest import database_urls, login
from tests.mailboxes import fill, imap_client, make_account, reset_inbox
from tests.peers.dovecot import DovecotPeer

pytestmark = pytest.mark.peers


Seen = list[dict[str, Any]]


def listen(app: Flask) -> Any:
    seen: Seen = []

    def receiver(sender: Any, **extra: Any) -> None:
        seen.append({"sender": sender, **extra})

    return seen, new_mail.connected_to(receiver, app)


def test_first_sync_is_quiet_then_new_messages_are_announced_once(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer
) -> None:
    seen, connected = listen(peer_app)
    with connected, peer_app.app_context():
        account = make_account(db, inbox)
        first = mailconnect.sync_recent(account)
        db.session.commit()
        assert first.new == 50 and first.announced == () and seen == []  # no flood
        fill(inbox, range(61, 64))
        second = mailconnect.sync_recent(account)
        db.session.commit()
        assert second.announced == (63, 62, 61)
        assert len(seen) == 1
        event = seen[0]
        assert event["sender"] is peer_app and event["account"] is account
        assert event["actor"] is None
        messages: list[NewMessage] = event["messages"]
        assert [m.uid for m in messages] == [63, 62, 61]
        newest = messages[0]
        assert newest.sender == "Sender 63 <sender63@example.com>"
        assert newest.subject == "Message 63"
        assert newest.folder == "INBOX" and newest.account_id == account.id
        assert newest.sent_at == datetime(2025, 1, 6, 13, 0, tzinfo=timezone.utc)  # 15:00 +0200
        assert newest.received_at is not None and newest.received_at.tzinfo is not None
        assert abs((datetime.now(timezone.utc) - newest.received_at).total_seconds()) < 3600
        assert newest.snippet == "Hello number 63."
        assert newest.url == f"/email/accounts/{account.id}/messages/INBOX/63"
        assert event["settings"] == NotificationSettings(enabled=True, mobile=True)
        assert event["settings"].push_to_mobile
        # Nothing arrived: nothing announced, and the three are never announced again.
        third = mailconnect.sync_recent(account)
        db.session.commit()
        assert third.announced == () and len(seen) == 1
        # A message deleted on the server and a flag change are not new mail either.
        client = imap_client(inbox)
        client.select_folder("INBOX")
        client.add_flags([62], [b"\\Seen"])
        client.delete_messages([61])
        client.expunge()
        client.logout()
        mailconnect.sync_recent(account)
        db.session.commit()
        assert len(seen) == 1


def test_settings_are_stored_and_carried(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer
) -> None:
    seen, connected = listen(peer_app)
    with connected, peer_app.app_context():
        account = make_account(db, inbox)
        assert (account.notify_new_mail, account.notify_new_mail_mobile) == (True, True)
        mailconnect.sync_recent(account)
        changed = mailconnect.update_account(account, notify_new_mail_mobile=False)
        db.session.commit()
        assert changed == {"notify_new_mail_mobile"}
        assert account.notify_email is True  # the health alert setting is its own
        fill(inbox, range(61, 62))
        mailconnect.sync_recent(account)
        db.session.commit()
        settings = seen[-1]["settings"]
        assert settings == NotificationSettings(enabled=True, mobile=False)
        assert settings.enabled and not settings.push_to_mobile
        mailconnect.update_account(account, notify_new_mail=False)
        db.session.commit()
        fill(inbox, range(62, 63))
        mailconnect.sync_recent(account)
        db.session.commit()
        # Still sent (counters stay right), saying the person turned notifications off.
        assert len(seen) == 2 and not seen[-1]["settings"].enabled
        db.session.expire_all()
        stored = db.session.get(MailAccount, account.id)
        assert (stored.notify_new_mail, stored.notify_new_mail_mobile) == (False, False)


def test_links_are_absolute_with_an_external_url(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer
) -> None:
    peer_app.config["MAILCONNECT_EXTERNAL_URL"] = "https://crm.example.test/"
    seen, connected = listen(peer_app)
    with connected, peer_app.app_context():
        account = make_account(db, inbox)
        mailconnect.sync_recent(account)
        fill(inbox, range(61, 62))
        mailconnect.sync_recent(account)
        db.session.commit()
        [message] = seen[0]["messages"]
        assert message.url == (
            f"https://crm.example.test/email/accounts/{account.id}/messages/INBOX/61"
        )


def test_a_resync_after_uidvalidity_changed_announces_nothing(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer
) -> None:
    seen, connected = listen(peer_app)
    with connected, peer_app.app_context():
        account = make_account(db, inbox)
        mailconnect.sync_recent(account)
        db.session.commit()
        reset_inbox(inbox)  # a new UIDVALIDITY: these UIDs say nothing about what is new
        fill(inbox, range(1, 70), prefix="Renewed")
        result = mailconnect.sync_recent(account)
        db.session.commit()
        assert result.full and result.new == 50
        assert seen == [] and result.announced == ()


@pytest.mark.parametrize("url", database_urls(), ids=lambda u: u.split(":")[0])
def test_two_workers_announce_each_message_once(
    url: str, peer_config: dict[str, Any], inbox: DovecotPeer, tmp_path: Any
) -> None:
    """Worker B read the account before worker A's sync committed: both fetch the new
    messages, only A (whose compare-and-set moved UIDNEXT) announces them."""
    if url == "sqlite://":  # one connection per session needs a file, not :memory:
        url = f"sqlite:///{tmp_path / 'workers.db'}"
    app, ext = hostapp.create_app(url, **peer_config, MAILCONNECT_CONNECT_TIMEOUT=5)
    seen, connected = listen(app)
    db = hostapp.db
    try:
        with connected, app.app_context():
            account_id = make_account(db, inbox).id
            ext.sync_recent(db.session.get(MailAccount, account_id))
            db.session.commit()
            fill(inbox, range(61, 63))
            with app.app_context():  # worker B: its own session, reads the account now
                stale = db.session.get(MailAccount, account_id)
                assert stale is not None and stale.sync_uidnext == 61
                with app.app_context():  # worker A syncs and commits first
                    fresh = db.session.get(MailAccount, account_id)
                    assert ext.sync_recent(fresh).announced == (62, 61)
                    db.session.commit()
                    db.session.remove()
                late = ext.sync_recent(stale)
                db.session.commit()
                assert late.new == 0 and late.announced == ()
                db.session.remove()
        assert [[m.uid for m in e["messages"]] for e in seen] == [[62, 61]]
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def checkbox(page: str, name: str) -> str:
    found = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert found is not None, name
    return found.group()


def test_notification_settings_form(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer, client: Any
) -> None:
    with peer_app.app_context():
        account_id = make_account(db, inbox).id
    login(client, 1)
    page = client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    assert "New mail notifications" in page and 'name="notify_new_mail"' in page
    assert "Do not notify on my phone" in page
    assert "Alert me when this account needs attention" in page  # health alerts, apart
    url = f"/email/accounts/{account_id}/notifications"
    assert client.post(url, data={"mute_new_mail_mobile": "y"}).status_code == 400  # no CSRF
    peer_app.config["WTF_CSRF_ENABLED"] = False
    answer = client.post(url, data={"notify_new_mail": "y", "mute_new_mail_mobile": "y"})
    assert answer.status_code == 302 and answer.location.endswith("#mc-notify-heading")
    with peer_app.app_context():
        stored = db.session.get(MailAccount, account_id)
        assert (stored.notify_new_mail, stored.notify_new_mail_mobile) == (True, False)
        assert stored.notify_email is True and stored.notify_mobile is True
    page = client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    assert "checked" in checkbox(page, "mute_new_mail_mobile")
    assert "checked" in checkbox(page, "notify_new_mail")
    login(client, 2)  # bob may not touch alice's account
    assert client.post(url, data={}).status_code == 404
    login(client, 3)  # an admin manages alice's account (but may not read her mail)
    assert client.post(url, data={}).status_code == 302
    with peer_app.app_context():
        stored = db.session.get(MailAccount, account_id)
        assert (stored.notify_new_mail, stored.notify_new_mail_mobile) == (False, True)


# -- long headers and failing receivers: the example host's toasts never stall a sync -----------


def _long_mail(uid: int) -> bytes:
    """A message whose decoded subject is 2,500 characters (folded) and sender 1,200."""
    words = [f"w{n:03d}" for n in range(500)]  # "w000 w001 ..." = 2,499 characters
    folded = "\r\n ".join(" ".join(words[i : i + 10]) for i in range(0, 500, 10))
    name = "N" * 1_200
    return (
        f"From: {name} <long@example.com>\r\nTo: alice@example.com\r\nSubject: {folded}\r\n"
        f"Date: Mon, 6 Jan 2025 15:00:00 +0200\r\nMessage-ID: <long{uid}@example.com>\r\n\r\n"
        "body\r\n"
    ).encode()


@pytest.mark.parametrize("url", database_urls(), ids=lambda u: u.split(":")[0])
def test_long_subjects_reach_the_example_host_and_a_failing_receiver_is_isolated(
    url: str,
    peer_config: dict[str, Any],
    inbox: DovecotPeer,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 2,500-character subject used to fail the sync's commit on PostgreSQL and MariaDB
    (the example's String(2000) column), so every later sync rolled back and tried again.
    Now NewMessage carries at most 998 characters, and a receiver that raises loses only its
    own rows: the others' rows and the sync (UIDNEXT moved) commit."""
    import sqlalchemy as sa

    from example_app.models import db as example_db
    from example_app.notifications import Notification
    from flask_mailconnect.signals import NEW_MESSAGE_TEXT_MAX
    from flask_mailconnect.sync import sync_recent
    from tests.examplehost import example_app_on

    def failing(sender: Any, **extra: Any) -> None:
        example_db.session.add(
            Notification(user_id=99, account_email="x", author="x", subject="x", url="/")
        )
        raise RuntimeError("receiver bug")

    with example_app_on(url, tmp_path, **peer_config) as app, app.app_context():
        state = app.extensions["mailconnect"]
        account = make_account(example_db, inbox, notify_new_mail=True)
        sync_recent(state, account)
        example_db.session.commit()
        client = imap_client(inbox)
        client.append("INBOX", _long_mail(61))
        client.logout()
        with new_mail.connected_to(failing, app), caplog.at_level("ERROR"):
            result = sync_recent(state, account)
            example_db.session.commit()
        assert result.announced == (61,)
        assert "a new_mail receiver failed" in caplog.text and "receiver bug" in caplog.text
        example_db.session.expire_all()
        notes = example_db.session.scalars(sa.select(Notification)).all()
        assert [(n.user_id, len(n.subject), len(n.author)) for n in notes] == [
            (1, NEW_MESSAGE_TEXT_MAX, NEW_MESSAGE_TEXT_MAX)
        ]
        assert notes[0].subject.startswith("w000 w001") and "\n" not in notes[0].subject
        assert example_db.session.get(MailAccount, account.id).sync_uidnext == 62


def test_example_toasts_only_go_to_paths_on_this_site(tmp_path: Any) -> None:
    """Dismissing or opening a toast redirects within the site: "/\\evil.example" is
    "//evil.example" to a browser, and a notification URL on another site becomes home."""
    from example_app.models import User
    from example_app.models import db as example_db
    from example_app.notifications import Notification
    from tests.examplehost import example_app_on, sign_in

    with example_app_on("sqlite://", tmp_path) as app:
        client = app.test_client()
        token = sign_in(client, "alice@demo.test", "alice")
        with app.app_context():
            alice = example_db.session.scalar(
                example_db.select(User).where(User.email == "alice@demo.test")
            )
            urls = ["/", "/", "/", "https://evil.example/x", "/\\evil.example/x"]
            notes = [
                Notification(user_id=alice.id, account_email="a", author="a", subject="s", url=u)
                for u in urls
            ]
            example_db.session.add_all(notes)
            example_db.session.commit()
            ids = [n.id for n in notes]
        for note_id, back in zip(ids, ["/\\evil.example", "/\\/evil.example", "/ok?x=1"]):
            answer = client.post(
                f"/notifications/{note_id}/dismiss", data={"csrf_token": token, "next": back}
            )
            assert answer.status_code == 302
            assert answer.headers["Location"] == ("/ok?x=1" if back == "/ok?x=1" else "/"), back
        for note_id in ids[3:]:
            answer = client.post(f"/notifications/{note_id}/open", data={"csrf_token": token})
            assert answer.status_code == 302
            assert "evil" not in answer.headers["Location"], answer.headers["Location"]
