"""A rotated refresh token is never lost silently when the database fails to save it (issue 9,
item 7).

The local Authlib OAuth server rotates refresh tokens (Microsoft flavour): once it has answered
a refresh, the old refresh token is spent. The tests make the database REALLY refuse the save,
with a failure installed in the database itself:

* PostgreSQL: a ``DEFERRABLE INITIALLY DEFERRED`` constraint trigger that raises at COMMIT while
  a sequence (not rolled back with the transaction) is below the budget;
* MariaDB: a ``BEFORE UPDATE`` trigger that signals SQLSTATE 45000 while a budget in a
  non-transactional (MyISAM) table lasts;
* SQLite: a ``BEFORE UPDATE`` trigger calling ``RAISE(ABORT)`` while a budget lasts (the budget
  is a function registered on every connection).

Each fires only when a new, non-empty refresh token is written. With a budget below the number
of save attempts the token ends up stored and the next refresh works; with an endless budget
the account is marked ``token_save_failed`` and the caller gets :class:`TokenSaveFailed`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flask_mailconnect import (
    AccountStatus,
    AuditEvent,
    MailAccount,
    NeedsReconnect,
    TokenSaveFailed,
    account_needs_reconnect,
)
from flask_mailconnect.codes import RETRYABLE_CODES, TOKEN_SAVE_FAILED, message_for
from flask_mailconnect.columns import open_secret
from flask_mailconnect.models import utcnow
from flask_mailconnect.oauth import locks
from flask_mailconnect.oauth.refresh import fresh_access_token
from tests import hostapp
from tests.conftest import cleaned_up
from tests.oauth_accounts import server_url
from tests.peers import require_peer
from tests.peers.oauth import CLIENT_ID, CLIENT_SECRET, MICROSOFT, refresh

EMAIL = "alice@example.test"
ENDLESS = 10_000


@pytest.fixture(
    params=["sqlite-file", "postgresql", "mysql"], ids=["sqlite-file", "postgresql", "mariadb"]
)
def save_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'save.db'}"
    url = server_url(request.param)
    if url is None:
        require_peer(request.param, f"MAILCONNECT_TEST_DATABASE_URLS lists no {request.param} URL")
    assert url is not None
    return url


@pytest.fixture
def save_app(save_url: str, oauth_provider: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(locks, "SAVE_BACKOFF", 0.01)  # the same attempts, shorter pauses
    urls = oauth_provider.urls(MICROSOFT)
    app, _ = hostapp.create_app(
        save_url,
        MAILCONNECT_PROVIDERS={
            "microsoft": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "authorize_url": urls.authorize_url,
                "token_url": urls.token_url,
            }
        },
        MAILCONNECT_ALLOW_PRIVATE_HOSTS=True,  # the OAuth server listens on loopback
    )
    with cleaned_up(app, before_drop=_remove_failure_from):
        yield app


# -- the failure, installed in the database ---------------------------------------------------


@dataclass
class Budget:
    """How many saves of a new refresh token the database refuses (SQLite: counted here)."""

    left: int
    refused: int = 0

    def spend(self) -> int:
        if self.left <= 0:
            return 0
        self.left -= 1
        self.refused += 1
        return 1


def _install_failure(engine: sa.Engine, refusals: int) -> Budget:
    budget = Budget(refusals)
    dialect = engine.dialect.name
    if dialect == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def register(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.create_function("mc_test_refuse", 0, budget.spend)

        engine.dispose()  # every connection from now on has the function
    with engine.begin() as conn:
        _remove_failure(conn)
        if dialect == "postgresql":
            conn.execute(sa.text("CREATE SEQUENCE mc_test_refusals"))
            conn.execute(
                sa.text(
                    "CREATE FUNCTION mc_test_refuse() RETURNS trigger AS $$ BEGIN "
                    f"IF nextval('mc_test_refusals') <= {int(refusals)} THEN "
                    "RAISE EXCEPTION 'mc test: the save is refused at commit'; END IF; "
                    "RETURN NULL; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE CONSTRAINT TRIGGER mc_test_refuse AFTER UPDATE ON mailconnect_account "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.refresh_token IS NOT "
                    "NULL AND NEW.refresh_token IS DISTINCT FROM OLD.refresh_token) "
                    "EXECUTE FUNCTION mc_test_refuse()"
                )
            )
        elif dialect in ("mysql", "mariadb"):
            # MyISAM: the budget's decrement survives the failed statement's rollback
            conn.execute(sa.text("CREATE TABLE mc_test_budget (n INT, refused INT) ENGINE=MyISAM"))
            conn.execute(sa.text(f"INSERT INTO mc_test_budget VALUES ({int(refusals)}, 0)"))
            conn.execute(
                sa.text(
                    "CREATE TRIGGER mc_test_refuse BEFORE UPDATE ON mailconnect_account "
                    "FOR EACH ROW BEGIN "
                    "IF NEW.refresh_token IS NOT NULL AND NOT (NEW.refresh_token <=> "
                    "OLD.refresh_token) AND (SELECT n FROM mc_test_budget) > 0 THEN "
                    "UPDATE mc_test_budget SET n = n - 1, refused = refused + 1; "
                    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'mc test: the save is refused'; "
                    "END IF; END"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE TRIGGER mc_test_refuse BEFORE UPDATE ON mailconnect_account "
                    "WHEN NEW.refresh_token IS NOT NULL AND NEW.refresh_token IS NOT "
                    "OLD.refresh_token BEGIN SELECT RAISE(ABORT, 'mc test: the save is refused') "
                    "WHERE mc_test_refuse() = 1; END"
                )
            )
    return budget


def _refused(engine: sa.Engine, budget: Budget) -> int:
    """How many saves the database refused so far."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            last, called = conn.execute(
                sa.text("SELECT last_value, is_called FROM mc_test_refusals")
            ).one()
            return min(int(last) if called else 0, budget.left)
        if engine.dialect.name in ("mysql", "mariadb"):
            return int(conn.execute(sa.text("SELECT refused FROM mc_test_budget")).scalar_one())
    return budget.refused


