"""What a token refresh costs the database, and a crowd meeting a failing token endpoint.

On PostgreSQL and MariaDB (the URLs in MAILCONNECT_TEST_DATABASE_URLS; a missing one skips),
and for the failing endpoint on a SQLite file too:

* a look at the account is one statement: on PostgreSQL on a connection that commits each
  statement itself (no BEGIN and COMMIT around it: three round trips where one does); on
  MariaDB, where the driver pays round trips to switch autocommit on and off, the ROLLBACK
  that gives the connection back ends the look's snapshot (two round trips, counted on the
  wire), and a COMMIT ends it where another look follows on the same connection. So a
  caller whose token is still valid costs the database one statement, and a refresh reaches
  the token endpoint after three (look, take the lock, look again);
* callers waiting in one process for a refresh that fails all get its typed error after one
  token request, and every connection goes back to the pool (the holder's included); callers
  whose need the stored row meets take it instead of the error;
* a refresh still looks and saves, at the first attempt, when the host's pool hands it
  connections inside a transaction (no reset on return); a save connection whose set-up fails
  goes back to the pool.

No timing is asserted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flask_mailconnect import MailAccount, TokenRefreshUnavailable
from flask_mailconnect.oauth.dblock import save_connection, try_lock, unlock
from flask_mailconnect.oauth.refresh import fresh_access_token
from tests import hostapp
from tests.oauth_accounts import (
    add_oauth_account,
    app_on,
    refresh_waiters,
    server_url,
    wait_until,
)
from tests.peers import require_peer
from tests.pool_watch import PoolWatch

EMAIL = "fast@example.test"
CROWD = 12


def _server(name: str) -> str:
    url = server_url(name)
    if url is None:
        require_peer(name, f"MAILCONNECT_TEST_DATABASE_URLS lists no {name} URL")
    assert url is not None
    return url


@pytest.fixture(params=["postgresql", "mysql"], ids=["postgresql", "mariadb"])
def server_app(request: pytest.FixtureRequest, oauth_provider: Any) -> Iterator[Any]:
    yield from app_on(_server(request.param), oauth_provider)


@pytest.fixture(
    params=["sqlite-file", "postgresql", "mysql"], ids=["sqlite-file", "postgresql", "mariadb"]
)
def any_app(request: pytest.FixtureRequest, oauth_provider: Any, tmp_path: Path) -> Iterator[Any]:
    file = f"sqlite:///{tmp_path / 'fast.db'}"
    yield from app_on(file if request.param == "sqlite-file" else _server(request.param),
                      oauth_provider)  # fmt: skip


def _account(app: Any, server: Any, expires_in: timedelta) -> tuple[int, dict[str, Any]]:
    return add_oauth_account(app, server, expires_in, EMAIL)


class Statements:
    """The statements an engine runs and the commits asked of it, each noted with how many
    token requests the OAuth server had seen by then."""

    def __init__(self, engine: sa.Engine, server: Any) -> None:
        self.server = server
        self.seen: list[tuple[str, int]] = []
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "commit", self._commit)

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append((statement.split(None, 1)[0].upper(), self.server.refresh_requests))

    def _commit(self, _conn: Any) -> None:
        self.seen.append(("COMMIT", self.server.refresh_requests))

    def before_the_token_request(self) -> list[str]:
        return [kind for kind, requests in self.seen if requests == 0]


def _engine(app: Any) -> sa.Engine:
    with app.app_context():
        return hostapp.db.engine


def _call(app: Any, account_id: int) -> str:
    """``fresh_access_token`` as a worker calls it: the account loaded and detached, the host's
    transaction ended."""
    return _refresh(app, _detached(app, account_id))


def _refresh(app: Any, account: MailAccount) -> str:
    with app.app_context():
        try:
            return fresh_access_token(app.extensions["mailconnect"], account)
        finally:
            hostapp.db.session.remove()


def _detached(app: Any, account_id: int) -> MailAccount:
    with app.app_context():
        account = hostapp.db.session.get(MailAccount, account_id)
        assert account is not None
        hostapp.db.session.expunge(account)
        hostapp.db.session.commit()
        hostapp.db.session.remove()
        return account


class Wire:
    """What PyMySQL sends the server, one command a round trip (the first word of each),
    noted with how many token requests the OAuth server had seen by then: the settings the
    driver applies (``SET AUTOCOMMIT``, isolation levels, the pool's ``ROLLBACK``) included,
    which SQLAlchemy's statement events never see."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, server: Any) -> None:
        import pymysql.connections

        self.sent: list[tuple[str, int]] = []
        real = pymysql.connections.Connection._execute_command

        def execute_command(conn: Any, command: int, sql: str | bytes) -> Any:
            text = sql.decode("utf-8", "replace") if isinstance(sql, bytes) else sql
            self.sent.append((_head(text), server.refresh_requests))
            return real(conn, command, sql)

        monkeypatch.setattr(pymysql.connections.Connection, "_execute_command", execute_command)

    def commands(self, *, requests: int | None = None) -> list[str]:
        return [word for word, seen in self.sent if requests is None or seen == requests]


def _head(statement: str) -> str:
    """A command named by its first word; ``SET`` with its second (``SET TRANSACTION``), the
    lock's calls with their function (``SELECT GET_LOCK``)."""
    words = statement.split()
    head = words[0].upper()
    second = words[1].split("(")[0].upper() if len(words) > 1 else ""
    if head == "SET" or second in ("GET_LOCK", "RELEASE_LOCK"):
        return f"{head} {second}"
    return head


def _pool_of_two(app: Any) -> None:
    """Two connections open in the pool, as a running app has: a refresh uses two at once
    (the lock's and the save's), and opening one is round trips of its own."""
    engine = _engine(app)
    first, second = engine.connect(), engine.connect()
    first.close()
    second.close()


def test_a_valid_token_costs_one_look(
    server_app: Any, oauth_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id, issued = _account(server_app, oauth_provider, timedelta(hours=1))
    account = _detached(server_app, account_id)  # its load is not what is counted
    statements = Statements(_engine(server_app), oauth_provider)
    wire = Wire(monkeypatch, oauth_provider)
    token = _refresh(server_app, account)
    assert token == issued["access_token"]
    assert oauth_provider.refresh_requests == 0
    if _engine(server_app).dialect.name == "postgresql":
        assert statements.seen == [("SELECT", 0)]  # the look, autocommit: no COMMIT after it
    else:
        # MariaDB: the look and the ROLLBACK that gives its connection back, which ends the
        # look's snapshot too (six in autocommit: SET AUTOCOMMIT both ways and the isolation
        # level's reset; three with a COMMIT after the look)
        assert wire.commands() == ["SELECT", "ROLLBACK"]


def test_a_refresh_asks_the_provider_after_three_statements(
    server_app: Any, oauth_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    account_id, issued = _account(server_app, oauth_provider, timedelta(minutes=-1))
    account = _detached(server_app, account_id)  # its load is not what is counted
    _pool_of_two(server_app)
    statements = Statements(_engine(server_app), oauth_provider)
    wire = Wire(monkeypatch, oauth_provider)
    token = _refresh(server_app, account)
    assert token != issued["access_token"]
    assert oauth_provider.refresh_requests == 1
    # Look (a fresh token already?), take the lock, look again (what the last holder stored).
    assert [s for s in statements.before_the_token_request() if s != "COMMIT"] == ["SELECT"] * 3
    # Then the save commits, in a transaction of its own.
    assert ("COMMIT", 1) in statements.seen
    if _engine(server_app).dialect.name != "postgresql":
        # MariaDB on the wire: a look followed by another on its connection ends its snapshot
        # first (the COMMIT after taking the lock ends the first look's too); the save reads
        # committed data for its one transaction (no SET SESSION, so no reset of it when the
        # pool takes it back); a connection's last look ends with the connection
        assert wire.commands(requests=0) == [
            "SELECT", "SELECT GET_LOCK", "COMMIT", "SELECT", "COMMIT",
        ]  # fmt: skip
        assert wire.commands(requests=1) == [
            "SET TRANSACTION", "UPDATE", "COMMIT", "ROLLBACK",  # the save, its connection back
            "SELECT",  # the holder reads what it stored
            "SELECT RELEASE_LOCK", "ROLLBACK",  # the lock given back, then the connection
        ]  # fmt: skip
    assert _call(server_app, account_id) == token  # stored: the next caller just reads it


@pytest.fixture(params=["postgresql", "mysql"], ids=["postgresql", "mariadb"])
def unreset_app(request: pytest.FixtureRequest, oauth_provider: Any) -> Iterator[Any]:
    """The app on an engine whose pool does not reset connections it takes back
    (``pool_reset_on_return=None``), with a short pool timeout: a save that keeps a connection
    fails the test instead of hanging it."""
    options = {"pool_size": 2, "max_overflow": 0, "pool_reset_on_return": None, "pool_timeout": 5}
    for app in app_on(_server(request.param), oauth_provider, SQLALCHEMY_ENGINE_OPTIONS=options):
        yield app
        _engine(app).dispose()  # a connection still in a transaction would block the DROPs


def test_a_refresh_saves_when_the_host_left_transactions_open_in_its_pool(
    unreset_app: Any, oauth_provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The host ended a raw-driver transaction by returning the connection to a pool that does
    not reset. The look's and the save's settings meet an open transaction (psycopg: "can't
    change 'autocommit' now"; MariaDB: error 1568 for ``SET TRANSACTION``). The refresh still
    looks and saves, at the first attempt."""
    app = unreset_app
    account_id, issued = _account(app, oauth_provider, timedelta(minutes=-1))
    account = _detached(app, account_id)
    engine = _engine(app)
    engine.dispose()  # two fresh connections, each left inside a transaction
    left = [engine.raw_connection() for _ in range(2)]
    for raw in left:
        cursor = raw.cursor()
        if engine.dialect.name != "postgresql":  # PyMySQL begins none by itself; psycopg does
            cursor.execute("START TRANSACTION")
        cursor.execute("SELECT COUNT(*) FROM mailconnect_account")
        cursor.close()
    for raw in left:
        raw.close()  # back to the pool, the transaction still open on the server
    with caplog.at_level(logging.WARNING, logger="flask_mailconnect"):
        token = _refresh(app, account)
    assert token != issued["access_token"]
    assert oauth_provider.refresh_requests == 1
    # no attempt failed and was retried: each connection was put right where it was met
    assert [r.getMessage() for r in caplog.records] == []
    assert _call(app, account_id) == token  # stored: the next caller reads it
    assert oauth_provider.refresh_requests == 1


def test_a_save_connection_whose_setup_fails_goes_back_to_the_pool() -> None:
    """The save's connection is set up (MariaDB: ``SET TRANSACTION``) before the caller holds
    it: when that fails, the connection is given back, not held until garbage collection,
    which left a small pool's next save waiting for its pool timeout."""
    engine = sa.create_engine(_server("mysql"), pool_size=1, max_overflow=0, pool_timeout=2)

    def refuse(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("SET TRANSACTION"):
            raise sa.exc.OperationalError(statement, {}, Exception("gone away"))

    sa.event.listen(engine, "before_cursor_execute", refuse)
    try:
        with pytest.raises(sa.exc.OperationalError):
            save_connection(engine)
        sa.event.remove(engine, "before_cursor_execute", refuse)
        conn = save_connection(engine)  # the pool's one connection, free again
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1
        conn.close()
    finally:
        engine.dispose()


def test_a_crowd_meeting_a_failing_endpoint_asks_once_and_gets_the_typed_error(
    any_app: Any, oauth_provider: Any
) -> None:
    """The callers waiting for a refresh that fails get its typed error, without each asking
    the failing endpoint again in turn."""
    account_id, issued = _account(any_app, oauth_provider, timedelta(minutes=-1))
    with any_app.app_context():
        engine = hostapp.db.engine
    state = any_app.extensions["mailconnect"]
    watch = PoolWatch(engine)
    oauth_provider.fail_token_endpoint_with(503)
    outcomes: list[str] = []

    def caller() -> None:
        try:
            outcomes.append(_call(any_app, account_id))
        except BaseException as exc:  # noqa: BLE001 - the outcome is what is asserted
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=caller) for _ in range(CROWD)]
    blocker = engine.connect()
    try:
        assert try_lock(blocker, account_id)  # as another process refreshing: all queue up
        for thread in threads:
            thread.start()
        assert wait_until(lambda: refresh_waiters(state, account_id) == CROWD, 60)
    finally:
        unlock(blocker, account_id)
        blocker.close()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert outcomes == [TokenRefreshUnavailable.__name__] * CROWD
    assert oauth_provider.refresh_requests == 1  # one caller asked; the rest got its answer
    assert watch.out == 0  # every connection went back, the holder's included
    oauth_provider.fail_token_endpoint_with(None)
    # Nothing was spent: the account refreshes once the endpoint answers again.
    assert _call(any_app, account_id) != issued["access_token"]


def test_a_failed_forced_refresh_leaves_the_waiters_the_token_they_can_use(
    any_app: Any, oauth_provider: Any
) -> None:
    """A caller forces a refresh (the server refused its token) and meets a failing endpoint.
    The callers queued behind it, whose copy of the account was out of date but whose need the
    stored token meets, take that token: only the forcing caller gets the error."""
    from flask_mailconnect.models import utcnow

    account_id, issued = _account(any_app, oauth_provider, timedelta(minutes=-1))
    stale = [_detached(any_app, account_id) for _ in range(CROWD)]  # expired, as loaded
    with any_app.app_context():  # since refreshed elsewhere: good for an hour
        valid = utcnow() + timedelta(hours=1)
        query = sa.update(MailAccount).where(MailAccount.id == account_id)
        hostapp.db.session.execute(query.values(token_expires_at=valid))
        hostapp.db.session.commit()
        engine = hostapp.db.engine
    forcing = _detached(any_app, account_id)
    state = any_app.extensions["mailconnect"]
    oauth_provider.fail_token_endpoint_with(503)
    outcomes: dict[bool, list[str]] = {True: [], False: []}

    def caller(account: MailAccount, force: bool) -> None:
        with any_app.app_context():
            try:
                outcomes[force].append(fresh_access_token(state, account, force=force))
            except BaseException as exc:  # noqa: BLE001 - the outcome is what is asserted
                outcomes[force].append(type(exc).__name__)
            finally:
                hostapp.db.session.remove()

    first = threading.Thread(target=caller, args=(forcing, True))
    rest = [threading.Thread(target=caller, args=(a, False)) for a in stale]
    blocker = engine.connect()
    try:
        assert try_lock(blocker, account_id)  # as another process refreshing: all queue up
        first.start()  # the first in line: the one that looks and asks
        assert wait_until(lambda: refresh_waiters(state, account_id) == 1, 60)
        for thread in rest:
            thread.start()
        assert wait_until(lambda: refresh_waiters(state, account_id) == CROWD + 1, 60)
    finally:
        unlock(blocker, account_id)
        blocker.close()
    for thread in [first, *rest]:
        thread.join(timeout=120)
    oauth_provider.fail_token_endpoint_with(None)
    assert outcomes[True] == [TokenRefreshUnavailable.__name__]
    assert outcomes[False] == [issued["access_token"]] * CROWD
    assert oauth_provider.refresh_requests == 1
