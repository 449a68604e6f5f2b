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
        result = ext.check(hostapp.db.session.get(MailAccount, account_id))
        assert result.code == "key_unavailable" and result.retryable
        assert "administrator must restore" in result.message


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
