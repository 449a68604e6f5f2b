"""One migration at a time per database: the lock around upgrade, downgrade, stamp and
create_all.

Several workers of one deployment often run ``flask mailconnect db upgrade`` at the same moment
(every container at start). Without a lock both read "at 0002", both create the 0003 table and
one crashes (PostgreSQL's UniqueViolation on the catalogue, MariaDB's 1050 "table exists",
SQLite's "table already exists"). Under the lock the second one reads the revision the first
one left (the caller opens its transaction after taking the lock) and has nothing to do.

- PostgreSQL: ``pg_advisory_lock`` on a constant key, held by the connection's session (not
  its transaction), released by ``pg_advisory_unlock`` or by the server when the process dies.
  Advisory locks are per database.
- MariaDB / MySQL: ``GET_LOCK`` on a name holding the database's name (the lock is server-wide,
  and two databases on one server must not wait for each other), released by ``RELEASE_LOCK``
  or when the session ends.
- SQLite: the migration's own transaction begins with ``BEGIN IMMEDIATE``, SQLite's write
  lock, so a second process waits for the first to commit.
- Any other database: no lock (run the command from one process).

Waiting has no overall limit (a long migration must not make the other workers fail): on
MariaDB and SQLite each wait of :data:`WAIT_SECONDS` is logged and started again; PostgreSQL
waits in one statement.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

log = logging.getLogger("flask_mailconnect.migrations")

#: The lock's name (MariaDB: followed by ``.`` and the database's name).
LOCK_NAME = "mailconnect_migrations"
#: PostgreSQL's advisory lock key: a constant derived from the name, so it never changes
#: between versions and hardly collides with a host's own keys.
PG_KEY = int.from_bytes(hashlib.sha256(LOCK_NAME.encode()).digest()[:8], "big", signed=True)
#: How long one wait lasts before it is logged and tried again.
WAIT_SECONDS = 60


@contextmanager
def locked(connection: sa.engine.Connection) -> Iterator[None]:
    """Hold the migration lock and an open transaction on ``connection`` (not in one yet).

    Read the current revision inside, never before: that is what makes the second worker see
    the first one's work.
    """
    dialect = connection.dialect.name
    if dialect == "sqlite":
        with connection.begin(), _sqlite_write_lock(connection):
            yield
        return
    if dialect == "postgresql":
        _postgresql_lock(connection)
        release = "SELECT pg_advisory_unlock(:key)"
    elif dialect in ("mysql", "mariadb"):
        _mysql_lock(connection)
        release = "SELECT RELEASE_LOCK(:name)"
    else:
        with connection.begin():
            yield
        return
    try:
        with connection.begin():
            yield
    finally:
        try:
            if connection.in_transaction():
                connection.rollback()
            connection.execute(sa.text(release), _params(connection))
            connection.commit()
        except sa.exc.DBAPIError:  # the session is gone, and its lock with it
            log.warning("Could not release the migration lock: its session ended")


def _mysql_name(connection: sa.engine.Connection) -> str:
    return f"{LOCK_NAME}.{connection.engine.url.database or ''}"[:64]  # MySQL's limit


def _params(connection: sa.engine.Connection) -> dict[str, object]:
    return {"key": PG_KEY, "name": _mysql_name(connection)}


def _postgresql_lock(connection: sa.engine.Connection) -> None:
    connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), _params(connection))
    connection.commit()  # the lock is the session's: end the transaction that took it


def _mysql_lock(connection: sa.engine.Connection) -> None:
    while True:
        got = connection.execute(
            sa.text(f"SELECT GET_LOCK(:name, {WAIT_SECONDS})"), _params(connection)
        ).scalar()
        connection.commit()
        if got == 1:
            return
        log.warning(
            "Waiting for another process's Flask-MailConnect migration (%s s so far)", WAIT_SECONDS
        )


@contextmanager
def _sqlite_write_lock(connection: sa.engine.Connection) -> Iterator[None]:
    raw = connection.connection.driver_connection
    if getattr(raw, "in_transaction", False):
        # Our single connection is already inside the caller's transaction (an in-memory
        # database shares one connection): nobody else can write anyway.
        yield
        return
    timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    connection.exec_driver_sql(f"PRAGMA busy_timeout = {WAIT_SECONDS * 1000}")
    try:
        while True:
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
                break
            except sa.exc.OperationalError as exc:
                if "locked" not in str(exc.orig):
                    raise
                log.warning("Waiting for another process's Flask-MailConnect migration")
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(timeout or 0)}")
