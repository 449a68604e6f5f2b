"""Shared fixtures. Peer servers (aiosmtpd, Dovecot, ...) live in tests/conftest_peers.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, template_rendered
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader

from flask_mailconnect import MailConnect
from flask_mailconnect import metadata as mailconnect_metadata
from tests import hostapp
from tests.worker_databases import use_worker_databases

pytest_plugins = ["tests.conftest_peers"]


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # before collection: the test ids below hold no database name
        use_worker_databases(worker)


def database_urls() -> list[str]:
    """SQLite, plus each URL in MAILCONNECT_TEST_DATABASE_URLS (space or comma separated);
    under pytest-xdist, the worker's own databases (tests/worker_databases.py)."""
    extra = os.environ.get("MAILCONNECT_TEST_DATABASE_URLS", "")
    return ["sqlite://"] + [u for u in extra.replace(",", " ").split() if u]


def db_label(url: str) -> str:
    """``sqlite``, ``postgresql`` or ``mysql``: a test id and a line in printed figures."""
    return url.split(":", 1)[0].split("+", 1)[0]


@pytest.fixture
def app_and_ext() -> Iterator[tuple[Flask, MailConnect]]:
    app, ext = hostapp.create_app()
    yield app, ext
    with app.app_context():
        hostapp.db.session.remove()
        hostapp.db.engine.dispose()


@pytest.fixture
def app(app_and_ext: tuple[Flask, MailConnect]) -> Flask:
    """The host app (pytest-flask's ``client`` fixture builds on this)."""
    return app_and_ext[0]


@pytest.fixture
def mailconnect(app_and_ext: tuple[Flask, MailConnect]) -> MailConnect:
    return app_and_ext[1]


@pytest.fixture
def db() -> Any:
    return hostapp.db


def login(client: FlaskClient, user_id: int) -> None:
    """Sign a test user in: 1 alice, 2 bob, 3 admin."""
    assert client.post(f"/test-login/{user_id}").status_code == 200


@contextmanager
def count_queries(app: Flask) -> Iterator[list[str]]:
    """The SQL statements ``app``'s engine runs inside the ``with`` block, in order."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    with app.app_context():
        engine = hostapp.db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


@contextmanager
def cleaned_up(
    app: Flask, *, before_drop: Callable[[sa.Engine], None] | None = None
) -> Iterator[Flask]:
    """``app`` for the ``with`` block; after it, also when it fails, the host session removed,
    on a server database the extension's and the host's tables dropped (PostgreSQL and MariaDB
    outlive the test: the next one must start from no tables; SQLite goes with its engine),
    and the engine disposed. ``before_drop(engine)`` runs between the removal and the drop."""
    try:
        yield app
    finally:
        with app.app_context():
            hostapp.db.session.remove()
            engine = hostapp.db.engine
            if before_drop is not None:
                before_drop(engine)
            if engine.dialect.name != "sqlite":
                mailconnect_metadata.drop_all(engine)
                hostapp.db.drop_all()
            engine.dispose()


@contextmanager
def captured_context(app: Flask) -> Iterator[dict[str, Any]]:
    """The context of the templates ``app`` renders inside the ``with`` block, merged in
    rendering order (the dict stays readable after the block)."""
    captured: dict[str, Any] = {}

    def keep(sender: Any, template: Any, context: dict[str, Any], **extra: Any) -> None:
        captured.update(context)

    with template_rendered.connected_to(keep, app):
        yield captured


def override_templates(app: Flask, templates: dict[str, str]) -> None:
    """Serve ``templates`` (name to source) before everything else ``app`` loads, as a host's
    own files of those names would be."""
    app.jinja_loader = ChoiceLoader(  # type: ignore[assignment]
        [DictLoader(templates), app.jinja_loader]  # type: ignore[list-item]
    )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int) -> None:
    stats = terminalreporter.stats
    ran = sum(len(stats.get(k, [])) for k in ("passed", "failed", "error"))
    terminalreporter.write_line(
        f"Flask-MailConnect suite: {ran} tests run, {len(stats.get('passed', []))} passed, "
        f"{len(stats.get('skipped', []))} skipped."
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that executed nothing, or (in CI) skipped anything, must not look green."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    if not reporter.stats.get("passed"):
        reporter.write_line("No test ran: failing the run.", red=True)
        session.exitstatus = 1
    if os.environ.get("MAILCONNECT_REQUIRE_PEERS") == "1" and reporter.stats.get("skipped"):
        reporter.write_line("MAILCONNECT_REQUIRE_PEERS=1 but tests were skipped.", red=True)
        session.exitstatus = 1
