"""The example host app (example_app/) on a test database, signed in through its login form.

Shared by the tests that drive the real host (hostile input, route fuzzing): each database in
``MAILCONNECT_TEST_DATABASE_URLS`` gets clean tables before and after; SQLite uses a file so
the app's own connections share it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from example_app import create_app
from example_app.models import db as example_db
from flask_mailconnect import metadata as mailconnect_metadata
from tests.hostapp import TEST_KEY


def _drop_tables(url: str) -> None:
    engine = sa.create_engine(url)
    try:
        mailconnect_metadata.drop_all(engine)
        example_db.metadata.drop_all(engine)
    finally:
        engine.dispose()


@contextmanager
def example_app_on(url: str, tmp_path: Path, **config: Any) -> Iterator[Flask]:
    """The example app on ``url`` (``sqlite://`` becomes a file in ``tmp_path``), CSRF on."""
    shared = url != "sqlite://"
    if not shared:
        url = f"sqlite:///{tmp_path / 'example.db'}"
    else:
        _drop_tables(url)
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "test",
            "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
            "TESTING": True,  # exceptions reach the test client; CSRF stays on
            **config,
        }
    )
    try:
        yield app
    finally:
        with app.app_context():
            example_db.session.remove()
            example_db.engine.dispose()
        if shared:
            _drop_tables(url)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def sign_in(client: FlaskClient, email: str, password: str) -> str:
    """Sign in through the login form; returns the session's CSRF token."""
    token = csrf_token(client.get("/login").get_data(as_text=True))
    data = {"email": email, "password": password, "csrf_token": token}
    assert client.post("/login", data=data).status_code == 302
    return token
