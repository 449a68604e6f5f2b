"""``dns_server`` for the modules here: tests/peers/dns_server.py's ``DNSServer``
answering from ``MX_ZONE`` (tests/mx_dns.py), closed after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mx_dns import MX_ZONE
from tests.peers.dns_server import DNSServer


@pytest.fixture
def dns_server() -> Iterator[DNSServer]:
    server = DNSServer(MX_ZONE)
    yield server
    server.close()
