"""Sending through Microsoft Graph against a local Graph over real TLS (test CA)."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest

from flask_mailconnect import codes as errors
from flask_mailconnect.exceptions import ConnectionFailed
from flask_mailconnect.transport.graph import check_graph, send_via_graph
from tests.peers import MAILBOX_USER
from tests.peers.oauth import CLIENT_ID, MICROSOFT

pytestmark = pytest.mark.peers

MAIL_SEND = "openid email offline_access https://graph.microsoft.com/Mail.Send"


def _token(oauth: Any, scope: str = MAIL_SEND, email: str = MAILBOX_USER) -> str:
    return oauth.issue_token(email, client_id=CLIENT_ID, flavour=MICROSOFT, scope=scope)[
        "access_token"
    ]


def _message() -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = MAILBOX_USER
    message["To"] = "bob@example.test"
    message["Subject"] = "Quarterly report – draft"
    message.set_content("Hello Bob,\nthe draft is attached.\n")
    return message.as_bytes()


def _send(graph: Any, token: str, ca_file: str, **kwargs: Any) -> None:
    send_via_graph(
        kwargs.pop("body", _message()),
        access_token=token,
        graph_url=kwargs.pop("graph_url", graph.url),
        timeout=5,
        ca_file=ca_file,
        allow_private_hosts=True,  # the local Graph listens on loopback
    )


def test_send_delivers_the_exact_mime_message(
    graph: Any, oauth_provider: Any, peer_certs: Any
) -> None:
    body = _message()
    _send(graph, _token(oauth_provider), peer_certs.ca_file, body=body)
    assert graph.sent == [{"user": MAILBOX_USER, "mime": body}]
    assert graph.requests == [("POST", "/v1.0/me/sendMail")]


def test_revoked_token_is_token_rejected(graph: Any, oauth_provider: Any, peer_certs: Any) -> None:
    token = _token(oauth_provider)
    oauth_provider.revoke_user(MAILBOX_USER)
    with pytest.raises(ConnectionFailed) as caught:
        _send(graph, token, peer_certs.ca_file)
    assert caught.value.code == errors.TOKEN_REJECTED
    assert "Sign in again" in caught.value.message
    assert not caught.value.retryable
    assert graph.sent == []


def test_token_without_mail_send_is_graph_send_denied(
    graph: Any, oauth_provider: Any, peer_certs: Any
) -> None:
    token = _token(oauth_provider, scope="openid email https://graph.microsoft.com/User.Read")
    with pytest.raises(ConnectionFailed) as caught:
        _send(graph, token, peer_certs.ca_file)
    assert caught.value.code == errors.GRAPH_SEND_DENIED
    assert "Mail.Send" in caught.value.message
    assert "Sign in again and allow sending" in caught.value.message
    assert "ErrorAccessDenied" in caught.value.detail
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("status", "code", "retry_after", "seconds"),
    [
        (429, "ApplicationThrottled", "7", 7.0),
        (503, "ServiceNotAvailable", "30", 30.0),
        (503, "ServiceNotAvailable", None, None),
    ],
)
def test_throttling_is_retryable_and_carries_retry_after(
    graph: Any,
    oauth_provider: Any,
    peer_certs: Any,
    status: int,
    code: str,
    retry_after: str | None,
    seconds: float | None,
) -> None:
    graph.queue_failure(status, code, retry_after)
    with pytest.raises(ConnectionFailed) as caught:
        _send(graph, _token(oauth_provider), peer_certs.ca_file)
    assert caught.value.code == errors.GRAPH_THROTTLED
    assert caught.value.retryable
    assert caught.value.retry_after == seconds
    if seconds is not None:
        assert f"retry after {seconds:g} s" in caught.value.detail
    # The next attempt goes through.
    _send(graph, _token(oauth_provider), peer_certs.ca_file)
    assert len(graph.sent) == 1


def test_other_client_errors_are_permanent(
    graph: Any, oauth_provider: Any, peer_certs: Any
) -> None:
    graph.queue_failure(400, "ErrorInvalidRecipients")
    with pytest.raises(ConnectionFailed) as caught:
        _send(graph, _token(oauth_provider), peer_certs.ca_file)
    assert caught.value.code == errors.GRAPH_REJECTED
    assert not caught.value.retryable
    # Graph's own wording stays out of the message shown to people.
    assert "recipient isn't valid" not in caught.value.message


def test_redirects_are_never_followed(graph: Any, oauth_provider: Any, peer_certs: Any) -> None:
    graph.redirect_to = "https://attacker.example/collect"
    with pytest.raises(ConnectionFailed) as caught:
        _send(graph, _token(oauth_provider), peer_certs.ca_file)
    assert caught.value.code == errors.PROTOCOL_ERROR
    assert graph.requests == [("POST", "/v1.0/me/sendMail")]


def test_an_untrusted_certificate_is_refused(
    graph: Any, oauth_provider: Any, untrusted_tls_server: Any
) -> None:
    url = f"https://localhost:{untrusted_tls_server.port}/v1.0"
    with pytest.raises(ConnectionFailed) as caught:
        _send(graph, _token(oauth_provider), None, graph_url=url)
    assert caught.value.code == errors.CERTIFICATE_INVALID


def test_a_silent_graph_times_out(graph: Any, oauth_provider: Any, silent_server: Any) -> None:
    url = f"https://127.0.0.1:{silent_server.port}/v1.0"
    with pytest.raises(ConnectionFailed) as caught:
        send_via_graph(
            _message(),
            access_token=_token(oauth_provider),
            graph_url=url,
            timeout=0.5,
            ca_file=None,
            allow_private_hosts=True,
        )
    assert caught.value.code == errors.TIMEOUT
    assert caught.value.retryable


def test_check_graph_ok_and_token_rejected(
    graph: Any, oauth_provider: Any, peer_certs: Any
) -> None:
    token = _token(oauth_provider)
    result = check_graph(token, graph.url, 5, peer_certs.ca_file, allow_private_hosts=True)
    assert result.ok, result
    oauth_provider.revoke_user(MAILBOX_USER)
    result = check_graph(token, graph.url, 5, peer_certs.ca_file, allow_private_hosts=True)
    assert result.code == errors.TOKEN_REJECTED
    assert "Sign in again" in result.message


def test_token_never_logged(
    graph: Any, oauth_provider: Any, peer_certs: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = _token(oauth_provider)
    caplog.set_level(logging.DEBUG)
    _send(graph, token, peer_certs.ca_file)
    graph.queue_failure(403, "ErrorAccessDenied")
    with pytest.raises(ConnectionFailed) as caught:
        _send(graph, token, peer_certs.ca_file)
    assert token not in caplog.text
    assert token not in str(caught.value) + caught.value.detail
