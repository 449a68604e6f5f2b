"""Who may refresh an account's token, and saving what the provider answered (see :mod:`.refresh`).

One caller at a time per account calls the token endpoint; the others wait **without holding a
database connection** and then use the token it stored. :func:`claim` is a lock-then-recheck
loop: in one short checkout it reads the row (is a fresh token there already?) and tries the
account's refresh lock without waiting; if another caller holds it, the connection goes back to
the pool, the caller sleeps a few milliseconds and looks again. In one process, callers for one
account queue on an in-memory gate and share one look. The winner keeps one connection for the
token request.

The lock, per backend (the same loop on each; only the try-lock differs): PostgreSQL, a
session-level advisory lock (``pg_try_advisory_lock``); MariaDB / MySQL, ``GET_LOCK(name, 0)``;
SQLite (no advisory locks), the database write lock, taken with a no-op ``UPDATE`` while the busy
timeout is 0 (a single-connection ``StaticPool`` is serialised by a per-app lock instead).

Advisory locks belong to the connection, not to a transaction: they survive a failed commit. So
the winner keeps the lock while it retries saving a rotated refresh token (:meth:`Holder.save`)
in fresh short transactions, and no waiter can read the spent token meanwhile; each retry is a
conditional ``UPDATE ... WHERE refresh_token = <the spent token's ciphertext>``, so a retry never
overwrites a newer token. If the process dies, its connection closes and the lock is released.
On SQLite the lock is the write transaction: a retry takes it again (another process could
slip in that instant; the conditional save then refuses to overwrite, and the caller is told).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..columns import Sealed, open_secret
from ..exceptions import TokenError, TokenRefreshUnavailable
from ..i18n import N_
from ..models import MailAccount, utcnow
from ..runtime import Runtime
from .dblock import (
    describe,
    end_transaction,
    give_back,
    look_connection,
    save_connection,
    single_connection,
    try_lock,
    unlock,
)
from .gate import Gate, joined

#: Said in English (raised in workers too); pages translate it (views.common.localize).
BUSY = N_("The account is busy (its token is being refreshed elsewhere); try again.")

log = logging.getLogger("flask_mailconnect.oauth")

T = TypeVar("T")

#: Which access token of an account: the SMTP/IMAP one ("mail") or the Graph one ("graph").
MAIL = "mail"
GRAPH = "graph"

#: Waiters look again after this many seconds, growing to POLL_MAX (with jitter, so a crowd
#: does not knock in step). Short: a loopback token request takes a few milliseconds.
POLL_FIRST = 0.002
POLL_MAX = 0.025
#: A save (new tokens, or a status change) is tried this many times, in fresh transactions,
#: waiting SAVE_BACKOFF, then twice that... between attempts (about 1.5 s in all).
SAVE_ATTEMPTS = 5
SAVE_BACKOFF = 0.1


class SaveFailed(Exception):
    """Every attempt to save failed (internal: :mod:`.refresh` turns it into a typed error)."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"{attempts} attempts failed; last: {describe(last)}")
        self.attempts = attempts
        self.last = last


@dataclass
class Row:
    # The tokens are plaintext here: kept out of repr (a Holder's repr, a %r in a log line, an
    # error tracker capturing locals).
    access_token: str | None = field(repr=False)
    refresh_token: str | None = field(repr=False)
    token_expires_at: datetime | None
    token_refreshed_at: datetime | None
    token_scopes: str
    status: str
    last_error_code: str | None
    graph_access_token: str | None = field(repr=False)
    graph_token_expires_at: datetime | None
    last_error_message: str | None
    last_checked_at: datetime | None
    #: The refresh token as stored (ciphertext): the key of the conditional save.
    refresh_sealed: Sealed | None = None

    def token(self, kind: str) -> str | None:
        return self.graph_access_token if kind == GRAPH else self.access_token

    def valid_for(self, min_validity: timedelta, kind: str = MAIL) -> bool:
        token = self.token(kind)
        expires = self.graph_token_expires_at if kind == GRAPH else self.token_expires_at
        if not token:
            return False
        if expires is None:  # no known expiry: good until a server says not
            return True
        return expires - utcnow() >= min_validity


