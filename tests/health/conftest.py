"""``dbapp`` for the health-check modules here: the host app set up for the peers (a 5 s
timeout), once per database in MAILCONNECT_TEST_DATABASE_URLS (and SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_mailconnect import MailConnect
from tests import hostapp
from tests.conftest import cleaned_up, database_urls, db_label


@pytest.fixture(params=database_urls(), ids=db_label)
def dbapp(
    request: pytest.FixtureRequest, smtp_starttls: Any, dovecot: Any, peer_config: dict
) -> Iterator[tuple[Flask, MailConnect]]:
    app, ext = hostapp.create_app(
        request.param, **peer_config, MAILCONNECT_CONNECT_TIMEOUT=5,
    )  # fmt: skip
    with cleaned_up(app):
        yield app, ext
