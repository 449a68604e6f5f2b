"""IMAP checks against a real Dovecot (IMAPS and IMAP+STARTTLS) on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from imapclient import IMAPClient

from flask_mailconnect.exceptions import ConnectionFailed
from flask_mailconnect.transport.imap import check_imap, open_imap
from flask_mailconnect.transport.settings import ServerSettings
from tests.peers.dovecot import dovecot_peer
from tests.peers.settings import peer_settings

pytestmark = pytest.mark.peers


def imap_settings(peer: Any, *, port: int, security: str, **overrides: Any) -> ServerSettings:
    """IMAP-only settings for ``peer`` at ``port`` with ``security`` (SMTP a placeholder)."""
    return peer_settings(imap=peer, imap_port=port, imap_security=security, **overrides)


@pytest.fixture(params=["ssl", "starttls"])
def dovecot_endpoint(request, dovecot) -> tuple[Any, int, str]:
    port = dovecot.ssl_port if request.param == "ssl" else dovecot.port
    return dovecot, port, request.param


def test_good_credentials_connect(dovecot_endpoint, peer_options) -> None:
    peer, port, security = dovecot_endpoint
    result = check_imap(imap_settings(peer, port=port, security=security), peer_options)
    assert (result.ok, result.code) == (True, "ok"), result


def test_bad_password_is_auth_failed(dovecot_endpoint, peer_options) -> None:
    peer, port, security = dovecot_endpoint
    settings = imap_settings(peer, port=port, security=security, password="wrong")
    result = check_imap(settings, peer_options)
    assert (result.ok, result.code) == (False, "auth_failed")


#: Not ASCII: IMAP LOGIN cannot carry it, AUTHENTICATE PLAIN (UTF-8) can.
UTF8_PASSWORD = "pässwörd✓"


@pytest.fixture(scope="session")
def dovecot_utf8(peer_certs) -> Iterator[Any]:
    """A second Dovecot, like ``dovecot`` but with a non-ASCII mailbox password."""
    yield from dovecot_peer(
        cert_file=peer_certs.cert_file,
        key_file=peer_certs.key_file,
        ca_file=peer_certs.ca_file,
        password=UTF8_PASSWORD,
    )


@pytest.fixture(params=["ssl", "starttls"])
def dovecot_utf8_endpoint(request, dovecot_utf8) -> tuple[Any, int, str]:
    port = dovecot_utf8.ssl_port if request.param == "ssl" else dovecot_utf8.port
    return dovecot_utf8, port, request.param


def test_non_ascii_password_logs_in_with_authenticate_plain(
    dovecot_utf8_endpoint, peer_options
) -> None:
    peer, port, security = dovecot_utf8_endpoint
    assert not peer.password.isascii()
    result = check_imap(imap_settings(peer, port=port, security=security), peer_options)
    assert (result.ok, result.code) == (True, "ok"), result


def test_wrong_non_ascii_password_is_auth_failed_not_retryable(
    dovecot_utf8_endpoint, peer_options
) -> None:
    peer, port, security = dovecot_utf8_endpoint
    settings = imap_settings(peer, port=port, security=security, password="fälsch✗")
    result = check_imap(settings, peer_options)
    assert (result.ok, result.code, result.retryable) == (False, "auth_failed", False), result
    assert result.detail == "AUTHENTICATE NO"


def test_non_ascii_password_without_auth_plain_is_auth_failed(
    dovecot_utf8, peer_options, monkeypatch
) -> None:
    # The server stops offering AUTH=PLAIN (as seen through imapclient, which check_imap uses).
    real = IMAPClient.capabilities

    def without_auth_plain(self):  # type: ignore[no-untyped-def]
        return tuple(c for c in real(self) if c != b"AUTH=PLAIN")

    monkeypatch.setattr(IMAPClient, "capabilities", without_auth_plain)
    settings = imap_settings(dovecot_utf8, port=dovecot_utf8.ssl_port, security="ssl")
    result = check_imap(settings, peer_options)
    assert (result.ok, result.code, result.retryable) == (False, "auth_failed", False), result
    assert "AUTH=PLAIN" in result.detail and "non-ASCII" in result.detail


def test_starttls_on_imaps_port_is_wrong_security(dovecot, peer_options) -> None:
    options = dataclasses.replace(peer_options, timeout=1.0)
    started = time.monotonic()
    result = check_imap(imap_settings(dovecot, port=dovecot.ssl_port, security="starttls"), options)
    assert result.code == "wrong_security_for_port"
    assert time.monotonic() - started < 1.0 + 0.5


def test_ssl_on_plain_imap_port_is_wrong_security(dovecot, peer_options) -> None:
    result = check_imap(imap_settings(dovecot, port=dovecot.port, security="ssl"), peer_options)
    assert result.code == "wrong_security_for_port"


def test_untrusted_certificate_is_refused(untrusted_tls_server, peer_options) -> None:
    listener = untrusted_tls_server
    settings = imap_settings(listener, port=listener.port, security="ssl", imap_host=listener.host)
    result = check_imap(settings, peer_options)
    assert result.code == "certificate_invalid"


def test_dovecot_certificate_not_trusted_without_the_ca(dovecot_endpoint, peer_options) -> None:
    peer, port, security = dovecot_endpoint
    options = dataclasses.replace(peer_options, ca_file=None)
    result = check_imap(imap_settings(peer, port=port, security=security), options)
    assert result.code == "certificate_invalid"


def test_plaintext_login_disallowed_is_tls_required(dovecot, peer_options) -> None:
    result = check_imap(imap_settings(dovecot, port=dovecot.port, security="none"), peer_options)
    assert result.code == "tls_required"
    allowed = dataclasses.replace(peer_options, allow_plaintext_auth=True)
    assert check_imap(imap_settings(dovecot, port=dovecot.port, security="none"), allowed).ok


def test_silent_server_times_out(silent_server, peer_options) -> None:
    options = dataclasses.replace(peer_options, timeout=1.0)
    for security in ("ssl", "starttls"):
        settings = imap_settings(
            silent_server, port=silent_server.port, security=security, imap_host=silent_server.host
        )
        started = time.monotonic()
        result = check_imap(settings, options)
        assert result.code == "timeout", security
        assert time.monotonic() - started < 1.0 + 0.5


def test_guard_blocks_loopback_imap(dovecot, peer_options) -> None:
    options = dataclasses.replace(peer_options, allow_private_hosts=False)
    settings = imap_settings(dovecot, port=dovecot.ssl_port, security="ssl")
    assert check_imap(settings, options).code == "blocked_address"


def test_imap_port_allowlist(dovecot, peer_options) -> None:
    options = dataclasses.replace(peer_options, imap_ports=(993,))
    settings = imap_settings(dovecot, port=dovecot.ssl_port, security="ssl")
    assert check_imap(settings, options).code == "port_not_allowed"


def test_open_imap_is_logged_in(dovecot, peer_options) -> None:
    client = open_imap(imap_settings(dovecot, port=dovecot.ssl_port, security="ssl"), peer_options)
    try:
        info = client.select_folder("INBOX", readonly=True)
        assert b"EXISTS" in info
    finally:
        client.logout()


def test_open_imap_raises_connection_failed(dovecot, peer_options) -> None:
    settings = imap_settings(dovecot, port=dovecot.port, security="starttls", password="x")
    with pytest.raises(ConnectionFailed) as info:
        open_imap(settings, peer_options)
    assert info.value.code == "auth_failed"


SECRET = "Imap-Secret-Passw0rd-QRS"


def test_password_never_leaks(dovecot, peer_options, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    options = dataclasses.replace(peer_options, timeout=0.6)
    cases = [
        imap_settings(dovecot, port=dovecot.ssl_port, security="ssl", password=SECRET),
        imap_settings(dovecot, port=dovecot.port, security="starttls", password=SECRET),
        imap_settings(dovecot, port=dovecot.ssl_port, security="starttls", password=SECRET),
        imap_settings(dovecot, port=dovecot.port, security="ssl", password=SECRET),
    ]
    texts: list[str] = []
    for settings in cases:
        result = check_imap(settings, options)
        assert not result.ok
        texts += [repr(result), result.message, result.detail, repr(settings)]
        with pytest.raises(ConnectionFailed) as info:
            open_imap(settings, options)
        texts += [str(info.value), repr(info.value), repr(info.value.args), info.value.detail]
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        assert SECRET not in text
