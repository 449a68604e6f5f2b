"""Pytest plugin: fixtures that start real mail servers on 127.0.0.1 (see tests/peers/).

Loaded by tests/conftest.py through ``pytest_plugins``. Servers are session-scoped (they start in
milliseconds but tests run against them many times); the function-scoped wrappers reset what a
server has recorded, so each test sees only its own connections, AUTH attempts and messages.
A missing peer skips with a reason, or fails when MAILCONNECT_REQUIRE_PEERS=1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flask_mailconnect.transport.settings import TransportOptions
from tests.mailboxes import fill, reset_inbox
from tests.peers import require_peer
from tests.peers.certs import TestCerts, make_certs
from tests.peers.dovecot import DovecotPeer, dovecot_peer
from tests.peers.raw import SilentServer, TlsListener


@pytest.fixture(scope="session")
def peer_certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    """Test CA (``ca_file``), a CA-issued cert for localhost/127.0.0.1/::1, and an outsider."""
    directory = tmp_path_factory.mktemp("certs")
    directory.chmod(0o755)
    return make_certs(directory)


# Reaching the peers: the same policy as transport options (tests of the transport layer) and
# as app config (tests through the extension). ServerSettings for them: tests/peers/settings.py.


@pytest.fixture
def peer_options(peer_certs: TestCerts) -> TransportOptions:
    """Options for loopback peers: private hosts on (explicitly), any port, trust the test CA."""
    return TransportOptions(
        timeout=5.0,
        allow_private_hosts=True,
        smtp_ports=None,
        imap_ports=None,
        ca_file=peer_certs.ca_file,
    )


@pytest.fixture
def peer_config(peer_certs: TestCerts) -> dict[str, Any]:
    """App config for loopback peers, as ``peer_options`` but leaving the timeout alone:
    private hosts on (explicitly), any port, trust the test CA. A fresh dict each test: add
    keys for one app (``hostapp.create_app(url, **peer_config, MAILCONNECT_PROVIDERS=...)``)."""
    return {
        "MAILCONNECT_ALLOW_PRIVATE_HOSTS": True,
        "MAILCONNECT_SMTP_PORTS": None,
        "MAILCONNECT_IMAP_PORTS": None,
        "MAILCONNECT_CA_FILE": peer_certs.ca_file,
    }


@pytest.fixture
def peer_app(app: Flask, peer_config: dict[str, Any]) -> Flask:
    """The host app (``app``) configured with ``peer_config`` and ``peer_options``' 5 s timeout.

    Starts no peer: a test asks for the peers it talks to (``smtp_starttls``, ``dovecot``...).
    """
    app.config.update(peer_config, MAILCONNECT_CONNECT_TIMEOUT=5)
    return app


@pytest.fixture(scope="session")
def oauth_server() -> Iterator[Any]:
    """The local OAuth 2.0 / OIDC provider (example_app/oauth_provider.py), both flavours.

    ``.google`` / ``.microsoft`` hold the endpoint URLs (``authorize_url``, ``token_url``,
    ``revoke_url``, ``userinfo_url``, ``jwks_url``, ``metadata_url``, ``issuer``);
    ``tests.peers.oauth.CLIENT_ID`` / ``CLIENT_SECRET`` are registered (add redirect URIs with
    ``.add_redirect_uri``). Knobs persist for the session: tests that turn one use
    ``oauth_provider``, which resets them. The SMTP peers and Dovecot accept its tokens.
    """
    from tests.peers.oauth import start_oauth_server

    server = start_oauth_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def oauth_provider(oauth_server: Any) -> Iterator[Any]:
    """``oauth_server`` with its knobs and counters reset before and after the test."""
    oauth_server.reset()
    yield oauth_server
    oauth_server.reset()


@pytest.fixture(scope="session")
def oauth_introspection(oauth_server: Any) -> Any:
    """``.url .client_id .client_secret`` and ``.check(token)``: what the mail peers use."""
    from tests.peers.oauth import introspection_for

    return introspection_for(oauth_server)


@pytest.fixture(scope="session")
def graph_server(oauth_server: Any, peer_certs: TestCerts) -> Iterator[Any]:
    from tests.peers.graph import start_graph, stop_graph

    peer, server, thread = start_graph(oauth_server, peer_certs.server_context())
    try:
        yield peer
    finally:
        stop_graph(server, thread)


@pytest.fixture
def graph(graph_server: Any) -> Any:
    """A local Microsoft Graph over TLS (test CA): ``.url`` (``https://localhost:<port>/v1.0``,
    the ``graph_url``), what it accepted in ``.sent`` (``{"user", "mime"}``), ``.requests``,
    and ``.queue_failure(status, code, retry_after)``. Tokens come from ``oauth_server``;
    sending needs a ``Mail.Send`` scope."""
    graph_server.reset()
    return graph_server


def _start_smtp(
    mode: str, certs: TestCerts, *, trusted: bool = True, introspection: Any = None
) -> Iterator[Any]:
    try:
        from tests.peers.smtp_server import start_smtp
    except ImportError as exc:  # aiosmtpd is a test extra
        require_peer("aiosmtpd", str(exc))
    context = None if mode == "plain" else certs.server_context(trusted=trusted)
    peer, controller = start_smtp(
        mode,  # type: ignore[arg-type]
        ca_file=certs.ca_file,
        context=context,
        introspection=introspection,
    )
    try:
        yield peer
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def smtp_starttls_server(peer_certs: TestCerts, oauth_introspection: Any) -> Iterator[Any]:
    yield from _start_smtp("starttls", peer_certs, introspection=oauth_introspection)


@pytest.fixture(scope="session")
def smtp_ssl_server(peer_certs: TestCerts, oauth_introspection: Any) -> Iterator[Any]:
    yield from _start_smtp("ssl", peer_certs, introspection=oauth_introspection)


@pytest.fixture(scope="session")
def smtp_plain_server(peer_certs: TestCerts, oauth_introspection: Any) -> Iterator[Any]:
    yield from _start_smtp("plain", peer_certs, introspection=oauth_introspection)


@pytest.fixture(scope="session")
def smtp_untrusted_server(peer_certs: TestCerts) -> Iterator[Any]:
    yield from _start_smtp("ssl", peer_certs, trusted=False)


@pytest.fixture
def smtp_starttls(smtp_starttls_server: Any) -> Any:
    """aiosmtpd on port ``.port`` requiring STARTTLS then AUTH; ``.host .user .password
    .ca_file .security ("starttls")``, and what it saw: ``.messages .auth_attempts
    .connections``. AUTH XOAUTH2 accepts active tokens of ``oauth_server`` (by introspection);
    ``.auth_disabled_user`` gets Microsoft's 535 5.7.139."""
    smtp_starttls_server.reset()
    return smtp_starttls_server


