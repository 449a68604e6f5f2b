"""A database of its own for each pytest-xdist worker (``make test`` runs two or more).

The tests create and drop their tables on the server databases named in
``MAILCONNECT_TEST_DATABASE_URLS``; two workers sharing one would drop each other's tables
mid-test. So each worker swaps every server URL for a sibling database named
``<database>_<worker>`` (``test_gw0``, ``test_gw1``), created on first use with the original's
character set, as pytest-django does. The environment variable itself is rewritten, so the
subprocesses a test starts (benchmark smoke runs, other hosts) follow the worker too. Lock
names stay apart: PostgreSQL's advisory locks are per database, and the MariaDB lock names
hold a digest of the database name (oauth/dblock.py, migrations/lock.py).
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

VARIABLE = "MAILCONNECT_TEST_DATABASE_URLS"


def use_worker_databases(worker: str) -> None:
    """Point ``MAILCONNECT_TEST_DATABASE_URLS`` at ``worker``'s own databases, creating any
    that does not exist yet."""
    urls = os.environ.get(VARIABLE, "").replace(",", " ").split()
    if urls:
        os.environ[VARIABLE] = " ".join(worker_database(url, worker) for url in urls)


def worker_database(url: str, worker: str) -> str:
    """``url`` with its database renamed ``<database>_<worker>``, which now exists."""
    original = sa.make_url(url)
    if original.get_backend_name() == "sqlite" or not original.database:
        return url
    mine = original.set(database=f"{original.database}_{worker}")
    backend = original.get_backend_name()
    try:
        if backend == "postgresql":
            _create_postgresql(original, mine.database or "")
        elif backend in ("mysql", "mariadb"):
            _create_mysql(original, mine.database or "")
        else:
            raise pytest.UsageError(f"{VARIABLE}: no per-worker database for {backend}")
    except sa.exc.SQLAlchemyError as exc:
        raise pytest.UsageError(
            f"{VARIABLE}: pytest-xdist worker {worker} could not create its database "
            f"{mine.database!r} beside {original.database!r} ({type(exc.orig or exc).__name__}"
            f"). Give the URL's user the right to create databases, or run in one process "
            f"(make test PYTEST_WORKERS=0, or pytest -n 0)."
        ) from None
    return mine.render_as_string(hide_password=False)


def _create_postgresql(original: sa.URL, name: str) -> None:
    # CREATE DATABASE cannot run in a transaction, and the new database takes its encoding
    # and collation from the server's template, as the original did when it was created
    engine = sa.create_engine(original.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def _create_mysql(original: sa.URL, name: str) -> None:
    engine = sa.create_engine(original.set(database="information_schema"))  # always there
    try:
        with engine.connect() as conn:
            charset, collation = conn.execute(
                sa.text(
                    "SELECT default_character_set_name, default_collation_name "
                    "FROM information_schema.schemata WHERE schema_name = :name"
                ),
                {"name": original.database},
            ).one()
            conn.execute(
                sa.text(
                    f"CREATE DATABASE IF NOT EXISTS `{name}` "
                    f"CHARACTER SET {charset} COLLATE {collation}"
                )
            )
    finally:
        engine.dispose()
