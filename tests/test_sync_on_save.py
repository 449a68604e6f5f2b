"""Mail on save: connecting or reconnecting an account loads its newest 50 messages at once,
through the host's job queue (``@mailconnect.enqueue``) when there is one, else in the request
with a bounded wait; the save never fails because of it. Against Dovecot and aiosmtpd."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_mailconnect import MailAccount, MailConnect, SyncedMessage, jobs
from flask_mailconnect.signals import new_mail
from tests.conftest import login
from tests.mailboxes import fill, make_account, reset_inbox
from tests.peers.dovecot import DovecotPeer

pytestmark = pytest.mark.peers


def connect_form(smtp: Any, imap: DovecotPeer, **overrides: Any) -> dict[str, str]:
    data = {
        "email": "alice@example.com", "provider": "other", "username": imap.user,
        "password": imap.password, "smtp_host": "localhost", "smtp_port": str(smtp.port),
        "smtp_security": "starttls", "receives": "y", "imap_host": "localhost",
        "imap_port": str(imap.ssl_port), "imap_security": "ssl", "display_name": "Alice",
        "save": "Save account",
    }  # fmt: skip
    data.update(overrides)
    return data


def stored_uids(app: Flask, db: Any) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(sa.select(SyncedMessage.uid).order_by(SyncedMessage.uid.desc()))
        )


def the_account(app: Flask, db: Any) -> MailAccount:
    with app.app_context():
        account = db.session.scalars(sa.select(MailAccount)).one()
        db.session.expunge(account)
        return account


def test_connect_loads_the_newest_50_at_once(
    peer_app: Flask, db: Any, client: Any, smtp_starttls: Any, inbox: DovecotPeer
) -> None:
    peer_app.config["WTF_CSRF_ENABLED"] = False
    announced: list[Any] = []
    login(client, 1)
    with new_mail.connected_to(lambda s, **kw: announced.append(kw), peer_app):
        saved = client.post("/email/connect", data=connect_form(smtp_starttls, inbox))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert stored_uids(peer_app, db) == list(range(60, 10, -1))
    assert announced == []  # the first sync of an account is not "new mail"
    account = the_account(peer_app, db)
    assert account.status == "connected" and account.last_synced_at is not None
    page = client.get(saved.location).get_data(as_text=True)
    assert "Message 60" in page and "Message 11" in page


def test_reconnect_loads_what_arrived_meanwhile(
    peer_app: Flask, db: Any, client: Any, smtp_starttls: Any, inbox: DovecotPeer
) -> None:
    peer_app.config["WTF_CSRF_ENABLED"] = False
    login(client, 1)
    assert client.post("/email/connect", data=connect_form(smtp_starttls, inbox)).status_code == 302
    account = the_account(peer_app, db)
    fill(inbox, range(61, 63))
    data = connect_form(smtp_starttls, inbox, save="Save and reconnect")
    del data["email"], data["display_name"]
    answer = client.post(f"/email/accounts/{account.id}/reconnect", data=data)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    assert stored_uids(peer_app, db)[:3] == [62, 61, 60]


def test_with_a_job_queue_the_sync_is_enqueued(
    peer_app: Flask, mailconnect: MailConnect, db: Any, client: Any, smtp_starttls: Any,
    inbox: DovecotPeer,
) -> None:  # fmt: skip
    queued: list[tuple[str, dict[str, Any]]] = []

    @mailconnect.enqueue
    def enqueue(job: str, **kwargs: Any) -> None:
        queued.append((job, kwargs))

    peer_app.config["WTF_CSRF_ENABLED"] = False
    login(client, 1)
    assert client.post("/email/connect", data=connect_form(smtp_starttls, inbox)).status_code == 302
    account = the_account(peer_app, db)
    assert queued == [("sync_account", {"account_id": account.id, "limit": 50})]
    assert stored_uids(peer_app, db) == []  # the request did not sync itself
    with peer_app.app_context():  # the worker runs the job
        job, kwargs = queued[0]
        result = getattr(jobs, job)(**kwargs)
    assert result["outcome"] == "ok" and result["new"] == 50
    assert stored_uids(peer_app, db) == list(range(60, 10, -1))


def test_a_failing_queue_falls_back_to_the_request(
    peer_app: Flask, mailconnect: MailConnect, db: Any, client: Any, smtp_starttls: Any,
    inbox: DovecotPeer,
) -> None:  # fmt: skip
    @mailconnect.enqueue
    def enqueue(job: str, **kwargs: Any) -> None:
        raise ConnectionError("redis is down")

    peer_app.config["WTF_CSRF_ENABLED"] = False
    login(client, 1)
    assert client.post("/email/connect", data=connect_form(smtp_starttls, inbox)).status_code == 302
    assert len(stored_uids(peer_app, db)) == 50


def test_a_slow_server_never_fails_the_save(
    peer_app: Flask, mailconnect: MailConnect, db: Any, silent_server: Any
) -> None:
    """The server accepts the connection and never answers: the load stops waiting after
    MAILCONNECT_SYNC_ON_SAVE_TIMEOUT, and nothing is recorded against the account."""

    class Silent:
        user, password, ssl_port = "nobody", "secret", silent_server.port

    peer_app.config["MAILCONNECT_SYNC_ON_SAVE_TIMEOUT"] = 0.3
    with peer_app.app_context():
        account = make_account(db, Silent)
        done = mailconnect.sync_on_save(account)
        assert (done.outcome, done.code) == ("timeout", "sync_timeout")
        db.session.expire_all()
        stored = db.session.get(MailAccount, account.id)
        assert stored.status == "connected" and stored.last_error_code is None


def test_a_refused_login_is_recorded_not_raised(
    peer_app: Flask, mailconnect: MailConnect, db: Any, inbox: DovecotPeer
) -> None:
    with peer_app.app_context():
        account = make_account(db, inbox, password="wrong-password")
        done = mailconnect.sync_on_save(account)
        assert (done.outcome, done.code) == ("failed", "auth_failed")
        assert "rejected the login" in done.message
        db.session.expire_all()
        assert db.session.get(MailAccount, account.id).status == "needs_reconnect"


def test_nothing_to_load(peer_app: Flask, mailconnect: MailConnect, db: Any) -> None:
    """Send-only accounts, and on-save loading turned off (timeout 0, no queue)."""
    with peer_app.app_context():
        send_only = make_account(db, object(), imap_host=None, imap_port=None,
                                 imap_security=None, password="x")  # fmt: skip
        assert mailconnect.sync_on_save(send_only).outcome == "skipped"
        peer_app.config["MAILCONNECT_SYNC_ON_SAVE_TIMEOUT"] = 0
        other = make_account(db, object(), email="b@example.com", password="x")
        assert mailconnect.sync_on_save(other).outcome == "skipped"


def test_oauth_connect_loads_the_newest_mail_at_once(
    oauth_provider: Any, smtp_starttls: Any, dovecot: Any
) -> None:
    """Connect with Google (the local OAuth server; XOAUTH2 to aiosmtpd and Dovecot): the
    callback's save is followed by the sync, so the account page has the mail at once."""
    from tests import hostapp
    from tests.oauth_flows import EXTERNAL, connect, providers
    from tests.peers.oauth import CLIENT_ID

    reset_inbox(dovecot)
    fill(dovecot, range(1, 8))
    app, _ext = hostapp.create_app(
        MAILCONNECT_PROVIDERS=providers(oauth_provider, smtp_starttls, dovecot),
        MAILCONNECT_EXTERNAL_URL=EXTERNAL, MAILCONNECT_ALLOW_PRIVATE_HOSTS=True,
        MAILCONNECT_SMTP_PORTS=None, MAILCONNECT_IMAP_PORTS=None,
        MAILCONNECT_CA_FILE=smtp_starttls.ca_file,
    )  # fmt: skip
    oauth_provider.add_redirect_uri(CLIENT_ID, f"{EXTERNAL}/email/oauth/google/callback")
    try:
        with app.app_context():
            client = app.test_client()
            login(client, 1)
            answer = connect(client)
            assert answer.status_code == 302, answer.get_data(as_text=True)
            db = hostapp.db
            db.session.expire_all()
            account = db.session.scalars(sa.select(MailAccount)).one()
            assert account.auth_method == "oauth2"
            uids = list(db.session.scalars(
                sa.select(SyncedMessage.uid).where(SyncedMessage.account_id == account.id)
            ))  # fmt: skip
            assert sorted(uids) == list(range(1, 8))
            assert account.last_synced_at is not None
    finally:
        with app.app_context():
            hostapp.db.session.remove()
            hostapp.db.engine.dispose()
        reset_inbox(dovecot)
