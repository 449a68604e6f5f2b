"""Real servers on 127.0.0.1 for integration tests: a test CA, aiosmtpd, Dovecot, silent sockets.

Fixtures live in ``tests/conftest_peers.py``; these modules only start and stop things, and
``settings.py`` builds the ServerSettings that reach them.
"""

from __future__ import annotations

import os
import socket

import pytest

#: The one mailbox login every peer (aiosmtpd and Dovecot) accepts, so a test can connect an
#: account that both sends and receives.
MAILBOX_USER = "alice@example.test"
MAILBOX_PASSWORD = "s3cret-Pa55word!"


def require_peer(name: str, reason: str) -> None:
    """A peer is missing: skip with a visible reason, or fail under MAILCONNECT_REQUIRE_PEERS=1."""
    message = f"peer {name} unavailable: {reason}"
    if os.environ.get("MAILCONNECT_REQUIRE_PEERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 5.0) -> bool:
    """Poll until ``host:port`` accepts a TCP connection."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False
