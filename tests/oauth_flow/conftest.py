"""The host app with Google and Microsoft at the local OAuth server, for every module here.

``oauth_app`` is the host app and the server (tests/oauth_flows.py's ``oauth_host``), with
aiosmtpd and Dovecot checking tokens by introspection; ``app`` (overriding the root conftest's
host app) and ``server`` are its two halves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.oauth_flows import oauth_host


@pytest.fixture
def oauth_app(oauth_provider: Any, smtp_starttls: Any, dovecot: Any) -> Iterator[tuple[Flask, Any]]:
    yield from oauth_host(oauth_provider, smtp_starttls, dovecot)


@pytest.fixture
def app(oauth_app: tuple[Flask, Any]) -> Flask:
    return oauth_app[0]


@pytest.fixture
def server(oauth_app: tuple[Flask, Any]) -> Any:
    return oauth_app[1]
