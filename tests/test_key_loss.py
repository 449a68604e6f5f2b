"""A lost or changed encryption key is a documented state, not a crash (issue 9, item 5, the
Python API part): ``send()`` says nothing was sent and that a retry helps, a send job releases
its claim so the message goes out once the key is back, ``check()`` reports an outcome instead
of raising, and an OAuth account can still be disconnected."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask

from flask_mailconnect import CredentialsUnavailable, MailAccount, MailConnect, jobs
from flask_mailconnect.models import SendClaim
from tests import hostapp
from tests.hostapp import TEST_KEY
from tests.peers import MAILBOX_PASSWORD, MAILBOX_USER

OTHER_KEY = Fernet.generate_key().decode()


@pytest.fixture
def kapp(
    tmp_path: Path, smtp_starttls: Any, dovecot: Any, peer_config: dict[str, Any]
) -> Iterator[tuple[Flask, MailConnect, int]]:
    app, ext = hostapp.create_app(f"sqlite:///{tmp_path / 'keys.db'}", **peer_config)
    with app.app_context():
        account = MailAccount(
            owner_kind="user", owner_id="1", email=MAILBOX_USER, username=MAILBOX_USER,
            password=MAILBOX_PASSWORD, smtp_host=smtp_starttls.host, smtp_port=smtp_starttls.port,
            smtp_security="starttls", imap_host=dovecot.host, imap_port=dovecot.ssl_port,
            imap_security="ssl", status="connected",
        )  # fmt: skip
        hostapp.db.session.add(account)
        hostapp.db.session.commit()
        account_id = account.id
    yield app, ext, account_id
    with app.app_context():
        hostapp.db.session.remove()
        hostapp.db.engine.dispose()


def _message(to: str = "bob@example.org") -> EmailMessage:
    msg = EmailMessage()
    msg["To"], msg["Subject"] = to, "Key loss"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg.set_content("hello")
    return msg


def test_send_with_the_key_gone_says_nothing_was_sent(
    kapp: tuple[Flask, MailConnect, int], smtp_starttls: Any
) -> None:
    app, ext, account_id = kapp
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [OTHER_KEY]  # rotated away before rotate-key
    with app.app_context():
        account = hostapp.db.session.get(MailAccount, account_id)
        before = smtp_starttls.connections
        with pytest.raises(CredentialsUnavailable) as failed:
            ext.send(_message(), account=account)
        assert failed.value.retryable and failed.value.code == "key_unavailable"
        assert "Nothing was sent" in str(failed.value)
        assert smtp_starttls.connections == before  # no connection was even opened
        assert account.status == "connected"  # the account is not blamed for the key
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [TEST_KEY]  # restored: it sends again
    with app.app_context():
        account = hostapp.db.session.get(MailAccount, account_id)
        assert ext.send(_message(), account=account).accepted == ["bob@example.org"]


def test_a_send_job_releases_its_claim_and_sends_once_the_key_is_back(
    kapp: tuple[Flask, MailConnect, int], smtp_starttls: Any
) -> None:
    app, _ext, account_id = kapp
    data = _message().as_bytes()
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [OTHER_KEY]
    with app.app_context():
        with pytest.raises(CredentialsUnavailable):
            jobs.send_message(account_id, data)
        assert hostapp.db.session.scalar(sa.select(sa.func.count()).select_from(SendClaim)) == 0
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [TEST_KEY]
    delivered = len(smtp_starttls.messages)
    with app.app_context():
        assert jobs.send_message(account_id, data)["outcome"] == "ok"
    assert len(smtp_starttls.messages) == delivered + 1


def test_check_with_the_key_gone_reports_instead_of_raising(
    kapp: tuple[Flask, MailConnect, int],
) -> None:
    app, ext, account_id = kapp
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [OTHER_KEY]
    with app.app_context():
        account = hostapp.db.session.get(MailAccount, account_id)
        before = (account.status, account.last_error_code, account.last_error_message)
        result = ext.check(account)
        assert result.code == "key_unavailable" and result.retryable
        assert "administrator must restore" in result.message
        assert result.outcome == "error" and result.status == "connected"
        hostapp.db.session.commit()
        hostapp.db.session.expire_all()
        account = hostapp.db.session.get(MailAccount, account_id)
        # The lost key is the operator's problem: the account is not marked.
        assert (account.status, account.last_error_code, account.last_error_message) == before


def test_an_oauth_account_is_disconnected_without_its_key(
    kapp: tuple[Flask, MailConnect, int],
) -> None:
    app, ext, _account_id = kapp
    app.config["MAILCONNECT_PROVIDERS"] = {"google": {"client_id": "i", "client_secret": "s"}}
    with app.app_context():
        oauth = MailAccount(
            owner_kind="user", owner_id="1", provider="google", auth_method="oauth2",
            email="ann@gmail.com", username="ann@gmail.com", access_token="at",
            refresh_token="rt", smtp_host="smtp.gmail.com", smtp_port=587,
            smtp_security="starttls", status="connected",
        )  # fmt: skip
        hostapp.db.session.add(oauth)
        hostapp.db.session.commit()
        oauth_id = oauth.id
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [OTHER_KEY]
    with app.app_context():
        ext.disconnect(hostapp.db.session.get(MailAccount, oauth_id))
        hostapp.db.session.commit()
        assert hostapp.db.session.get(MailAccount, oauth_id) is None


def test_a_page_needing_the_key_says_so_inside_the_host_layout(
    kapp: tuple[Flask, MailConnect, int],
) -> None:
    from tests.conftest import login

    app, _ext, account_id = kapp
    client = app.test_client()
    login(client, 1)
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [OTHER_KEY]
    response = client.get(f"/email/accounts/{account_id}/folders")
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"] == "300"
    assert "an administrator must restore it" in page
    assert 'id="host-nav"' in page  # inside the host's layout, not a bare error page
    # Pages that need no secret keep working: the account list, the account page.
    assert client.get("/email/").status_code == 200
    assert client.get(f"/email/accounts/{account_id}").status_code == 200


# -- every page and public method, with the key missing, rotated away, or a value corrupted ---

KEY_STATES = ["missing", "rotated", "corrupted"]
KEY_PAGE = "an administrator must restore it"
ADDRESS = "alice@example.org"


@pytest.fixture
def both(kapp: tuple[Flask, MailConnect, int]) -> tuple[Flask, MailConnect, int, int]:
    """``kapp`` plus an OAuth account of the same person (Google, a token still valid)."""
    from datetime import timedelta

    from flask_mailconnect.models import utcnow

    app, ext, password_id = kapp
    app.config["MAILCONNECT_PROVIDERS"] = {"google": {"client_id": "i", "client_secret": "s"}}
    with app.app_context():
        # an address the reconnect form accepts (it refuses the special-use .test); the
        # login stays the peers' mailbox
        hostapp.db.session.get(MailAccount, password_id).email = ADDRESS
        oauth = MailAccount(
            owner_kind="user", owner_id="1", provider="google", auth_method="oauth2",
            email="ann@gmail.com", username="ann@gmail.com", access_token="at",
            refresh_token="rt", token_expires_at=utcnow() + timedelta(hours=1),
            smtp_host="smtp.gmail.com", smtp_port=587, smtp_security="starttls",
            imap_host="imap.gmail.com", imap_port=993, imap_security="ssl", status="connected",
        )  # fmt: skip
        hostapp.db.session.add(oauth)
        hostapp.db.session.commit()
        oauth_id = oauth.id
    return app, ext, password_id, oauth_id


def _break_key(app: Flask, how: str) -> None:
    """The key missing, rotated away (another key configured), or each stored secret's
    ciphertext corrupted (one character changed in the middle; the key is fine)."""
    if how == "missing":
        app.config["MAILCONNECT_ENCRYPTION_KEYS"] = []
    elif how == "rotated":
        app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [OTHER_KEY]
    else:
        with app.app_context(), hostapp.db.engine.begin() as conn:
            columns = ("password", "access_token", "refresh_token")
            rows = conn.execute(
                sa.text(f"SELECT id, {', '.join(columns)} FROM mailconnect_account")
            ).all()
            for row in rows:
                values = {}
                for name, value in zip(columns, row[1:], strict=True):
                    if value:
                        middle = len(value) // 2
                        flipped = "A" if value[middle] != "A" else "B"
                        values[name] = value[:middle] + flipped + value[middle + 1 :]
                if values:
                    sets = ", ".join(f"{name} = :{name}" for name in values)
                    conn.execute(
                        sa.text(f"UPDATE mailconnect_account SET {sets} WHERE id = :id"),
                        {**values, "id": row[0]},
                    )


def _csrf(client: Any, account_id: int) -> str:
    """The session's CSRF token, from the account page (which needs no key)."""
    from tests.examplehost import csrf_token

    return csrf_token(client.get(f"/email/accounts/{account_id}").get_data(as_text=True))