def _remove_failure(conn: sa.Connection) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(sa.text("DROP TRIGGER IF EXISTS mc_test_refuse ON mailconnect_account"))
        conn.execute(sa.text("DROP FUNCTION IF EXISTS mc_test_refuse()"))
        conn.execute(sa.text("DROP SEQUENCE IF EXISTS mc_test_refusals"))
    elif dialect in ("mysql", "mariadb"):
        conn.execute(sa.text("DROP TRIGGER IF EXISTS mc_test_refuse"))
        conn.execute(sa.text("DROP TABLE IF EXISTS mc_test_budget"))
    else:
        conn.execute(sa.text("DROP TRIGGER IF EXISTS mc_test_refuse"))


def _remove_failure_from(engine: sa.Engine) -> None:
    """The failure removed before the tables are dropped: its function, sequence or budget
    table is none of the tables ``drop_all`` knows."""
    with engine.begin() as conn:
        _remove_failure(conn)


# -- helpers ----------------------------------------------------------------------------------


def _connect_account(server: Any) -> tuple[int, dict[str, Any]]:
    original = server.issue_token(EMAIL, client_id=CLIENT_ID, flavour=MICROSOFT)
    account = MailAccount(
        owner_kind="user", owner_id="1", provider=MICROSOFT, auth_method="oauth2", email=EMAIL,
        username=EMAIL, smtp_host="smtp.example.test", smtp_port=587, smtp_security="starttls",
        access_token=original["access_token"], refresh_token=original["refresh_token"],
        token_scopes=original["scope"], token_expires_at=utcnow() + timedelta(hours=1),
    )  # fmt: skip
    hostapp.db.session.add(account)
    hostapp.db.session.flush()
    account_id = account.id
    hostapp.db.session.commit()
    hostapp.db.session.remove()  # no transaction left open (MariaDB: it would block the DDL)
    return account_id, original


def _stored(account_id: int) -> Any:
    hostapp.db.session.remove()
    return hostapp.db.session.execute(
        sa.select(
            MailAccount.status,
            MailAccount.last_error_code,
            MailAccount.last_error_message,
            MailAccount.access_token,
            MailAccount.refresh_token,
        ).where(MailAccount.id == account_id)
    ).one()


def _force(app: Any, account_id: int) -> str:
    state = app.extensions["mailconnect"]
    account = hostapp.db.session.get(MailAccount, account_id)
    return fresh_access_token(state, account, force=True)


# -- the tests --------------------------------------------------------------------------------


