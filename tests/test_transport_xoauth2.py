"""XOAUTH2 on SMTP (aiosmtpd) and IMAP (Dovecot) with tokens from the local OAuth provider.

The mail peers check each token by introspection against the provider, as a real provider's
servers would: no mocks between the transport and the token's state at the provider.
"""

from __future__ import annotations

import logging
import smtplib
import time
from dataclasses import replace
from typing import Any

import pytest

from flask_mailconnect import codes as errors
from flask_mailconnect.exceptions import ConnectionFailed
from flask_mailconnect.transport.imap import check_imap, open_imap
from flask_mailconnect.transport.settings import ServerSettings, TransportOptions
from flask_mailconnect.transport.smtp import check_smtp, open_smtp
from flask_mailconnect.transport.tester import test_connection
from tests.peers import MAILBOX_USER
from tests.peers.oauth import GOOGLE, MICROSOFT, mint_token
from tests.peers.settings import peer_settings

pytestmark = pytest.mark.peers


def _settings(smtp: Any, dovecot: Any | None, token: str, **changes: Any) -> ServerSettings:
    """The peers' mailbox with an OAuth token instead of a password."""
    fields = {"password": "", "oauth_token": token, **changes}
    return peer_settings(smtp, dovecot, host=smtp.host, **fields)


@pytest.mark.parametrize("flavour", [GOOGLE, MICROSOFT])
def test_smtp_xoauth2_with_a_valid_token_signs_in(
    smtp_starttls: Any, oauth_provider: Any, peer_options: TransportOptions, flavour: str
) -> None:
    # Microsoft's tokens are long: the AUTH line is far over aiosmtpd's 512-byte default.
    token = mint_token(oauth_provider, flavour=flavour)["access_token"]
    result = check_smtp(_settings(smtp_starttls, None, token), peer_options)
    assert result.ok, result
    assert smtp_starttls.auth_attempts == [("XOAUTH2", MAILBOX_USER)]


def test_smtp_xoauth2_sends_a_message_as_the_signed_in_user(
    smtp_ssl: Any, oauth_provider: Any, peer_options: TransportOptions
) -> None:
    token = mint_token(oauth_provider)["access_token"]
    client = open_smtp(_settings(smtp_ssl, None, token), peer_options)
    try:
        client.sendmail(MAILBOX_USER, ["bob@example.test"], b"Subject: hi\r\n\r\nhello\r\n")
    finally:
        client.quit()
    assert [m.login for m in smtp_ssl.messages] == [MAILBOX_USER]


@pytest.mark.parametrize("how", ["revoked", "expired", "unknown"])
def test_smtp_xoauth2_with_a_dead_token_is_token_rejected(
    smtp_starttls: Any, oauth_provider: Any, peer_options: TransportOptions, how: str
) -> None:
    token = mint_token(oauth_provider)["access_token"]
    if how == "revoked":
        oauth_provider.revoke_user(MAILBOX_USER)
    elif how == "expired":
        oauth_provider.expire_access_tokens(MAILBOX_USER)
    else:
        token = "ya29.not-a-token"
    result = check_smtp(_settings(smtp_starttls, None, token), peer_options)
    assert not result.ok
    assert result.code == errors.TOKEN_REJECTED
    assert "Sign in again" in result.message
    assert "expired or was revoked" in result.message
    # One attempt, and the connection was still usable after the error challenge (the peer
    # answered the empty line with 535 instead of timing out).
    assert smtp_starttls.auth_commands == 1
    assert result.elapsed < 3


def test_smtp_xoauth2_with_smtp_auth_disabled_names_microsoft_graph(
    smtp_starttls: Any, oauth_provider: Any, peer_options: TransportOptions
) -> None:
    user = smtp_starttls.auth_disabled_user
    token = mint_token(oauth_provider, email=user, flavour=MICROSOFT)["access_token"]
    settings = _settings(smtp_starttls, None, token, email=user, username=user)
    result = check_smtp(settings, peer_options)
    assert result.code == errors.SMTP_AUTH_DISABLED
    assert "Microsoft Graph" in result.message
    assert "connect with Microsoft and allow sending through Microsoft Graph" in result.message


def test_smtp_xoauth2_token_for_another_user_is_rejected(
    smtp_starttls: Any, oauth_provider: Any, peer_options: TransportOptions
) -> None:
    token = mint_token(oauth_provider, email="mallory@example.test")["access_token"]
    result = check_smtp(_settings(smtp_starttls, None, token), peer_options)
    assert result.code == errors.TOKEN_REJECTED


