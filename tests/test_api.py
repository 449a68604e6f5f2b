"""The Python API a host calls: test_connection, connect_manual, accounts_for, default_account,
update_account, reconnect_manual, disconnect, with typed errors and signals (real peers)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_mailconnect import (
    AuditEvent,
    ConnectionTestFailed,
    InvalidSettings,
    MailAccount,
    MailConnect,
    PermissionDenied,
    ServerSettings,
    account_connected,
    account_disconnected,
    account_updated,
)
from tests.hostapp import User
from tests.peers.settings import peer_settings

pytestmark = pytest.mark.peers


@pytest.fixture
def settings(smtp_starttls: Any, dovecot: Any) -> ServerSettings:
    return peer_settings(smtp_starttls, dovecot, email="alice@example.com")


def _signals(app: Flask) -> tuple[list[tuple[str, dict[str, Any]]], list[Any]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    receivers = []
    for signal in (account_connected, account_updated, account_disconnected):

        def receiver(sender: Any, _name: str = signal.name, **extra: Any) -> None:
            assert sender is app
            actor = extra.get("actor")
            try:  # receivers get the account, never its secret
                leaked = extra["account"].password
            except sa.exc.InvalidRequestError:
                leaked = None
            assert leaked is None
            # Read the actor's id now: after the request/app context it is a detached object.
            seen.append((_name, {**extra, "actor_id": actor.id if actor is not None else None}))

        signal.connect(receiver, app)
        receivers.append((signal, receiver))
    return seen, receivers


def test_connect_list_update_disconnect_round_trip(
    peer_app: Flask, mailconnect: MailConnect, db: Any, settings: ServerSettings, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    seen, receivers = _signals(peer_app)
    try:
        with peer_app.app_context():
            alice = db.session.get(User, 1)
            report = mailconnect.test_connection(settings)
            assert report.ok and [r.code for r in report.results] == ["ok", "ok"]

            account = mailconnect.connect_manual(
                owner=("user", 1), settings=settings, actor=alice, display_name="Alice"
            )
            db.session.commit()
            assert account.owner == ("user", "1") and account.status == "connected"
            assert account.is_default and account.last_success_at is not None
            assert mailconnect.accounts_for(("user", "1")) == [account]
            assert mailconnect.default_account(("user", 1)) is account
            assert mailconnect.accounts_for(("user", "2")) == []

            changed = mailconnect.update_account(
                account, actor=alice, signature_html='<p>Alice <img src="https://t.example/p">'
                '<a href="javascript:alert(1)">x</a></p>', notify_mobile=False,
            )  # fmt: skip
            db.session.commit()
            assert changed == {"signature_html", "notify_mobile"}
            assert "javascript" not in account.signature_html
            assert "t.example" not in account.signature_html
            assert account.signature_text == "Alice x"
            # Saving the same values again changes nothing and fires nothing.
            assert mailconnect.update_account(account, actor=alice, notify_mobile=False) == set()
            with pytest.raises(InvalidSettings) as invalid:
                mailconnect.update_account(account, actor=alice, display_name="Eve\r\nBcc: x@y")
            assert "display_name" in invalid.value.errors
            assert account.display_name == "Alice"

            account_id = account.id
            mailconnect.disconnect(account, actor=alice)
            db.session.commit()
            assert db.session.get(MailAccount, account_id) is None
            assert mailconnect.accounts_for(("user", 1)) == []
            actions = db.session.execute(
                sa.select(AuditEvent.action, AuditEvent.outcome, AuditEvent.actor_label)
                .order_by(AuditEvent.id)
            ).all()  # fmt: skip
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver)

    assert [name for name, _ in seen] == [
        "mailconnect.account-connected",
        "mailconnect.account-updated",
        "mailconnect.account-disconnected",
    ]
    assert [extra["actor_id"] for _, extra in seen] == [1, 1, 1]
    assert seen[1][1]["changes"] == {"signature_html", "notify_mobile"}
    assert [tuple(a) for a in actions] == [
        ("test", "ok", "alice@example.test"),
        ("connect", "ok", "alice@example.test"),
        ("update", "ok", "alice@example.test"),
        ("disconnect", "ok", "alice@example.test"),
    ]
    assert settings.password not in caplog.text
    for _, extra in seen:
        assert settings.password not in repr(extra)


def test_wrong_password_raises_with_the_report_and_stores_nothing(
    peer_app: Flask, mailconnect: MailConnect, db: Any, settings: ServerSettings
) -> None:
    with peer_app.app_context():
        with pytest.raises(ConnectionTestFailed) as failed:
            mailconnect.connect_manual(
                owner=("user", 1), settings=replace(settings, password="wrong")
            )
        assert failed.value.report.smtp.code == "auth_failed"
        assert failed.value.report.imap is not None
        assert failed.value.report.imap.code == "auth_failed"
        assert "rejected the login or password" in str(failed.value)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MailAccount)) == 0


def test_invalid_settings_are_refused_before_any_connection(
    peer_app: Flask, mailconnect: MailConnect, smtp_starttls: Any, settings: ServerSettings
) -> None:
    peer_app.config["MAILCONNECT_SMTP_PORTS"] = [587]
    bad = replace(settings, email="not an address", smtp_security="tls", imap_host="bad host!")
    with peer_app.app_context(), pytest.raises(InvalidSettings) as invalid:
        mailconnect.connect_manual(owner=("user", 1), settings=bad)
    assert set(invalid.value.errors) == {"email", "smtp_port", "smtp_security", "imap_host"}
    assert "587" in invalid.value.errors["smtp_port"]
    assert smtp_starttls.connections == 0


def test_another_user_may_not_act_on_an_account_but_an_admin_may_manage_it(
    peer_app: Flask, mailconnect: MailConnect, db: Any, settings: ServerSettings
) -> None:
    with peer_app.app_context():
        alice, bob, admin = (db.session.get(User, i) for i in (1, 2, 3))
        with pytest.raises(PermissionDenied):
            mailconnect.connect_manual(owner=("user", 1), settings=settings, actor=bob)
        account = mailconnect.connect_manual(owner=("user", 1), settings=settings, actor=admin)
        db.session.commit()
        assert account.connected_by == "3"
        with pytest.raises(PermissionDenied):
            mailconnect.update_account(account, actor=bob, display_name="Bob was here")
        with pytest.raises(PermissionDenied):
            mailconnect.disconnect(account, actor=bob)
        assert mailconnect.update_account(account, actor=admin, display_name="Alice M") == {
            "display_name"
        }
        mailconnect.disconnect(account, actor=admin)
        db.session.commit()
        assert mailconnect.accounts_for(("user", 1)) == []


def test_connecting_the_same_address_again_signs_in_again_and_keeps_settings(
    peer_app: Flask, mailconnect: MailConnect, db: Any, settings: ServerSettings
) -> None:
    seen, receivers = _signals(peer_app)
    try:
        with peer_app.app_context():
            first = mailconnect.connect_manual(owner=("user", 1), settings=settings)
            mailconnect.update_account(first, signature_html="<b>Alice</b>")
            db.session.commit()
            again = mailconnect.connect_manual(
                owner=("user", 1), settings=replace(settings, email="ALICE@example.com")
            )
            db.session.commit()
            assert again.id == first.id
            assert again.signature_html == "<b>Alice</b>"
            assert len(mailconnect.accounts_for(("user", 1))) == 1
    finally:
        for signal, receiver in receivers:
            signal.disconnect(receiver)
    names = [name for name, _ in seen]
    assert names.count("mailconnect.account-connected") == 1
    assert seen[-1][1]["changes"] == {"credentials"}


def test_second_account_is_not_default_until_the_first_is_disconnected(
    peer_app: Flask, mailconnect: MailConnect, db: Any, settings: ServerSettings
) -> None:
    with peer_app.app_context():
        first = mailconnect.connect_manual(owner=("user", 1), settings=settings)
        second = mailconnect.connect_manual(
            owner=("user", 1), settings=replace(settings, email="alice.work@example.com")
        )
        db.session.commit()
        assert (first.is_default, second.is_default) == (True, False)
        mailconnect.update_account(second, is_default=True)
        db.session.commit()
        db.session.refresh(first)
        assert (first.is_default, second.is_default) == (False, True)
        # Unticking the default hands it on; the only account stays default.
        assert mailconnect.update_account(second, is_default=False) == {"is_default"}
        db.session.commit()
        db.session.refresh(first)
        assert (first.is_default, second.is_default) == (True, False)
        mailconnect.update_account(second, is_default=True)
        mailconnect.disconnect(second)
        db.session.commit()
        db.session.refresh(first)
        assert first.is_default
        assert mailconnect.default_account(("user", 1)) is first
        assert mailconnect.update_account(first, is_default=False) == set()
        assert first.is_default


def test_connection_tests_per_person_are_limited(
    peer_app: Flask, mailconnect: MailConnect, db: Any, settings: ServerSettings, smtp_starttls: Any
) -> None:
    from flask_mailconnect import TooManyTests

    peer_app.config["MAILCONNECT_TESTS_PER_HOUR"] = 2
    with peer_app.app_context():
        alice, bob = db.session.get(User, 1), db.session.get(User, 2)
        wrong = replace(settings, password="guess")
        for _ in range(2):
            with pytest.raises(ConnectionTestFailed):
                mailconnect.connect_manual(owner=("user", 1), settings=wrong, actor=alice)
            db.session.commit()  # the view commits the audit row of a failed test too
        attempts = len(smtp_starttls.auth_attempts)
        with pytest.raises(TooManyTests, match="2 connection tests in the last hour"):
            mailconnect.connect_manual(owner=("user", 1), settings=settings, actor=alice)
        assert len(smtp_starttls.auth_attempts) == attempts  # refused before any login
        # Someone else's budget is their own.
        assert mailconnect.connect_manual(owner=("user", 2), settings=settings, actor=bob)
