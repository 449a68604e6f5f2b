"""Each pytest-xdist worker's own server databases (tests/worker_databases.py): ``make test``
runs on several workers, and two sharing a database would drop each other's tables mid-test.

Against the PostgreSQL and MariaDB in MAILCONNECT_TEST_DATABASE_URLS (a missing one skips, or
fails under MAILCONNECT_REQUIRE_PEERS=1): a worker's database is named beside the listed one,
created once (asking again is harmless), reachable, and on MariaDB has the listed one's
character set and collation; SQLite URLs and the variable's other entries are left alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.oauth_accounts import server_url
from tests.peers import require_peer
from tests.worker_databases import VARIABLE, use_worker_databases, worker_database

PROBE = "gwprobe"  #: a worker name no xdist run uses


@pytest.fixture(params=["postgresql", "mysql"], ids=["postgresql", "mariadb"])
def listed(request: pytest.FixtureRequest) -> Iterator[str]:
    """A server URL as listed, and the probe worker's database dropped after the test."""
    url = server_url(request.param)
    if url is None:
        require_peer(request.param, f"{VARIABLE} lists no {request.param} URL")
    assert url is not None
    yield url
    name = f"{sa.make_url(url).database}_{PROBE}"
    if request.param == "postgresql":
        admin = sa.make_url(url).set(database="postgres")
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        drop = f'DROP DATABASE IF EXISTS "{name}"'
    else:
        engine = sa.create_engine(sa.make_url(url).set(database="information_schema"))
        drop = f"DROP DATABASE IF EXISTS `{name}`"
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(drop)
    finally:
        engine.dispose()


def _current(url: str) -> tuple[str, tuple[str, str] | None]:
    """The database ``url`` connects to, and on MariaDB its character set and collation."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                return conn.exec_driver_sql("SELECT current_database()").scalar_one(), None
            name = conn.exec_driver_sql("SELECT DATABASE()").scalar_one()
            charset = conn.exec_driver_sql(
                "SELECT @@character_set_database, @@collation_database"
            ).one()
            return name, (charset[0], charset[1])
    finally:
        engine.dispose()


def test_a_worker_gets_a_database_of_its_own_beside_the_listed_one(listed: str) -> None:
    mine = worker_database(listed, PROBE)
    assert mine != listed
    assert sa.make_url(mine).database == f"{sa.make_url(listed).database}_{PROBE}"
    same_server = {"database": "-"}  # URL.set ignores None: compare all but the database
    assert sa.make_url(mine).set(**same_server) == sa.make_url(listed).set(**same_server)
    name, charset = _current(mine)
    assert name == f"{sa.make_url(listed).database}_{PROBE}"
    assert charset == _current(listed)[1]  # MariaDB: the listed one's; PostgreSQL: None
    assert worker_database(listed, PROBE) == mine  # it exists now: asking again is harmless


def test_the_variable_is_rewritten_for_the_worker_and_sqlite_stays(
    listed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(VARIABLE, f"sqlite:///tmp/x.db,{listed}")
    use_worker_databases(PROBE)
    rewritten = os.environ[VARIABLE].split()
    assert rewritten == ["sqlite:///tmp/x.db", worker_database(listed, PROBE)]