def _is_key_page(response: Any) -> bool:
    page = response.get_data(as_text=True)
    return response.status_code == 503 and KEY_PAGE in page and 'id="host-nav"' in page


def _requests(
    account_id: int, oauth: bool, typed: dict[str, str]
) -> list[tuple[str, str, dict[str, str]]]:
    base = f"/email/accounts/{account_id}"
    listed = [
        ("GET", "/email/", {}),
        ("GET", base, {}),
        ("POST", base, {"display_name": "Ann", "signature_html": "<p>Ann</p>"}),
        ("GET", f"{base}/folders", {}),
        ("POST", f"{base}/folders", {"inbox": "INBOX", "sent": "Sent"}),
        ("GET", f"{base}/messages/INBOX/1", {}),
        ("POST", f"{base}/notifications", {"notify_email": "y"}),
        ("POST", f"{base}/sync", {}),
        ("GET", f"{base}/reconnect", {}),
        ("GET", f"{base}/disconnect", {}),
    ]
    if oauth:
        listed.append(("POST", f"{base}/oauth/test", {}))
    else:  # last: a reconnect with the password typed again stores it under today's key
        listed.append(("POST", f"{base}/reconnect/test", typed))
        listed.append(("POST", f"{base}/reconnect", typed))
    return listed


ADMIN_PAGES = [
    ("GET", "/email/admin/", {}),
    ("GET", "/email/admin/accounts", {}),
    ("GET", "/email/admin/audit", {}),
    ("GET", "/email/admin/users/1", {}),
    ("GET", "/email/admin/providers", {}),
]