_COLUMNS = (
    MailAccount.access_token,
    MailAccount.refresh_token,
    MailAccount.token_expires_at,
    MailAccount.token_refreshed_at,
    MailAccount.token_scopes,
    MailAccount.status,
    MailAccount.last_error_code,
    MailAccount.graph_access_token,
    MailAccount.graph_token_expires_at,
    MailAccount.last_error_message,
    MailAccount.last_checked_at,
)


@functools.cache
def _read_query(lock: bool) -> sa.Select[Any]:
    # Built once: every look runs it, and building it (and its cache key) cost more than a read.
    query = sa.select(*_COLUMNS).where(MailAccount.id == sa.bindparam("account_id"))
    return cast("sa.Select[Any]", query.with_for_update() if lock else query)


def read_row(bind: Session | sa.Connection, account_id: int, *, lock: bool = False) -> Row:
    """The account's token columns, decrypted here (never in a logged row). ``lock`` adds
    ``FOR UPDATE`` (kept for callers that hold the row in their own transaction)."""
    row = bind.execute(_read_query(lock), {"account_id": account_id}).first()
    if row is None:
        raise TokenError(
            f"Account {account_id} is not in the database (was it committed? token refresh "
            "runs in a transaction of its own)."
        )
    values = dict(row._mapping)
    sealed = values["refresh_token"]
    for name in ("access_token", "refresh_token", "graph_access_token"):
        values[name] = open_secret(values[name])
    return Row(**values, refresh_sealed=sealed if isinstance(sealed, Sealed) else None)


def engine_of(state: Runtime) -> sa.Engine:
    return state.engine()


@dataclass
class Holder:
    """The caller that holds an account's refresh lock (on ``conn``)."""

    state: Runtime
    engine: sa.Engine
    conn: sa.Connection
    account_id: int
    row: Row
    #: The row as the holder left it (read after its writes, before the lock went back).
    stored: Row | None = None

    def write(self, apply: Callable[[Session], T], what: str) -> T:
        """Run ``apply`` in a short transaction of its own and commit; a failed attempt is
        rolled back and tried again in a fresh transaction (:data:`SAVE_ATTEMPTS` in all).
        Raises :class:`SaveFailed` when none committed."""
        last: BaseException | None = None
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            if attempt > 1:
                time.sleep(SAVE_BACKOFF * 2 ** (attempt - 2))
            try:
                return self._attempt(apply)
            except sa.exc.SQLAlchemyError as exc:
                last = exc
                log.warning("Saving %s of account %s failed (attempt %s of %s): %s", what,
                            self.account_id, attempt, SAVE_ATTEMPTS, describe(exc))  # fmt: skip
        assert last is not None
        raise SaveFailed(SAVE_ATTEMPTS, last)

    def _attempt(self, apply: Callable[[Session], T]) -> T:
        # PostgreSQL / MariaDB: a fresh connection each time (the lock stays on self.conn).
        # SQLite: the lock is the write transaction on self.conn: the first attempt commits
        # in it, a retry begins a new one there (or on a new connection if that one broke).
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite and (self.conn.invalidated or self.conn.closed):
            self.conn = save_connection(self.engine)
        conn = self.conn if sqlite else save_connection(self.engine)
        try:
            if not conn.in_transaction():
                conn.begin()
            if conn.dialect.name == "postgresql":
                wait = max(30, int(self.state.transport_options().timeout * 3))
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{wait}s'"))
            session = Session(bind=conn, autoflush=False, expire_on_commit=False)
            try:
                result = apply(session)
                session.flush()
            finally:
                session.close()
            conn.commit()
            return result
        except BaseException:
            try:
                if conn.in_transaction():
                    conn.rollback()
            except sa.exc.SQLAlchemyError:
                conn.invalidate()
            raise
        finally:
            if conn is not self.conn:
                conn.close()

    def save(self, values: dict[str, Any], new_refresh: Sealed | None) -> bool:
        """Store the refreshed token columns, keyed on the spent refresh token's ciphertext.

        True: saved (also when an earlier attempt's commit went through after all: the row
        holds ``new_refresh``). False: the row holds another refresh token now (a reconnect, a
        disconnect): nothing was overwritten. Raises :class:`SaveFailed`.
        """
        spent = self.row.refresh_sealed
        key = MailAccount.refresh_token.is_(None) if spent is None else (
            MailAccount.refresh_token == spent
        )  # fmt: skip
        update = sa.update(MailAccount).where(MailAccount.id == self.account_id, key)

        def apply(session: Session) -> bool:
            result = cast("sa.CursorResult[Any]", session.execute(update.values(**values)))
            if result.rowcount == 1:
                return True
            stored = session.execute(
                sa.select(MailAccount.refresh_token).where(MailAccount.id == self.account_id)
            ).scalar()
            return new_refresh is not None and stored == new_refresh

        return self.write(apply, "the refreshed tokens")


