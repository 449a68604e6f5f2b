"""credentials.py: settings for an account's servers, and its health bookkeeping."""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_mailconnect import AuditEvent, MailAccount, MailConnect
from flask_mailconnect.accounts.status import record_failure, record_success
from flask_mailconnect.credentials import server_settings
from flask_mailconnect.signals import account_needs_reconnect


def _account(db: Any) -> MailAccount:
    account = MailAccount(
        owner_kind="user", owner_id="1", provider="other", email="alice@example.com",
        username="alice", password="pässword", smtp_host="smtp.example.com", smtp_port=587,
        smtp_security="starttls", imap_host="imap.example.com", imap_port=993,
        imap_security="ssl",
    )  # fmt: skip
    db.session.add(account)
    db.session.commit()
    return account


def test_password_account_settings(app: Flask, mailconnect: MailConnect, db: Any) -> None:
    with app.app_context():
        account = _account(db)
        settings = server_settings(app.extensions["mailconnect"], account)
        assert (settings.username, settings.password, settings.oauth_token) == (
            "alice", "pässword", None,
        )  # fmt: skip
        assert (settings.smtp_host, settings.imap_port) == ("smtp.example.com", 993)
        assert "pässword" not in repr(settings)


def test_transient_failures_flag_error_and_credential_failures_need_reconnect_once(
    app: Flask, mailconnect: MailConnect, db: Any
) -> None:
    fired: list[str] = []
    state = app.extensions["mailconnect"]
    with (
        app.app_context(),
        account_needs_reconnect.connected_to(lambda sender, **kw: fired.append(kw["reason"]), app),
    ):
        account = _account(db)
        assert record_failure(state, account, "timeout") is False
        assert (account.status, account.last_error_code) == ("error", "timeout")
        assert "did not answer in time" in account.last_error_message
        record_success(account)
        assert (account.status, account.last_error_code) == ("connected", None)
        assert record_failure(state, account, "auth_failed") is True
        assert record_failure(state, account, "auth_failed") is False
        assert account.status == "needs_reconnect" and fired == ["auth_failed"]
        record_success(account)  # a lucky login does not clear needs_reconnect by itself
        assert account.status == "needs_reconnect"
        db.session.commit()
        actions = [e.action for e in db.session.query(AuditEvent).all()]
        assert actions == ["needs_reconnect"]


def test_an_admin_managing_a_personal_account_may_not_read_its_mail(
    app: Flask, mailconnect: MailConnect, db: Any
) -> None:
    import pytest

    from flask_mailconnect import PermissionDenied
    from tests.hostapp import User

    with app.app_context():
        account = _account(db)
        admin = db.session.get(User, 3)
        with pytest.raises(PermissionDenied):  # refused before any connection is attempted
            mailconnect.sync_recent(account, actor=admin)
        assert mailconnect.can(admin, "manage", account.owner)
        assert not mailconnect.can(admin, "read", account.owner)