#: Pages that cannot work without the stored secret: they must answer the key page.
NEEDS_THE_KEY = {"/folders", "/messages/INBOX/1", "/sync", "/oauth/test"}


@pytest.mark.parametrize("how", KEY_STATES)
def test_every_page_answers_the_key_page_or_works(
    both: tuple[Flask, MailConnect, int, int], how: str, smtp_starttls: Any, dovecot: Any
) -> None:
    from tests.conftest import login

    app, _ext, password_id, oauth_id = both
    typed = {
        "email": ADDRESS, "provider": "other", "username": MAILBOX_USER,
        "password": MAILBOX_PASSWORD, "smtp_host": smtp_starttls.host,
        "smtp_port": str(smtp_starttls.port), "smtp_security": "starttls", "receives": "y",
        "imap_host": dovecot.host, "imap_port": str(dovecot.ssl_port), "imap_security": "ssl",
    }  # fmt: skip
    _break_key(app, how)
    answers: dict[str, int] = {}
    for who in (1, 3):  # the owner, then an admin
        client = app.test_client()
        login(client, who)
        token = _csrf(client, password_id)
        for account_id, oauth in ((password_id, False), (oauth_id, True)):
            for method, url, form in _requests(account_id, oauth, typed) + ADMIN_PAGES:
                if url.startswith("/email/admin") and who != 3:
                    continue
                data = {**form, "csrf_token": token} if method == "POST" else None
                response = client.open(url, method=method, data=data)
                status = response.status_code
                answers[f"{who} {method} {url}"] = status
                assert status < 500 or _is_key_page(response), (how, who, method, url, status)
                # What cannot work without the secret answers the key page (to the owner;
                # an admin may not read someone's mail at all: 404).
                needs_key = any(url.endswith(tail) for tail in NEEDS_THE_KEY)
                if who == 1 and needs_key and (method == "POST" or "/sync" not in url):
                    assert _is_key_page(response), (how, who, method, url, status)
                if status == 503:
                    assert response.headers["Retry-After"] == "300"
                if who == 1 and url.endswith("/reconnect") and method == "POST":
                    # a new password needs only today's key: saved, unless there is none
                    assert status == (503 if how == "missing" else 302), (how, status)
        # The account list and each account's page work without the key.
        assert answers[f"{who} GET /email/"] == 200
        assert answers[f"{who} GET /email/accounts/{oauth_id}"] == 200
    # Admin actions that touch no secret work; disconnecting works for both kinds of account.
    admin = app.test_client()
    login(admin, 3)
    token = {"csrf_token": _csrf(admin, password_id)}
    for account_id in (password_id, oauth_id):
        deactivate = admin.post(f"/email/admin/accounts/{account_id}/deactivate", data=token)
        assert deactivate.status_code in (200, 302, 303), deactivate.status_code
        reactivate = admin.post(f"/email/admin/accounts/{account_id}/reactivate", data=token)
        assert reactivate.status_code in (200, 302, 303), reactivate.status_code
    owner = app.test_client()
    login(owner, 1)
    token = {"csrf_token": _csrf(owner, password_id)}
    for account_id in (oauth_id, password_id):
        gone = owner.post(f"/email/accounts/{account_id}/disconnect", data=token)
        assert gone.status_code in (200, 302, 303), gone.status_code
    with app.app_context():
        left = hostapp.db.session.scalar(sa.select(sa.func.count()).select_from(MailAccount))
        assert left == 0


