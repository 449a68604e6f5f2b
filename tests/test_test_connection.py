"""test_connection: SMTP and IMAP checked in parallel, one report."""

from __future__ import annotations

import time

import pytest

from flask_mailconnect.transport.settings import (
    Protocol,
    ProtocolResult,
    ServerSettings,
    TransportOptions,
)
from flask_mailconnect.transport.tester import _in_thread
from flask_mailconnect.transport.tester import test_connection as run_test_connection
from tests.peers.raw import SilentServer

pytestmark = pytest.mark.peers


def test_silent_smtp_and_imap_take_one_timeout_not_two(peer_certs) -> None:
    smtp, imap = SilentServer(), SilentServer()
    try:
        settings = ServerSettings(
            email="a@example.test",
            username="a@example.test",
            password="pw",
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_security="ssl",
            imap_host=imap.host,
            imap_port=imap.port,
            imap_security="ssl",
        )
        options = TransportOptions(
            timeout=1.0,
            allow_private_hosts=True,
            smtp_ports=None,
            imap_ports=None,
            ca_file=peer_certs.ca_file,
        )
        started = time.monotonic()
        report = run_test_connection(settings, options)
        elapsed = time.monotonic() - started
    finally:
        smtp.close()
        imap.close()
    assert report.smtp.code == "timeout"
    assert report.imap is not None and report.imap.code == "timeout"
    assert not report.ok
    # Sequential checks would need 2 s; in parallel it is about one timeout.
    assert 0.9 < elapsed < 1.5, elapsed


def test_both_protocols_ok(smtp_starttls, dovecot, peer_options) -> None:
    settings = ServerSettings(
        email=smtp_starttls.user,
        username=smtp_starttls.user,
        password=smtp_starttls.password,
        smtp_host="localhost",
        smtp_port=smtp_starttls.port,
        smtp_security="starttls",
        imap_host="localhost",
        imap_port=dovecot.ssl_port,
        imap_security="ssl",
    )
    report = run_test_connection(settings, peer_options)
    assert report.smtp.ok and report.imap is not None and report.imap.ok
    assert report.ok
    assert [r["protocol"] for r in report.as_dict()["results"]] == ["smtp", "imap"]


def test_one_failing_protocol_fails_the_report(smtp_starttls, dovecot, peer_options) -> None:
    settings = ServerSettings(
        email=smtp_starttls.user,
        username=smtp_starttls.user,
        password=smtp_starttls.password,
        smtp_host="localhost",
        smtp_port=smtp_starttls.port,
        smtp_security="starttls",
        imap_host="localhost",
        imap_port=dovecot.port,  # the STARTTLS port, with SSL/TLS chosen
        imap_security="ssl",
    )
    report = run_test_connection(settings, peer_options)
    assert report.smtp.ok
    assert report.imap is not None and report.imap.code == "wrong_security_for_port"
    assert not report.ok
    assert report.as_dict()["results"][1] == {
        "protocol": "imap",
        "ok": False,
        "code": "wrong_security_for_port",
        "message": report.imap.message,
    }


def test_send_only_account_has_no_imap_result(smtp_ssl, peer_options) -> None:
    settings = ServerSettings(
        email=smtp_ssl.user,
        username=smtp_ssl.user,
        password=smtp_ssl.password,
        smtp_host="localhost",
        smtp_port=smtp_ssl.port,
        smtp_security="ssl",
    )
    report = run_test_connection(settings, peer_options)
    assert report.imap is None
    assert report.smtp.ok and report.ok
    assert len(report.results) == 1


def _crashing_check(settings: ServerSettings, options: TransportOptions) -> ProtocolResult:
    raise RuntimeError("a check broke its promise not to raise")


@pytest.mark.parametrize("protocol", [Protocol.SMTP, Protocol.IMAP])
def test_a_crashing_threaded_check_reports_its_own_protocol(protocol: Protocol) -> None:
    settings = ServerSettings(
        email="a@example.test",
        username="a@example.test",
        password="pw",
        smtp_host="smtp.example.test",
        smtp_port=465,
        smtp_security="ssl",
    )
    wait = _in_thread(_crashing_check, protocol, settings, TransportOptions())
    result = wait()
    assert (result.protocol, result.ok, result.code) == (protocol, False, "protocol_error")
