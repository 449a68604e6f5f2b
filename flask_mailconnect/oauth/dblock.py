"""The database lock that lets one process at a time refresh an account's token (see
:mod:`.locks` for who waits and how), and the connections it runs on.

Per backend: PostgreSQL, a session-level advisory lock (``pg_try_advisory_lock``); MariaDB /
MySQL, ``GET_LOCK(name, 0)``; SQLite (no advisory locks), the database write lock, taken with a
no-op ``UPDATE`` while the busy timeout is 0.

Each look must see the latest commit, and each save the token the holder just committed,
whatever isolation level the host runs. On PostgreSQL, looks and the lock run on an autocommit
connection and saves on a ``READ COMMITTED`` one: psycopg applies both without a round trip.
On MariaDB / MySQL, the driver pays for every such setting twice (``SET AUTOCOMMIT`` or ``SET
SESSION TRANSACTION ...`` with a ``COMMIT`` on the way out, and the pool's reset on the way
in: a look cost six round trips for its one statement), so there a look ends its transaction
instead: with a ``COMMIT`` where another look follows on its connection (which then reads a
fresh snapshot), else with the ``ROLLBACK`` the pool sends when the connection goes back (a
valid token's look: two round trips). A save sets ``READ COMMITTED`` for its one transaction
only (``SET TRANSACTION``, nothing to reset).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.pool import SingletonThreadPool, StaticPool

log = logging.getLogger("flask_mailconnect.oauth")

#: First key of our PostgreSQL advisory locks ("MCRF"): keeps them apart from the host's.
PG_NAMESPACE = 0x4D435246


def single_connection(engine: sa.Engine) -> bool:
    return isinstance(engine.pool, (StaticPool, SingletonThreadPool))


def describe(exc: BaseException) -> str:
    """An exception named for a log line: its class and the database's error code, never its
    text (which may quote SQL parameters or the failing statement)."""
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    if code is None and orig.args and isinstance(orig.args[0], int):
        code = orig.args[0]  # MySQL / MariaDB error number
    name = type(orig).__name__
    return f"{name} {code}" if code else name


def _pg_key(account_id: int) -> int:
    # the second key of pg_try_advisory_lock(int4, int4): ids past 2**31 fold (two accounts
    # sharing a key only wait for each other, never break)
    return ((account_id + 2**31) % 2**32) - 2**31


def _mysql_name(conn: sa.Connection, account_id: int) -> str:
    # GET_LOCK names are server-wide (not per database) and at most 64 characters
    database = conn.engine.url.database or ""
    digest = hashlib.sha1(database.encode("utf-8"), usedforsecurity=False).hexdigest()[:16]
    return f"mailconnect.refresh.{digest}.{account_id}"


def try_lock(conn: sa.Connection, account_id: int) -> bool:
    """Take the account's refresh lock on ``conn`` without waiting; True when taken.

    PostgreSQL / MariaDB: the lock stays with the connection until :func:`unlock` (or the
    connection closes). SQLite: the write lock of the transaction now open on ``conn``.
    """
    if conn.dialect.name == "postgresql":
        query = sa.text("SELECT pg_try_advisory_lock(:ns, :key)")
        taken = conn.execute(query, {"ns": PG_NAMESPACE, "key": _pg_key(account_id)}).scalar()
        end_transaction(conn)  # the lock is the session's; end the transaction it began
        return bool(taken)
    if _mysql(conn.engine):
        name = _mysql_name(conn, account_id)
        taken = conn.execute(sa.text("SELECT GET_LOCK(:name, 0)"), {"name": name}).scalar()
        end_transaction(conn)
        return taken == 1
    if single_connection(conn.engine):  # serialised by the per-app lock already
        _touch(conn, account_id)
        return True
    busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0
    conn.exec_driver_sql("PRAGMA busy_timeout = 0")
    try:
        _touch(conn, account_id)
        return True
    except sa.exc.OperationalError:  # "database is locked": someone is writing; look again
        conn.rollback()
        return False
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {int(busy)}")


def _autocommit(conn: sa.Connection) -> bool:
    return conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def end_transaction(conn: sa.Connection) -> None:
    # Autocommit: nothing to commit (and PyMySQL would send a COMMIT all the same).
    if conn.in_transaction() and not _autocommit(conn):
        conn.commit()


def _touch(conn: sa.Connection, account_id: int) -> None:
    """SQLite: take the database write lock (like BEGIN IMMEDIATE) with a no-op UPDATE."""
    conn.execute(
        sa.text("UPDATE mailconnect_account SET id = id WHERE id = :id"), {"id": account_id}
    )


def unlock(conn: sa.Connection, account_id: int) -> None:
    """Give the lock back; a connection that cannot is closed (which releases it too)."""
    try:
        # an autocommit holder's connection has nothing to roll back; on MariaDB / MySQL no
        # failed transaction refuses RELEASE_LOCK, and the pool rolls back when it returns
        plain = not _autocommit(conn) and not _mysql(conn.engine)
        if plain and conn.in_transaction():
            conn.rollback()
        if conn.dialect.name == "postgresql":
            query = sa.text("SELECT pg_advisory_unlock(:ns, :key)")
            conn.execute(query, {"ns": PG_NAMESPACE, "key": _pg_key(account_id)})
        elif _mysql(conn.engine):
            name = _mysql_name(conn, account_id)
            conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})
        if plain and conn.in_transaction():
            conn.rollback()
    except sa.exc.SQLAlchemyError as exc:
        log.warning("Refresh lock of account %s: closing its connection (%s)", account_id,
                    describe(exc))  # fmt: skip
        conn.invalidate()


def _mysql(engine: sa.Engine) -> bool:
    return engine.dialect.name in ("mysql", "mariadb")


def save_connection(engine: sa.Engine) -> sa.Connection:
    """For one save: its transaction reads committed data, so it sees the token the holder
    just committed (hosts may run REPEATABLE READ or SERIALIZABLE)."""

    def set_up(conn: sa.Connection) -> sa.Connection:
        if engine.dialect.name == "postgresql":  # reset when it goes back to the pool
            return _with_isolation(conn, "READ COMMITTED")
        if _mysql(engine):  # the next transaction only, so the pool has nothing to reset
            _read_committed_next(conn)
        return conn

    return _connect(engine, set_up)


def _connect(engine: sa.Engine, set_up: Callable[[sa.Connection], sa.Connection]) -> sa.Connection:
    """A connection from ``engine`` after ``set_up``; one whose set-up fails goes back to the
    pool at once (the caller never gets it: else it stays checked out until collected)."""
    conn = engine.connect()
    try:
        return set_up(conn)
    except BaseException:
        conn.close()
        raise


#: MariaDB / MySQL: "Transaction characteristics can't be changed while a transaction is in
#: progress".
_TRANSACTION_OPEN = 1568


def _read_committed_next(conn: sa.Connection) -> None:
    """``SET TRANSACTION`` needs no transaction open. The pool's reset (a ROLLBACK) ends any;
    a host that turned it off (``pool_reset_on_return=None``) and left one open with the raw
    driver gets it rolled back here, one round trip paid only then."""
    set_level = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"
    try:
        conn.exec_driver_sql(set_level)
    except sa.exc.DBAPIError as exc:  # OperationalError (PyMySQL), ProgrammingError (others)
        if _mysql_code(exc.orig) != _TRANSACTION_OPEN:
            raise
        conn.rollback()  # ends the host's leftover transaction on the server too
        conn.exec_driver_sql(set_level)


def _mysql_code(error: BaseException | None) -> object:
    """A MariaDB / MySQL driver error's server code: ``errno`` (mysql-connector, MariaDB
    Connector/Python), else the first argument (PyMySQL, mysqlclient)."""
    code = getattr(error, "errno", None)
    if code is None:
        args = getattr(error, "args", ())
        code = args[0] if args else None
    return code


def look_connection(engine: sa.Engine) -> sa.Connection:
    """For looks and the lock. PostgreSQL: autocommit, so each look sees the latest commit
    whatever the host's isolation level, without a BEGIN and a COMMIT around it (3 round trips:
    1). MariaDB / MySQL: as it comes from the pool; a look followed by another on it ends its
    transaction first (:func:`end_transaction`), so the next one reads a fresh snapshot."""
    if engine.dialect.name == "postgresql":
        return _connect(engine, lambda conn: _with_isolation(conn, "AUTOCOMMIT"))
    return engine.connect()


def _with_isolation(conn: sa.Connection, level: str) -> sa.Connection:
    """``conn`` at ``level`` (PostgreSQL). The driver refuses to change it inside a
    transaction ("can't change 'autocommit' now"), which a host's pool hands over when it
    does not reset connections (``pool_reset_on_return=None``) and the host left one open
    through the raw driver: that transaction is rolled back first, paid only then."""
    try:
        return conn.execution_options(isolation_level=level)
    except conn.dialect.loaded_dbapi.ProgrammingError:
        conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        return conn.execution_options(isolation_level=level)


def give_back(conn: sa.Connection, account_id: int) -> None:
    """Close the holder's connection after its refresh was saved: the pool resets it on the
    way in (round trips of their own), and a failure there must not fail a saved refresh."""
    try:
        conn.close()
    except Exception as exc:  # noqa: BLE001 - the token is stored; the connection is spent
        log.warning("Refresh lock of account %s: its connection did not close cleanly (%s)",
                    account_id, type(exc).__name__)  # fmt: skip
        with contextlib.suppress(Exception):
            conn.invalidate()