@pytest.mark.parametrize("how", KEY_STATES)
def test_every_public_method_raises_the_documented_error(
    both: tuple[Flask, MailConnect, int, int], how: str, smtp_starttls: Any, dovecot: Any
) -> None:
    from flask_mailconnect import EncryptionKeyError, SyncError
    from flask_mailconnect.oauth.refresh import fresh_access_token, fresh_graph_token

    app, ext, password_id, oauth_id = both
    _break_key(app, how)
    before = (smtp_starttls.connections, len(dovecot.logins) if hasattr(dovecot, "logins") else 0)
    with app.app_context():
        for account_id in (password_id, oauth_id):
            account = hostapp.db.session.get(MailAccount, account_id)
            with pytest.raises(CredentialsUnavailable) as sent:
                ext.send(_message(), account=account)
            assert sent.value.code == "key_unavailable" and sent.value.retryable
            with pytest.raises(CredentialsUnavailable), ext.sending(account) as conn:
                conn.send(_message())
            for read in (ext.sync_recent, ext.list_folders):
                with pytest.raises(EncryptionKeyError) as failed:
                    read(account)
                assert not isinstance(failed.value, SyncError), read
            assert account.status == "connected"  # the account is not blamed for the key
            assert ext.recent_messages(account) == []  # stored rows need no key
            result = ext.check(account)  # reports instead of raising; the account unchanged
            assert result.code == "key_unavailable" and result.retryable
            assert account.status == "connected" and account.last_error_code is None
            hostapp.db.session.rollback()
        oauth = hostapp.db.session.get(MailAccount, oauth_id)
        state = app.extensions["mailconnect"]
        for fresh in (fresh_access_token, fresh_graph_token):
            with pytest.raises(EncryptionKeyError):
                fresh(state, oauth, force=True)
        ext.disconnect(oauth)
        ext.disconnect(hostapp.db.session.get(MailAccount, password_id))
        hostapp.db.session.commit()
        assert hostapp.db.session.scalar(sa.select(sa.func.count()).select_from(MailAccount)) == 0
    assert smtp_starttls.connections == before[0]  # nothing was even opened
