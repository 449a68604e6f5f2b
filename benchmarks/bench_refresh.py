"""Token refresh under a crowd: 50 and 200 callers need one account's refresh at once.

Against the local Authlib OAuth server (tests/peers/oauth.py, rotating refresh tokens) on
PostgreSQL and MariaDB (the URLs in ``MAILCONNECT_BENCH_DATABASE_URLS``, else
``MAILCONNECT_TEST_DATABASE_URLS``; a missing one gives a skipped row). Each round stores an
account whose access token has expired, releases N threads at once (each loads the account in
its own app context and lets the host's session go, then all call ``fresh_access_token`` at
once), and measures from that moment:

* wall time from the release to the last caller's token, against one caller refreshing alone
  (the same path; goal: at most 3x). Both ends are the callers' own clocks: the release is the
  first caller leaving the barrier, the end the last caller holding its token (not the main
  thread, which may be scheduled late, nor the callers' app-context teardown and thread exit,
  which are the harness's and not the refresh's: each caller holds its teardown until every
  caller is through, else the last one's clock would carry the other callers' teardowns,
  run while it waited for the interpreter lock);
* token requests that reached the OAuth server (goal: exactly 1);
* the most connections checked out of the pool at once (pool events) while they wait, against
  the number of callers (goal: a handful, whatever N: waiters hold none);
* callers that failed (goal: none; printed in the row's note).

The wall time's note also gives the harness's own floor: the same number of threads released
by the same barrier, each calling nothing. Releasing N threads at once costs CPython about as
much as it costs them to wait (each must take the interpreter lock in turn), and it is part of
the figure, not subtracted from it.

The pool is 10 connections without overflow: with one connection per waiter, 200 callers could
not even start.
"""

from __future__ import annotations

import itertools
import os
import statistics
import threading
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from benchmarks.table import Row, measured, samples, skipped
from tests.pool_watch import PoolWatch

CROWDS = (50, 200)
ROUNDS = 3
POOL = 10
_ROUND = itertools.count(1)


def _urls() -> dict[str, str | None]:
    listed = os.environ.get("MAILCONNECT_BENCH_DATABASE_URLS") or os.environ.get(
        "MAILCONNECT_TEST_DATABASE_URLS", ""
    )
    found = listed.replace(",", " ").split()
    return {
        "PostgreSQL": next((u for u in found if u.startswith("postgresql")), None),
        "MariaDB": next((u for u in found if u.startswith(("mysql", "mariadb"))), None),
    }


def _app(url: str, server: Any) -> Any:
    from tests import hostapp
    from tests.peers.oauth import CLIENT_ID, CLIENT_SECRET, MICROSOFT

    urls = server.urls(MICROSOFT)
    app, _ = hostapp.create_app(
        url,
        MAILCONNECT_PROVIDERS={
            "microsoft": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "authorize_url": urls.authorize_url,
                "token_url": urls.token_url,
            }
        },
        MAILCONNECT_ALLOW_PRIVATE_HOSTS=True,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": POOL, "max_overflow": 0},
    )
    return app


def _no_call(state: Any, account: Any) -> str:
    """What a caller of the harness's own floor does instead of asking for a token: nothing."""
    return ""


def _round(app: Any, server: Any, callers: int, call: Any = None) -> tuple[float, int, int, int]:
    """One crowd: (wall seconds, token requests, peak connections out, failed callers).
    ``call``: what each caller does once released (``fresh_access_token``; :func:`_no_call`
    for the harness's floor)."""
    from flask_mailconnect import MailAccount
    from flask_mailconnect.oauth.refresh import fresh_access_token
    from tests import hostapp
    from tests.oauth_accounts import add_oauth_account

    call = call or fresh_access_token

    email = f"bench{next(_ROUND)}@example.test"  # a new account each round
    # Expired: every caller needs a refresh.
    account_id, _issued = add_oauth_account(app, server, -timedelta(minutes=1), email)
    with app.app_context():
        engine = hostapp.db.engine
    before = server.refresh_requests
    watch = PoolWatch(engine)
    start = threading.Barrier(callers + 1)
    failures: list[str] = []
    released: list[float] = []  # list.append is atomic: no lock needed
    done: list[float] = []
    # The main thread sleeps until the last caller is through, then joins them: joining one by
    # one would wake it 200 times, competing for the GIL with the callers it measures.
    left = [callers]
    left_lock = threading.Lock()
    all_through = threading.Event()

    def through() -> None:
        with left_lock:
            left[0] -= 1
            if not left[0]:
                all_through.set()

    def caller() -> None:
        counted = False
        try:
            with app.app_context():
                state = app.extensions["mailconnect"]
                mine = hostapp.db.session.get(MailAccount, account_id)
                hostapp.db.session.expunge(mine)  # loaded; the host's session is let go
                hostapp.db.session.commit()
                start.wait(timeout=120)
                released.append(time.perf_counter())
                try:
                    call(state, mine)
                    done.append(time.perf_counter())
                finally:
                    counted = True
                    through()
                    # The teardown (the session, the app context, the thread's exit) waits for
                    # the last caller's token: it is the harness's, not the refresh's.
                    all_through.wait(timeout=300)
                    hostapp.db.session.remove()
        except Exception as exc:  # noqa: BLE001 - counted and reported
            failures.append(type(exc).__name__)
        finally:
            if not counted:
                through()

    threads = [threading.Thread(target=caller) for _ in range(callers)]
    for thread in threads:
        thread.start()
    start.wait(timeout=120)
    watch.restart_peak()  # from the release on: the refresh and the waiting only
    all_through.wait(timeout=300)
    for thread in threads:
        thread.join()
    # No caller got past the start (each failed before it): no wall time, the failures say why.
    wall = max(done, default=min(released)) - min(released) if released else 0.0
    sa.event.remove(engine, "checkout", watch._checkout)
    sa.event.remove(engine, "checkin", watch._checkin)
    return wall, server.refresh_requests - before, watch.peak, len(failures)