def test_smtp_xoauth2_without_xoauth2_on_offer_is_auth_unsupported(
    smtp_starttls: Any,
    oauth_provider: Any,
    peer_options: TransportOptions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A server that offers only password mechanisms never gets the token.
    original = smtplib.SMTP.ehlo

    def ehlo_without_xoauth2(self: smtplib.SMTP, name: str = "") -> Any:
        reply = original(self, name)
        if "auth" in self.esmtp_features:
            self.esmtp_features["auth"] = " PLAIN LOGIN"
        return reply

    monkeypatch.setattr(smtplib.SMTP, "ehlo", ehlo_without_xoauth2)
    token = mint_token(oauth_provider)["access_token"]
    result = check_smtp(_settings(smtp_starttls, None, token), peer_options)
    assert result.code == errors.AUTH_UNSUPPORTED
    assert smtp_starttls.auth_commands == 0


@pytest.mark.parametrize("flavour", [GOOGLE, MICROSOFT])
def test_imap_xoauth2_with_a_valid_token_signs_in(
    dovecot: Any, smtp_ssl: Any, oauth_provider: Any, peer_options: TransportOptions, flavour: str
) -> None:
    token = mint_token(oauth_provider, flavour=flavour)["access_token"]
    result = check_imap(_settings(smtp_ssl, dovecot, token), peer_options)
    assert result.ok, result


def test_imap_xoauth2_over_starttls(
    dovecot: Any, smtp_ssl: Any, oauth_provider: Any, peer_options: TransportOptions
) -> None:
    token = mint_token(oauth_provider)["access_token"]
    settings = _settings(smtp_ssl, dovecot, token, imap_port=dovecot.port, imap_security="starttls")
    client = open_imap(settings, peer_options)
    try:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] >= 0
    finally:
        client.logout()


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_imap_xoauth2_with_a_dead_token_is_token_rejected(
    dovecot: Any, smtp_ssl: Any, oauth_provider: Any, peer_options: TransportOptions, how: str
) -> None:
    token = mint_token(oauth_provider)["access_token"]
    if how == "revoked":
        oauth_provider.revoke_user(MAILBOX_USER)
    else:
        oauth_provider.expire_access_tokens(MAILBOX_USER)
    with pytest.raises(ConnectionFailed) as caught:
        open_imap(_settings(smtp_ssl, dovecot, token), peer_options)
    assert caught.value.code == errors.TOKEN_REJECTED
    assert "Sign in again" in caught.value.message


def test_imap_after_a_rejected_token_the_next_login_is_not_delayed(
    dovecot: Any, smtp_ssl: Any, oauth_provider: Any, peer_options: TransportOptions
) -> None:
    # Dovecot's anvil auth penalty would delay this login by seconds after a failure.
    bad = _settings(smtp_ssl, dovecot, "ya29.revoked")
    assert check_imap(bad, peer_options).code == errors.TOKEN_REJECTED
    token = mint_token(oauth_provider)["access_token"]
    started = time.monotonic()
    assert check_imap(_settings(smtp_ssl, dovecot, token), peer_options).ok
    assert time.monotonic() - started < 1.5


def test_password_logins_still_work_next_to_xoauth2(
    dovecot: Any, smtp_starttls: Any, peer_options: TransportOptions
) -> None:
    settings = _settings(smtp_starttls, dovecot, "", password=dovecot.password)
    settings = replace(settings, oauth_token=None)
    report = test_connection(settings, peer_options)
    assert report.ok, report


def test_test_connection_with_a_token_checks_both_in_parallel(
    dovecot: Any, smtp_starttls: Any, oauth_provider: Any, peer_options: TransportOptions
) -> None:
    token = mint_token(oauth_provider, flavour=MICROSOFT)["access_token"]
    report = test_connection(_settings(smtp_starttls, dovecot, token), peer_options)
    assert report.ok, report
    assert report.smtp.ok and report.imap is not None and report.imap.ok
    assert smtp_starttls.auth_attempts == [("XOAUTH2", MAILBOX_USER)]


def test_test_connection_with_a_revoked_token_says_sign_in_again_for_both(
    dovecot: Any, smtp_starttls: Any, oauth_provider: Any, peer_options: TransportOptions
) -> None:
    token = mint_token(oauth_provider)["access_token"]
    oauth_provider.revoke_user(MAILBOX_USER)
    report = test_connection(_settings(smtp_starttls, dovecot, token), peer_options)
    assert [r.code for r in report.results] == [errors.TOKEN_REJECTED, errors.TOKEN_REJECTED]
    assert all("Sign in again" in r["message"] for r in report.as_dict()["results"])  # type: ignore[index,union-attr]


def test_token_never_reaches_logs_or_results(
    dovecot: Any,
    smtp_starttls: Any,
    oauth_provider: Any,
    peer_options: TransportOptions,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = mint_token(oauth_provider)["access_token"]
    bad = mint_token(oauth_provider, email="other@example.test")["access_token"]
    caplog.set_level(logging.DEBUG)
    reports = [
        test_connection(_settings(smtp_starttls, dovecot, token), peer_options)
        for token in (good, bad)
    ]
    assert reports[0].ok and not reports[1].ok
    settings = _settings(smtp_starttls, dovecot, good)
    assert good not in repr(settings)
    for token in (good, bad):
        assert token not in caplog.text
        assert token[:24] not in caplog.text
        for report in reports:
            assert token not in repr(report)
            assert token not in str(report.as_dict())
            for result in report.results:
                assert token not in result.detail
    # The base64 form would leak the token just as well.
    from flask_mailconnect.transport.smtp import xoauth2_string

    assert xoauth2_string(MAILBOX_USER, good)[:60] not in caplog.text
