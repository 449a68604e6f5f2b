"""test_connection: SMTP and IMAP checked in parallel, one report."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from flask_mailconnect.transport import tester
from flask_mailconnect.transport.settings import (
    Protocol,
    ProtocolResult,
    ServerSettings,
    TransportOptions,
)
from flask_mailconnect.transport.tester import test_connection as run_test_connection
from tests.peers.raw import SilentServer
from tests.peers.settings import peer_settings

pytestmark = pytest.mark.peers


def test_silent_smtp_and_imap_take_one_timeout_not_two(peer_options) -> None:
    smtp, imap = SilentServer(), SilentServer()
    try:
        settings = peer_settings(smtp, imap, host=smtp.host)
        options = dataclasses.replace(peer_options, timeout=1.0)
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
    report = run_test_connection(peer_settings(smtp_starttls, dovecot), peer_options)
    assert report.smtp.ok and report.imap is not None and report.imap.ok
    assert report.ok
    assert [r["protocol"] for r in report.as_dict()["results"]] == ["smtp", "imap"]


def test_one_failing_protocol_fails_the_report(smtp_starttls, dovecot, peer_options) -> None:
    # Dovecot's STARTTLS port, with SSL/TLS chosen.
    settings = peer_settings(smtp_starttls, dovecot, imap_port=dovecot.port)
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
    report = run_test_connection(peer_settings(smtp_ssl), peer_options)
    assert report.imap is None
    assert report.smtp.ok and report.ok
    assert len(report.results) == 1


@pytest.mark.parametrize("crashing", [Protocol.SMTP, Protocol.IMAP], ids=["smtp", "imap"])
def test_a_crashing_check_reports_its_own_protocol(monkeypatch, caplog, crashing) -> None:
    """One check runs in a thread, the other in the caller: whichever breaks its promise not
    to raise is reported as its own protocol's ``protocol_error`` (not the other's), and the
    other's result still comes back."""

    def crashing_check(settings: ServerSettings, options: TransportOptions) -> ProtocolResult:
        raise RuntimeError("a check broke its promise not to raise")

    def ok(protocol: Protocol) -> Any:
        def check(settings: ServerSettings, options: TransportOptions) -> ProtocolResult:
            return ProtocolResult(protocol, ok=True, code="ok", message="")

        return check

    imap = crashing_check if crashing is Protocol.IMAP else ok(Protocol.IMAP)
    smtp = crashing_check if crashing is Protocol.SMTP else ok(Protocol.SMTP)
    monkeypatch.setattr(tester, "check_imap", imap)
    monkeypatch.setattr("flask_mailconnect.transport.smtp.check_smtp", smtp)  # read per test
    settings = ServerSettings(
        email="a@example.test",
        username="a@example.test",
        password="pw",
        smtp_host="smtp.example.test",
        smtp_port=465,
        smtp_security="ssl",
        imap_host="imap.example.test",
        imap_port=993,
        imap_security="ssl",
    )
    report = run_test_connection(settings, TransportOptions())
    assert report.imap is not None
    broken, fine = (
        (report.imap, report.smtp) if crashing is Protocol.IMAP else (report.smtp, report.imap)
    )
    assert (broken.protocol, broken.ok, broken.code) == (crashing, False, "protocol_error")
    assert fine.ok and not report.ok
    assert f"{crashing.name} check crashed: RuntimeError" in caplog.text
