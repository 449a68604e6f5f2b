"""``dns_server`` for the modules here: a local DNS server (tests/mx_dns.py) answering MX
queries from ``MX_ZONE``, closed after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mx_dns import MX_ZONE, LocalDNS


@pytest.fixture
def dns_server() -> Iterator[LocalDNS]:
    server = LocalDNS(MX_ZONE)
    yield server
    server.close()