def test_the_rotated_token_is_stored_although_the_first_saves_fail(
    save_app: Any, oauth_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = oauth_provider
    assert server.rotate_refresh_tokens[MICROSOFT]
    assert locks.SAVE_ATTEMPTS > 3
    with save_app.app_context():
        account_id, original = _connect_account(server)
        engine = hostapp.db.engine
        budget = _install_failure(engine, 3)
        hostapp.db.session.remove()

        with caplog.at_level(logging.INFO, logger="flask_mailconnect"):
            token = _force(save_app, account_id)

        assert _refused(engine, budget) == 3  # the database really refused three saves
        assert server.refresh_requests == 1  # one refresh; the saves were retried, not it
        row = _stored(account_id)
        assert row.status == AccountStatus.CONNECTED
        assert open_secret(row.access_token) == token and server.token_active(token)
        stored_refresh = open_secret(row.refresh_token)
        assert stored_refresh != original["refresh_token"]  # the rotated one is stored
        attempts = [r for r in caplog.records if "attempt" in r.getMessage()]
        assert len(attempts) == 3
        for secret in (token, stored_refresh, original["refresh_token"]):
            assert secret not in caplog.text
        assert "the save is refused" not in caplog.text  # the database's text is not logged

        # The next refresh, against the OAuth server, spends the stored token and works.
        again = _force(save_app, account_id)
        assert server.refresh_requests == 2
        assert again != token and server.token_active(again)
        assert _stored(account_id).status == AccountStatus.CONNECTED
        hostapp.db.session.remove()
    # the original refresh token is spent: saving the rotated one was the only way on
    assert refresh(server, original["refresh_token"], MICROSOFT).status_code == 400


def test_when_every_save_fails_the_account_says_token_save_failed(
    save_app: Any, oauth_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = oauth_provider
    received: list[dict[str, Any]] = []

    def on_reconnect(sender: Any, **extra: Any) -> None:
        received.append(extra)

    with save_app.app_context(), account_needs_reconnect.connected_to(on_reconnect):
        account_id, original = _connect_account(server)
        engine = hostapp.db.engine
        budget = _install_failure(engine, ENDLESS)
        hostapp.db.session.remove()

        with (
            caplog.at_level(logging.INFO, logger="flask_mailconnect"),
            pytest.raises(TokenSaveFailed) as caught,
        ):
            _force(save_app, account_id)

        assert _refused(engine, budget) == locks.SAVE_ATTEMPTS
        assert server.refresh_requests == 1
        error = caught.value
        assert isinstance(error, NeedsReconnect)  # handled like any lost grant
        assert error.error == TOKEN_SAVE_FAILED
        assert str(error) == message_for(TOKEN_SAVE_FAILED)
        assert "Sign in again" in str(error) and "administrator" in str(error)
        assert TOKEN_SAVE_FAILED not in RETRYABLE_CODES  # the new token is gone: not retryable

        row = _stored(account_id)
        assert row.status == AccountStatus.NEEDS_RECONNECT
        assert row.last_error_code == TOKEN_SAVE_FAILED
        assert row.last_error_message == message_for(TOKEN_SAVE_FAILED)
        assert row.refresh_token is None  # the spent token is not kept to be spent again
        audit = hostapp.db.session.execute(
            sa.select(AuditEvent.action, AuditEvent.detail).where(
                AuditEvent.account_id == account_id
            )
        ).all()
        assert [tuple(a) for a in audit] == [("needs_reconnect", TOKEN_SAVE_FAILED)]
        assert [r["reason"] for r in received] == [TOKEN_SAVE_FAILED]

        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1 and "rotated refresh token" in errors[0].getMessage()
        assert str(account_id) in errors[0].getMessage()
        assert original["refresh_token"] not in caplog.text
        assert original["access_token"] not in caplog.text
        assert "the save is refused" not in caplog.text

        # Later calls say the same without spending anything at the provider.
        with pytest.raises(TokenSaveFailed):
            _force(save_app, account_id)
        assert server.refresh_requests == 1
        assert len(received) == 1
        hostapp.db.session.remove()


def test_a_retry_never_overwrites_a_newer_token(
    save_app: Any, oauth_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """While the save is being retried, the account is reconnected (a newer grant is written
    by another connection): the retry leaves the newer token alone."""
    server = oauth_provider
    with save_app.app_context():
        account_id, original = _connect_account(server)
        engine = hostapp.db.engine
        _install_failure(engine, 1)
        newer = server.issue_token(EMAIL, client_id=CLIENT_ID, flavour=MICROSOFT)
        state = save_app.extensions["mailconnect"]
        sealed_newer = state.cipher.encrypt(newer["refresh_token"].encode()).decode()
        hostapp.db.session.remove()

        class Reconnect(logging.Handler):
            """Writes the newer grant the moment the first attempt is reported failed."""

            def emit(self, record: logging.LogRecord) -> None:
                if "attempt 1 of" in record.getMessage():
                    with engine.begin() as conn:
                        conn.execute(
                            sa.text(
                                "UPDATE mailconnect_account SET refresh_token = :token, "
                                "status = 'connected' WHERE id = :id"
                            ).bindparams(token=sealed_newer, id=account_id)
                        )

        handler = Reconnect()
        logger = logging.getLogger("flask_mailconnect.oauth")
        logger.addHandler(handler)
        try:
            token = _force(save_app, account_id)
        finally:
            logger.removeHandler(handler)
        assert server.token_active(token)  # the caller still gets a working token
        row = _stored(account_id)
        assert open_secret(row.refresh_token) == newer["refresh_token"]
        assert row.status == AccountStatus.CONNECTED
        hostapp.db.session.remove()
    assert refresh(server, newer["refresh_token"], MICROSOFT).status_code == 200
    assert refresh(server, original["refresh_token"], MICROSOFT).status_code == 400


def test_a_valid_token_without_a_refresh_token_is_used_as_it_is(
    save_app: Any, oauth_provider: Any
) -> None:
    """No refresh is needed, so none is attempted (and no refresh token is asked for)."""
    server = oauth_provider
    with save_app.app_context():
        account_id, original = _connect_account(server)
        with hostapp.db.engine.begin() as conn:
            forget = sa.update(MailAccount).where(MailAccount.id == account_id)
            conn.execute(forget.values(refresh_token=None))
        state = save_app.extensions["mailconnect"]
        account = hostapp.db.session.get(MailAccount, account_id)
        assert fresh_access_token(state, account) == original["access_token"]
        assert server.refresh_requests == 0
        hostapp.db.session.remove()
