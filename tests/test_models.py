"""Models and encryption at rest against every database the suite knows (SQLite, PostgreSQL,
MariaDB when MAILCONNECT_TEST_DATABASE_URLS lists them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask, current_app

from flask_mailconnect import (
    AuditEvent,
    EncryptionKeyError,
    MailAccount,
    MailConnect,
    SyncedMessage,
    account_disconnected,
)
from flask_mailconnect.credentials import stored_password
from tests import hostapp
from tests.conftest import cleaned_up, database_urls, db_label

PASSWORD = "s3cret-Pässword-✓"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@pytest.fixture(params=database_urls(), ids=db_label)
def db_app(request: pytest.FixtureRequest) -> Iterator[tuple[Flask, MailConnect]]:
    app, ext = hostapp.create_app(request.param, MAILCONNECT_ENCRYPTION_KEYS=[KEY_A])
    with cleaned_up(app):
        yield app, ext


def _account(owner_id: str = "1", email: str = "alice@example.test", **kw: object) -> MailAccount:
    values: dict[str, object] = dict(
        owner_kind="user",
        owner_id=owner_id,
        email=email,
        username=email,
        password=PASSWORD,
        smtp_host="smtp.example.test",
        smtp_port=587,
        smtp_security="starttls",
        imap_host="imap.example.test",
        imap_port=993,
        imap_security="ssl",
    )
    values.update(kw)
    return MailAccount(**values)


def _password(account_id: int) -> str | None:
    """The decrypted password, read the way the extension reads it (credentials.stored_password)."""
    state = current_app.extensions["mailconnect"]
    return stored_password(state, hostapp.db.session.get(MailAccount, account_id))


def _raw_password(account_id: int) -> str | None:
    return hostapp.db.session.execute(
        sa.text("SELECT password FROM mailconnect_account WHERE id = :id"), {"id": account_id}
    ).scalar_one()


def test_password_is_encrypted_at_rest_and_reads_back(db_app: tuple[Flask, MailConnect]) -> None:
    app, _ = db_app
    with app.app_context():
        account = _account()
        hostapp.db.session.add(account)
        hostapp.db.session.commit()
        raw = _raw_password(account.id)
        assert raw is not None and PASSWORD not in raw
        assert Fernet(KEY_A.encode()).decrypt(raw.encode()).decode() == PASSWORD
        hostapp.db.session.expire_all()
        assert _password(account.id) == PASSWORD
        assert PASSWORD not in repr(account)
        # The loaded instance never holds the secret: reading the attribute raises.
        with pytest.raises(sa.exc.InvalidRequestError):
            _ = hostapp.db.session.get(MailAccount, account.id).password


def test_datetimes_come_back_aware_utc(db_app: tuple[Flask, MailConnect]) -> None:
    app, _ = db_app
    moment = datetime(2026, 3, 29, 1, 30, 15, tzinfo=timezone.utc)
    with app.app_context():
        account = _account(last_success_at=moment)
        hostapp.db.session.add(account)
        hostapp.db.session.commit()
        hostapp.db.session.expire_all()
        loaded = hostapp.db.session.get(MailAccount, account.id)
        assert loaded.last_success_at == moment
        assert loaded.last_success_at.tzinfo is not None


def test_key_rotation_old_key_second_then_rotate_key_drops_it(
    db_app: tuple[Flask, MailConnect],
) -> None:
    app, _ = db_app
    with app.app_context():
        ids = []
        for n in range(3):
            account = _account(email=f"user{n}@example.test")
            hostapp.db.session.add(account)
            hostapp.db.session.flush()
            ids.append(account.id)
        hostapp.db.session.add(_account(email="nopass@example.test", password=None))
        hostapp.db.session.commit()
        hostapp.db.session.remove()

    # New key first, old key second: everything still reads.
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [KEY_B, KEY_A]
    with app.app_context():
        assert [_password(i) for i in ids] == [PASSWORD] * 3
        hostapp.db.session.remove()

    result = app.test_cli_runner().invoke(args=["mailconnect", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 3 row(s)" in result.output

    # Only the new key: still everything reads, and the raw tokens are B's.
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [KEY_B]
    with app.app_context():
        for i in ids:
            assert _password(i) == PASSWORD
            assert Fernet(KEY_B.encode()).decrypt(_raw_password(i).encode()).decode() == PASSWORD
        hostapp.db.session.remove()


def test_without_the_old_key_reads_fail_loudly_and_rotate_key_says_what_to_do(
    db_app: tuple[Flask, MailConnect],
) -> None:
    app, _ = db_app
    with app.app_context():
        account = _account()
        hostapp.db.session.add(account)
        hostapp.db.session.commit()
        account_id = account.id
        hostapp.db.session.remove()
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [KEY_B]
    with app.app_context():
        # Listing still works (secrets are not decrypted to show an account)...
        assert hostapp.db.session.get(MailAccount, account_id).email == "alice@example.test"
        # ...and using the secret says what went wrong.
        with pytest.raises(EncryptionKeyError, match="rotate-key"):
            _password(account_id)
    with app.app_context():
        hostapp.db.session.remove()
    result = app.test_cli_runner().invoke(args=["mailconnect", "rotate-key"])
    assert result.exit_code != 0
    assert "Put the old key back" in result.output
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [KEY_A]
    with app.app_context():  # nothing was half-rotated
        assert _password(account_id) == PASSWORD


def test_disconnect_deletes_account_and_synced_mail_but_keeps_pinned(
    db_app: tuple[Flask, MailConnect],
) -> None:
    app, ext = db_app
    received: list[dict[str, object]] = []
    with app.app_context():
        account = _account()
        other = _account(owner_id="2", email="bob@example.test")
        hostapp.db.session.add_all([account, other])
        hostapp.db.session.flush()
        hostapp.db.session.add_all(
            [
                SyncedMessage(account_id=account.id, uid=1, subject="gone"),
                SyncedMessage(account_id=account.id, uid=2, subject="pinned", pinned=True),
                SyncedMessage(account_id=other.id, uid=1, subject="bob's"),
            ]
        )
        hostapp.db.session.commit()
        account_id = account.id
        with account_disconnected.connected_to(lambda s, **kw: received.append(kw), app):
            ext.disconnect(account)
        hostapp.db.session.commit()
        hostapp.db.session.expire_all()
        assert hostapp.db.session.get(MailAccount, account_id) is None
        remaining = hostapp.db.session.scalars(
            sa.select(SyncedMessage).order_by(SyncedMessage.subject)
        ).all()
        assert [(m.subject, m.account_id) for m in remaining] == [
            ("bob's", other.id),
            ("pinned", None),
        ]
        assert len(received) == 1 and received[0]["account"].email == "alice@example.test"
        events = hostapp.db.session.scalars(sa.select(AuditEvent)).all()
        assert [(e.action, e.outcome, e.account_id) for e in events] == [
            ("disconnect", "ok", account_id)
        ]


def test_one_row_per_owner_and_address(db_app: tuple[Flask, MailConnect]) -> None:
    app, _ = db_app
    with app.app_context():
        hostapp.db.session.add(_account())
        hostapp.db.session.commit()
        hostapp.db.session.add(_account(owner_id="2"))  # the same address for someone else: fine
        hostapp.db.session.commit()
        hostapp.db.session.add(_account())
        with pytest.raises(sa.exc.IntegrityError):
            hostapp.db.session.commit()
        hostapp.db.session.rollback()


def test_init_db_creates_the_tables(tmp_path: object) -> None:
    app, _ = hostapp.create_app()
    with app.app_context():
        from flask_mailconnect import metadata

        metadata.drop_all(hostapp.db.engine)
        assert "mailconnect_account" not in sa.inspect(hostapp.db.engine).get_table_names()
    result = app.test_cli_runner().invoke(args=["mailconnect", "init-db"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        names = set(sa.inspect(hostapp.db.engine).get_table_names())
        assert {"mailconnect_account", "mailconnect_synced_message"} <= names
        assert "mailconnect_audit_event" in names
        hostapp.db.engine.dispose()


def test_missing_or_malformed_keys_are_explained() -> None:
    with pytest.raises(EncryptionKeyError, match="not a Fernet key"):
        hostapp.create_app(MAILCONNECT_ENCRYPTION_KEYS=["not-a-key"])
    app, _ = hostapp.create_app()
    out = app.test_cli_runner().invoke(args=["mailconnect", "generate-key"])
    assert out.exit_code == 0
    Fernet(out.output.strip().encode())  # a usable key
    with app.app_context():
        hostapp.db.engine.dispose()