@pytest.fixture
def smtp_ssl(smtp_ssl_server: Any) -> Any:
    """aiosmtpd with implicit TLS (``.security == "ssl"``); same attributes as smtp_starttls."""
    smtp_ssl_server.reset()
    return smtp_ssl_server


@pytest.fixture
def smtp_plain(smtp_plain_server: Any) -> Any:
    """aiosmtpd without TLS that offers AUTH in plaintext (``.security == "none"``)."""
    smtp_plain_server.reset()
    return smtp_plain_server


@pytest.fixture
def smtp_untrusted(smtp_untrusted_server: Any) -> Any:
    """aiosmtpd with implicit TLS and a self-signed certificate the test CA did not issue."""
    smtp_untrusted_server.reset()
    return smtp_untrusted_server


@pytest.fixture(scope="session")
def dovecot(peer_certs: TestCerts, oauth_introspection: Any) -> Iterator[Any]:
    """Dovecot with ``.port`` (IMAP + STARTTLS) and ``.ssl_port`` (IMAPS); ``.host .user
    .password .ca_file .maildir``. Passwords (passwd-file) and XOAUTH2 / OAUTHBEARER with
    ``oauth_server`` tokens (oauth2 passdb, introspection_mode = post) both log in."""
    from tests.peers.dovecot import dovecot_available, start_dovecot, stop_dovecot

    reason = dovecot_available()
    if reason is None and os.geteuid() != 0:
        reason = "the test config runs Dovecot as root (mail processes as user dovecot)"
    if reason is not None:
        require_peer("dovecot", reason)
    try:
        peer = start_dovecot(
            cert_file=peer_certs.cert_file,
            key_file=peer_certs.key_file,
            ca_file=peer_certs.ca_file,
            introspection=oauth_introspection,
        )
    except Exception as exc:  # any start failure is "peer unavailable"
        require_peer("dovecot", f"could not start: {exc}")
    try:
        yield peer
    finally:
        stop_dovecot(peer)


@pytest.fixture(scope="module")
def imap_server(peer_certs: TestCerts) -> Iterator[DovecotPeer]:
    """A private Dovecot for one test module, whose mailboxes the module's tests empty and fill
    at will (helpers in tests/mailboxes.py); the session's ``dovecot`` stays untouched."""
    yield from dovecot_peer(
        cert_file=peer_certs.cert_file, key_file=peer_certs.key_file, ca_file=peer_certs.ca_file
    )


@pytest.fixture
def inbox(imap_server: DovecotPeer) -> DovecotPeer:
    """``imap_server`` with INBOX holding "Message 01" .. "Message 60", UIDs 1..60."""
    reset_inbox(imap_server)
    fill(imap_server, range(1, 61))
    return imap_server


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """``.host .port`` of a socket that accepts TCP connections and never says a word."""
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def untrusted_tls_server(peer_certs: TestCerts) -> Iterator[TlsListener]:
    """``.host .port`` of a TLS listener whose certificate the test CA did not issue."""
    server = TlsListener(peer_certs.server_context(trusted=False))
    try:
        yield server
    finally:
        server.close()
