"""Refresh race: 20 threads and 4 processes force a refresh of one account at once.

The provider rotates refresh tokens (Microsoft flavour), so a second refresh with the same
refresh token would get ``invalid_grant`` and knock the account to ``needs_reconnect``. Under the
refresh lock only the first holder calls the token endpoint; everyone else re-reads the row
while polling, finds a token refreshed after their call started, and returns it.

To make "at once" real, the test itself holds the account's refresh lock (an advisory lock on
PostgreSQL and MariaDB, the write lock on SQLite) while all 24 callers start and poll for it,
then lets go. Runs against a SQLite file (threads and processes share it through
SQLite's write lock) and against each PostgreSQL / MariaDB URL in
MAILCONNECT_TEST_DATABASE_URLS; a missing server URL skips (fails under
MAILCONNECT_REQUIRE_PEERS=1).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flask_mailconnect import AccountStatus, AuditEvent, MailAccount
from flask_mailconnect.columns import open_secret
from flask_mailconnect.oauth.dblock import try_lock, unlock
from flask_mailconnect.oauth.refresh import fresh_access_token
from tests import hostapp
from tests.conftest import cleaned_up
from tests.oauth_accounts import (
    add_oauth_account,
    app_on,
    oauth_config,
    refresh_waiters,
    server_url,
    wait_until,
)
from tests.peers import require_peer
from tests.peers.oauth import MICROSOFT, refresh
from tests.pool_watch import PoolWatch

THREADS = 20
PROCESSES = 4
CALLERS = THREADS + PROCESSES


def _call(app: Any, account_id: int, counter: Any) -> str:
    with app.app_context():
        state = app.extensions["mailconnect"]
        account = hostapp.db.session.get(MailAccount, account_id)
        hostapp.db.session.expunge(account)  # loaded, and no open host transaction: the wait
        hostapp.db.session.commit()  # below must hold no connection of any kind
        with counter.get_lock():
            counter.value += 1
        try:
            return fresh_access_token(state, account, force=True)
        finally:
            hostapp.db.session.remove()


def _process_main(
    url: str, config: dict[str, Any], account_id: int, barrier: Any, counter: Any, results: Any
) -> None:
    """One more worker process: its own app on the same database (tables left as they are)."""
    try:
        app, _ = hostapp.create_app(url, reset=False, **config)
        barrier.wait(timeout=60)
        results.put(("ok", _call(app, account_id, counter)))
    except BaseException as exc:  # report, never hang the parent
        results.put(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        try:
            with app.app_context():
                hostapp.db.engine.dispose()
        except Exception:
            pass


@pytest.fixture(
    params=["sqlite-file", "postgresql", "mysql"], ids=["sqlite-file", "postgresql", "mariadb"]
)
def race_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite-file":
        return f"sqlite:///{tmp_path / 'race.db'}"
    url = server_url(request.param)
    if url is None:
        require_peer(
            request.param,
            f"MAILCONNECT_TEST_DATABASE_URLS lists no {request.param} URL for the refresh race",
        )
    assert url is not None
    return url


@pytest.fixture
def race_app(race_url: str, oauth_provider: Any) -> Iterator[Any]:
    yield from app_on(race_url, oauth_provider)


def test_one_refresh_reaches_the_provider_when_24_workers_force_one_at_once(
    race_app: Any, race_url: str, oauth_provider: Any
) -> None:
    server = oauth_provider
    assert server.rotate_refresh_tokens[MICROSOFT]  # a refresh token works exactly once
    # Valid: only forced refreshes.
    account_id, original = add_oauth_account(race_app, server, timedelta(hours=1))
    with race_app.app_context():
        engine = hostapp.db.engine

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(CALLERS + 1)
    counter = ctx.Value("i", 0)
    results = ctx.Queue()
    config = oauth_config(server, race_url)
    processes = [
        ctx.Process(
            target=_process_main,
            args=(race_url, config, account_id, barrier, counter, results),
            daemon=True,
        )
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()

    thread_results: list[tuple[str, str]] = []

    def thread_main() -> None:
        try:
            barrier.wait(timeout=60)
            thread_results.append(("ok", _call(race_app, account_id, counter)))
        except BaseException as exc:
            thread_results.append(("error", f"{type(exc).__name__}: {exc}"))

    threads = [threading.Thread(target=thread_main) for _ in range(THREADS)]
    blocker = engine.connect()
    try:
        assert try_lock(blocker, account_id)  # the refresh lock, as a refreshing worker holds it
        for thread in threads:
            thread.start()
        barrier.wait(timeout=60)  # every process has its app; everyone goes now
        assert wait_until(lambda: counter.value == CALLERS, 20), counter.value
        time.sleep(0.3)  # give the callers a moment to find the lock taken and poll
        assert server.refresh_requests == 0  # nobody got past the lock yet
    finally:
        unlock(blocker, account_id)
        blocker.close()

    for thread in threads:
        thread.join(timeout=60)
    outcomes = list(thread_results)
    for _ in processes:
        outcomes.append(results.get(timeout=60))
    for process in processes:
        process.join(timeout=30)

    errors = [detail for kind, detail in outcomes if kind != "ok"]
    assert errors == []
    assert len(outcomes) == CALLERS
    tokens = {token for _, token in outcomes}
    assert server.refresh_requests == 1  # exactly one refresh reached the provider
    assert len(tokens) == 1 and original["access_token"] not in tokens
    (token,) = tokens
    assert server.token_active(token)

    with race_app.app_context():
        row = hostapp.db.session.execute(
            sa.select(
                MailAccount.status, MailAccount.access_token, MailAccount.refresh_token
            ).where(MailAccount.id == account_id)
        ).one()
        assert row.status == AccountStatus.CONNECTED  # the account stays connected
        assert open_secret(row.access_token) == token
        stored_refresh = open_secret(row.refresh_token)
        assert stored_refresh != original["refresh_token"]
        reconnects = hostapp.db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "needs_reconnect")
        )
        assert reconnects == 0
        hostapp.db.session.remove()
    # the stored refresh token is the newest: the provider accepts it; the original is spent
    assert refresh(server, original["refresh_token"], MICROSOFT).status_code == 400
    assert refresh(server, stored_refresh, MICROSOFT).status_code == 200


# -- waiters hold no connection (issue 13) ----------------------------------------------------

CROWD = 50


@pytest.mark.parametrize(
    ("pool_size", "expired"),
    [(5, False), (CROWD + 10, True)],
    ids=["pool-5-forced", "roomy-pool-expired"],
)
def test_50_callers_need_one_refresh_and_wait_without_a_connection(
    race_url: str, oauth_provider: Any, pool_size: int, expired: bool
) -> None:
    """50 threads need one account's token at once: with a pool of 5 (no overflow) all of
    them get the one new token; with a pool roomy enough for everyone, the most connections
    out at once stays far below the number of callers (waiters poll without one)."""
    server = oauth_provider
    config = oauth_config(server, race_url)
    config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(
        config["SQLALCHEMY_ENGINE_OPTIONS"], pool_size=pool_size, max_overflow=0
    )
    app, _ = hostapp.create_app(race_url, **config)
    with cleaned_up(app):
        expiry = timedelta(minutes=-1) if expired else timedelta(hours=1)
        account_id, original = add_oauth_account(app, server, expiry)
        with app.app_context():
            engine = hostapp.db.engine
        watch = PoolWatch(engine)
        counter = multiprocessing.Value("i", 0)
        outcomes: list[tuple[str, str]] = []
        start = threading.Barrier(CROWD + 1)

        def caller() -> None:
            try:
                start.wait(timeout=60)
                with app.app_context():
                    state = app.extensions["mailconnect"]
                    account = hostapp.db.session.get(MailAccount, account_id)
                    hostapp.db.session.expunge(account)
                    hostapp.db.session.commit()
                    with counter.get_lock():
                        counter.value += 1
                    try:
                        token = fresh_access_token(state, account, force=not expired)
                    finally:
                        hostapp.db.session.remove()
                outcomes.append(("ok", token))
            except BaseException as exc:
                outcomes.append(("error", f"{type(exc).__name__}: {exc}"))

        threads = [threading.Thread(target=caller) for _ in range(CROWD)]
        for thread in threads:
            thread.start()
        blocker = engine.connect()
        try:
            assert try_lock(blocker, account_id)  # everyone arrives while it is taken
            start.wait(timeout=60)
            assert wait_until(lambda: counter.value == CROWD, 30), counter.value
            state = app.extensions["mailconnect"]
            assert wait_until(lambda: refresh_waiters(state, account_id) == CROWD, 30)
            # Everyone is waiting now (their host sessions' loads and first looks are over):
            # from here on, count what the waiting and the one refresh need.
            watch.restart_peak()
            polls = watch.checkouts
            assert wait_until(lambda: watch.checkouts >= polls + 3, 30)  # still looking
            assert server.refresh_requests == 0
        finally:
            unlock(blocker, account_id)
            blocker.close()
        for thread in threads:
            thread.join(timeout=60)

        errors = [detail for kind, detail in outcomes if kind != "ok"]
        assert errors == []
        assert len(outcomes) == CROWD
        assert server.refresh_requests == 1  # exactly one token request reached the server
        tokens = {token for _, token in outcomes}
        assert len(tokens) == 1 and original["access_token"] not in tokens
        assert server.token_active(tokens.pop())
        assert watch.peak <= pool_size
        # Not one connection per waiter: the test's own (holding the lock at first), the one
        # caller looking, and the refresh (its lock's connection and one to save on).
        assert watch.peak <= 4, watch.peak
        assert watch.out == 0  # every connection went back (no lock left on one)
