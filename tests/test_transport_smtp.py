"""SMTP checks against real aiosmtpd servers (STARTTLS, implicit TLS, plaintext) on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from flask_mailconnect.exceptions import ConnectionFailed
from flask_mailconnect.providers import build_catalog
from flask_mailconnect.transport.settings import ServerSettings
from flask_mailconnect.transport.smtp import check_smtp, open_smtp
from tests.peers import require_peer
from tests.peers.settings import peer_settings

pytestmark = pytest.mark.peers


@pytest.mark.parametrize("server", ["smtp_starttls", "smtp_ssl"])
def test_good_credentials_connect(server: str, request, peer_options) -> None:
    peer = request.getfixturevalue(server)
    result = check_smtp(peer_settings(peer), peer_options)
    assert (result.ok, result.code) == (True, "ok"), result
    assert peer.auth_attempts == [("PLAIN", peer.user)]


@pytest.mark.parametrize("server", ["smtp_starttls", "smtp_ssl"])
def test_bad_password_is_auth_failed_after_one_attempt(server: str, request, peer_options) -> None:
    peer = request.getfixturevalue(server)
    result = check_smtp(peer_settings(peer, password="wrong-password"), peer_options)
    assert (result.ok, result.code) == (False, "auth_failed")
    assert result.detail == "SMTP 535"
    # One failed login, not one per advertised mechanism (lockout policies count them).
    assert len(peer.auth_attempts) == 1


def test_gmail_bad_password_says_app_password(smtp_starttls, peer_options) -> None:
    # The transport words no provider advice itself: the provider's hints travel with the
    # settings (the extension adds them from the catalogue).
    hints = build_catalog({}).hints_for("google")
    settings = peer_settings(smtp_starttls, password="wrong", provider="google", hints=hints)
    result = check_smtp(settings, peer_options)
    assert result.code == "auth_failed"
    assert "app password" in result.message


def test_microsoft_smtp_auth_disabled_is_its_own_code(smtp_ssl, peer_options) -> None:
    settings = peer_settings(smtp_ssl, username=smtp_ssl.auth_disabled_user, provider="microsoft")
    result = check_smtp(settings, peer_options)
    assert result.code == "smtp_auth_disabled"
    assert "SmtpClientAuthentication" not in result.message  # our words, not the server's
    assert "SMTP AUTH" in result.message


def test_starttls_on_implicit_tls_port_is_wrong_security(smtp_ssl, peer_options) -> None:
    options = dataclasses.replace(peer_options, timeout=1.0)
    started = time.monotonic()
    result = check_smtp(peer_settings(smtp_ssl, smtp_security="starttls"), options)
    elapsed = time.monotonic() - started
    assert result.code == "wrong_security_for_port"
    assert elapsed < 1.0 + 0.5
    assert smtp_ssl.auth_attempts == []


def test_starttls_refused_with_454_is_tls_unavailable(smtp_starttls, peer_options) -> None:
    smtp_starttls.starttls_reply = "454 4.7.0 TLS not available due to temporary reason"
    result = check_smtp(peer_settings(smtp_starttls), peer_options)
    assert (result.ok, result.code) == (False, "tls_unavailable"), result
    assert result.detail == "STARTTLS 454"
    assert not result.retryable
    assert smtp_starttls.auth_commands == 0  # no AUTH, not even a refused one


#: Not ASCII: smtplib's own AUTH would raise UnicodeEncodeError on it.
UTF8_PASSWORD = "pässwörd✓"


@pytest.fixture(scope="session")
def smtp_utf8_server(peer_certs) -> Iterator[Any]:
    """A second aiosmtpd (STARTTLS) whose mailbox password is not ASCII."""
    try:
        from tests.peers.smtp_server import start_smtp
    except ImportError as exc:  # aiosmtpd is a test extra
        require_peer("aiosmtpd", str(exc))
    peer, controller = start_smtp(
        "starttls",
        ca_file=peer_certs.ca_file,
        context=peer_certs.server_context(trusted=True),
        password=UTF8_PASSWORD,
    )
    try:
        yield peer
    finally:
        controller.stop()


@pytest.fixture
def smtp_utf8(smtp_utf8_server) -> Any:
    smtp_utf8_server.reset()
    return smtp_utf8_server


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_non_ascii_password_is_sent_as_utf8(mechanism: str, smtp_utf8, peer_options) -> None:
    assert not smtp_utf8.password.isascii()
    # The peer offers only the mechanism under test (the client knows both).
    smtp_utf8.auth_mechanisms = (mechanism,)
    result = check_smtp(peer_settings(smtp_utf8), peer_options)
    assert (result.ok, result.code) == (True, "ok"), result
    assert smtp_utf8.auth_attempts == [(mechanism, smtp_utf8.user)]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_wrong_non_ascii_password_is_auth_failed_not_retryable(
    mechanism: str, smtp_utf8, peer_options
) -> None:
    smtp_utf8.auth_mechanisms = (mechanism,)
    result = check_smtp(peer_settings(smtp_utf8, password="fälsch✗"), peer_options)
    assert (result.ok, result.code, result.retryable) == (False, "auth_failed", False), result
    assert result.detail == "SMTP 535"
    assert len(smtp_utf8.auth_attempts) == 1


def test_ssl_on_starttls_port_is_wrong_security(smtp_starttls, peer_options) -> None:
    result = check_smtp(peer_settings(smtp_starttls, smtp_security="ssl"), peer_options)
    assert result.code == "wrong_security_for_port"
    assert smtp_starttls.auth_attempts == []


def test_silent_server_times_out_within_the_timeout(silent_server, peer_options) -> None:
    options = dataclasses.replace(peer_options, timeout=1.0)
    for security in ("starttls", "ssl", "none"):
        settings = peer_settings(silent_server, host=silent_server.host, smtp_security=security)
        started = time.monotonic()
        result = check_smtp(settings, options)
        elapsed = time.monotonic() - started
        assert (result.ok, result.code) == (False, "timeout"), security
        assert 0.4 < elapsed < 1.0 + 0.5, (security, elapsed)


def test_untrusted_certificate_is_refused(smtp_untrusted, peer_options) -> None:
    result = check_smtp(peer_settings(smtp_untrusted), peer_options)
    assert result.code == "certificate_invalid"
    assert smtp_untrusted.auth_attempts == []


def test_starttls_certificate_not_trusted_without_the_ca(smtp_starttls, peer_options) -> None:
    # Same server, but the client trusts only the system store: verification is really on.
    options = dataclasses.replace(peer_options, ca_file=None)
    result = check_smtp(peer_settings(smtp_starttls), options)
    assert result.code == "certificate_invalid"
    assert smtp_starttls.auth_attempts == []


def test_plaintext_auth_disallowed_is_tls_required_and_sends_no_auth(
    smtp_plain, peer_options
) -> None:
    result = check_smtp(peer_settings(smtp_plain), peer_options)
    assert (result.ok, result.code) == (False, "tls_required")
    assert smtp_plain.connections == 1  # it did connect...
    assert smtp_plain.auth_attempts == []  # ...but never sent AUTH


def test_plaintext_auth_when_explicitly_allowed(smtp_plain, peer_options) -> None:
    options = dataclasses.replace(peer_options, allow_plaintext_auth=True)
    result = check_smtp(peer_settings(smtp_plain), options)
    assert result.ok, result
    assert smtp_plain.auth_attempts == [("PLAIN", smtp_plain.user)]


def test_starttls_required_but_not_offered_never_falls_back(smtp_plain, peer_options) -> None:
    result = check_smtp(peer_settings(smtp_plain, smtp_security="starttls"), peer_options)
    assert result.code == "tls_unavailable"
    assert smtp_plain.auth_attempts == []


def test_auth_offered_only_after_tls_is_tls_required(smtp_starttls, peer_options) -> None:
    options = dataclasses.replace(peer_options, allow_plaintext_auth=True)
    result = check_smtp(peer_settings(smtp_starttls, smtp_security="none"), options)
    assert result.code == "tls_required"
    assert smtp_starttls.auth_attempts == []


def test_refused_port(peer_options) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        settings = ServerSettings(
            email="a@example.test",
            username="a",
            password="pw",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="ssl",
        )
        assert check_smtp(settings, peer_options).code == "refused"


def test_open_smtp_returns_an_authenticated_connection(smtp_ssl, peer_options) -> None:
    client = open_smtp(peer_settings(smtp_ssl), peer_options)
    try:
        # Not kept on the object after AUTH (smtplib.login() would store it as .password).
        assert getattr(client, "password", "") == ""
        assert smtp_ssl.password not in repr(vars(client))
        client.sendmail(smtp_ssl.user, ["carol@example.test"], b"Subject: hi\r\n\r\nhello\r\n")
    finally:
        client.quit()
    [message] = smtp_ssl.messages
    assert message.rcpt_tos == ["carol@example.test"]
    assert message.login == smtp_ssl.user


def test_open_smtp_raises_connection_failed(smtp_ssl, peer_options) -> None:
    with pytest.raises(ConnectionFailed) as info:
        open_smtp(peer_settings(smtp_ssl, password="nope"), peer_options)
    assert info.value.code == "auth_failed"
    assert info.value.__cause__ is None and info.value.__suppress_context__


SECRET = "Sup3r-Secret-Passw0rd-XYZ"


def test_password_never_leaks(
    smtp_starttls, smtp_ssl, smtp_plain, silent_server, peer_options, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    cases = [
        peer_settings(smtp_starttls, password=SECRET),
        peer_settings(smtp_ssl, password=SECRET),
        peer_settings(smtp_ssl, smtp_security="starttls", password=SECRET),
        peer_settings(smtp_starttls, smtp_security="ssl", password=SECRET),
        peer_settings(smtp_plain, password=SECRET),
        peer_settings(
            smtp_plain, password=SECRET, smtp_host=silent_server.host, smtp_port=silent_server.port
        ),
    ]
    options = dataclasses.replace(peer_options, timeout=0.6)
    texts: list[str] = []
    for settings in cases:
        result = check_smtp(settings, options)
        assert not result.ok
        texts += [repr(result), result.message, result.detail, repr(settings)]
        with pytest.raises(ConnectionFailed) as info:
            open_smtp(settings, options)
        texts += [str(info.value), repr(info.value), repr(info.value.args), info.value.detail]
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    import base64

    encoded = base64.b64encode(f"\0{smtp_starttls.user}\0{SECRET}".encode()).decode()
    for text in texts:
        assert SECRET not in text
        assert encoded not in text
    assert caplog.records  # the checks did log something, and it was clean
