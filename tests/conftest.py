"""Shared fixtures. Peer servers (aiosmtpd, Dovecot, ...) live in tests/conftest_peers.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import MailConnect
from tests import hostapp

pytest_plugins = ["tests.conftest_peers"]


def database_urls() -> list[str]:
    """SQLite always, plus every URL in MAILCONNECT_TEST_DATABASE_URLS (space or comma separated)."""
    extra = os.environ.get("MAILCONNECT_TEST_DATABASE_URLS", "")
    return ["sqlite://"] + [u for u in extra.replace(",", " ").split() if u]


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