def _measure(name: str, url: str, server: Any, crowds: tuple[int, ...], rounds: int) -> list[Row]:
    from flask_mailconnect import metadata
    from tests import hostapp

    app = _app(url, server)
    rows: list[Row] = []
    try:
        _round(app, server, 1)  # warm up: connections, the catalogue, Authlib's client
        # Interleaved (alone, then each crowd, per round): the machine's load drifts over
        # seconds, and a ratio should compare rounds run under the same load.
        alone: list[float] = []
        crowd_runs: dict[int, list[tuple[float, int, int, int]]] = {c: [] for c in crowds}
        floors: dict[int, list[float]] = {c: [] for c in crowds}
        for _ in range(rounds):
            alone.append(_round(app, server, 1)[0])
            for callers in crowds:
                crowd_runs[callers].append(_round(app, server, callers))
        for _ in range(rounds):  # after the measured rounds: they run as they did without it
            for callers in crowds:
                floors[callers].append(_round(app, server, callers, _no_call)[0])
        for callers in crowds:
            runs = crowd_runs[callers]
            walls = [r[0] for r in runs]
            requests = [r[1] for r in runs]
            peaks = [r[2] for r in runs]
            failed = sum(r[3] for r in runs)
            note = (
                f"{name}, {callers} callers, pool {POOL}: token requests per round "
                f"{requests}, failed callers {failed}, peak connections {peaks}"
            )
            figure = f"token refresh, {callers} callers, {name}"
            # The harness's own share, for reading the figure (not subtracted from it): the
            # same threads released at once by the same barrier, each calling nothing.
            floor = (
                f"{name}, {callers} callers: the harness alone (the same threads released, "
                f"no call) {samples(floors[callers], 'ms', 1000)}"
            )
            rows.append(
                measured(
                    f"{figure}: wall time",
                    samples(walls, "ms", 1000),
                    samples(alone, "ms", 1000),
                    at_most=3,
                    against="one refresh alone",
                    note=f"{note}; {floor}" if failed else floor,
                )
            )
            rows.append(
                measured(
                    f"{figure}: token requests",
                    samples(requests, "req"),
                    "exactly 1",
                    statistics.median(requests),
                    at_most=1,
                    note=f"failed callers: {failed}" if failed else "",
                )
            )
            rows.append(
                measured(
                    f"{figure}: peak connections",
                    samples(peaks, "conn"),
                    f"{callers} callers",
                    statistics.median(peaks) / callers,
                    at_most=0.1,
                )
            )
    finally:
        with app.app_context():
            hostapp.db.session.remove()
            metadata.drop_all(hostapp.db.engine)
            hostapp.db.drop_all()
            hostapp.db.engine.dispose()
    return rows


def rows(*, smoke: bool = False) -> list[Row]:
    from tests.peers.oauth import start_oauth_server

    crowds, rounds = ((5,), 1) if smoke else (CROWDS, ROUNDS)
    server = start_oauth_server()
    out: list[Row] = []
    try:
        for name, url in _urls().items():
            if url is None:
                for callers in crowds:
                    out.append(
                        skipped(
                            f"token refresh, {callers} callers, {name}: wall time",
                            f"no {name} URL in MAILCONNECT_BENCH_DATABASE_URLS or "
                            "MAILCONNECT_TEST_DATABASE_URLS",
                            at_most=3,
                        )
                    )
                continue
            try:
                out.extend(_measure(name, url, server, crowds, rounds))
            except sa.exc.OperationalError as exc:  # the server is not running
                out.append(
                    skipped(f"token refresh, {name}", f"{name} unreachable: {exc.orig}"[:200])
                )
    finally:
        server.stop()
    return out


def main() -> None:
    from benchmarks.table import print_table

    print_table(rows())


if __name__ == "__main__":
    main()
