"""``peer_app`` for every sending module here, overriding tests/conftest_peers.py's: the host app
allowed to reach the local peers (private hosts, any port, the test CA, a 5 s timeout), inside its
app context, with aiosmtpd (``smtp_starttls``) started (tests/sending.py's ``peer_app_context``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.sending import peer_app_context


@pytest.fixture
def peer_app(app: Flask, smtp_starttls: Any, peer_certs: Any) -> Iterator[Flask]:
    yield from peer_app_context(app, peer_certs)