@contextmanager
def claim(
    state: Runtime, account_id: int, settled: Callable[[Row], bool], kind: str
) -> Iterator[tuple[Holder | None, Row]]:
    """Yield ``(None, row)`` once ``settled(row)`` holds (another caller refreshed), else
    ``(holder, row)`` with the refresh lock held and ``row`` read after taking it.

    Waiting holds no connection. In one process, the callers for one account queue on an
    in-memory gate: the first looks at the database, the others sleep until it is done and
    take the row it saw (a few microseconds each), or raise a copy of the :class:`TokenError`
    the holder's token request for the same ``kind`` raised. Across processes, the one
    looking in each checks a connection out for two short statements per look and gives it
    back between looks. Gives up with
    :class:`TokenRefreshUnavailable` after 3 x the connect timeout (at least 30 s), as the row
    lock's ``lock_timeout`` did before.
    """
    gates: dict[int, Gate[Row]] = state.refresh_gates
    with joined(gates, state.refresh_gates_lock, account_id) as gate:
        if gate.patience is None:  # read from the config once per crowd, not per caller
            gate.patience = max(30.0, state.transport_options().timeout * 3)
        deadline = time.monotonic() + gate.patience
        arrived = seen = gate.latest[0]
        while not gate.lock.acquire(blocking=False):
            if not gate.wait(seen, deadline):
                raise TokenRefreshUnavailable(BUSY)
            seen = gate.latest[0]
            found = gate.found(arrived, settled)
            if found is not None:
                yield None, found
                return
            theirs = gate.failed(arrived, kind)
            if theirs is not None:  # the same typed error, without asking the provider again
                raise _copy_of(theirs) from None  # not chained to whatever it was raised in
        row: Row | None = None
        spent: sa.Connection | None = None  # the holder's connection, closed after waking
        failure: tuple[str, BaseException] | None = None
        try:
            row = gate.found(arrived, settled)
            if row is None:
                # Only the looker needs the engine (finding it sorts the tables: waiters
                # doing that too would keep the looker from the GIL).
                engine = engine_of(state)
                single = single_connection(engine)
                with state.single_connection if single else nullcontext():
                    holder, row = _wait_for_lock(state, engine, account_id, settled, deadline)
                    if holder is not None:
                        held, row = row, None  # shared only once it is what was stored
                        try:
                            yield holder, held
                            with contextlib.suppress(Exception):  # what it stored, for the rest
                                # its last read here: its transaction ends with the connection
                                row = holder.stored = _look(holder.conn, account_id, end=False)
                        except TokenError as exc:
                            # The token request's own answer, shared with the callers waiting
                            # for the same kind of token (not this caller's lock timeout: a
                            # later arrival has time left). Without its traceback, whose
                            # frames hold the tokens. The row as it was stays shared too: a
                            # caller whose need it meets (this one forced a refresh) takes it.
                            failure = (kind, _copy_of(exc))
                            row = held
                            raise
                        finally:
                            # Before waking the others: other processes wait for it, and the
                            # woken would keep this thread from the GIL after the round trip.
                            unlock(holder.conn, account_id)
                            if single:  # the one connection: given back under the guard
                                give_back(holder.conn, account_id)
                            else:
                                spent = holder.conn
                        return
        finally:
            try:
                gate.hand_over(row, failure)  # wakes the others
            finally:  # then the pool's reset of the connection (round trips) is nobody's wait
                if spent is not None:
                    give_back(spent, account_id)
        yield None, row


def _copy_of(error: BaseException) -> BaseException:
    """A copy of a token error to raise in another thread: no traceback, cause or context, and
    notes of its own (``copy.copy`` would share the list)."""
    shared = copy.copy(error)
    notes = getattr(error, "__notes__", None)
    if notes is not None:
        setattr(shared, "__notes__", list(notes))  # noqa: B010  # typeshed lacks it on 3.10
    return shared


def _wait_for_lock(
    state: Runtime,
    engine: sa.Engine,
    account_id: int,
    settled: Callable[[Row], bool],
    deadline: float,
) -> tuple[Holder | None, Row]:
    """The lock-then-recheck loop (see the module's docstring)."""
    delay = POLL_FIRST
    while True:
        conn = look_connection(engine)
        taken = False
        try:
            # Not ended here: settled, the connection's close ends it (the ROLLBACK the pool
            # sends anyway); else try_lock's own end does, before the look under the lock.
            row = _look(conn, account_id, end=False)
            if not settled(row):
                taken = try_lock(conn, account_id)
                if taken:
                    row = _look(conn, account_id)  # after taking it: the latest commit
                    if not settled(row):
                        return Holder(state, engine, conn, account_id, row), row
                    unlock(conn, account_id)
                    taken = False
        except BaseException:
            if taken:  # never hand a connection holding our lock back to the pool
                unlock(conn, account_id)
            conn.close()
            raise
        conn.close()
        if settled(row):
            return None, row
        if time.monotonic() > deadline:
            raise TokenRefreshUnavailable(BUSY)
        time.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not a secret
        delay = min(POLL_MAX, delay * 2)


def _look(conn: sa.Connection, account_id: int, *, end: bool = True) -> Row:
    """The row. ``end``: end the transaction the read began, so that the next read on ``conn``
    takes a fresh snapshot (MariaDB's REPEATABLE READ; PostgreSQL's looks run in autocommit).
    Not needed for a connection's last read, whose transaction its close ends: on MariaDB a
    COMMIT less (a valid token's look is then 2 round trips, the read and the pool's ROLLBACK).
    """
    if conn.dialect.name == "sqlite" and conn.in_transaction():
        return read_row(conn, account_id)  # inside the write lock: keep it
    try:
        return read_row(conn, account_id)
    finally:
        if end and conn.dialect.name != "sqlite":
            end_transaction(conn)


MIRRORED = (
    "token_expires_at",
    "graph_token_expires_at",
    "token_refreshed_at",
    "token_scopes",
    "status",
    "last_error_code",
    "last_error_message",
    "last_checked_at",
)


def mirror(state: Runtime, account_id: int, stored: Row | None = None) -> Any:
    """The committed values to mirror: from ``stored`` (what a holder read after its writes),
    else read on a short connection of their own."""
    if stored is not None:
        return tuple(getattr(stored, name) for name in MIRRORED)
    columns = (getattr(MailAccount, name) for name in MIRRORED)
    with look_connection(engine_of(state)) as conn:
        return conn.execute(sa.select(*columns).where(MailAccount.id == account_id)).first()
