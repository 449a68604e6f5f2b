"""mailconnect.sending(): many messages over one authenticated connection, reconnecting when the
server closes it, reporting per message, never sending a message twice (real aiosmtpd)."""

from __future__ import annotations

import email
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from flask_mailconnect import (
    DeliveryUnknownError,
    InvalidMessage,
    MailConnect,
    PermanentSendError,
    TransientSendError,
    message_sent,
)
from flask_mailconnect.models import utcnow
from tests.peers.oauth import CLIENT_ID
from tests.sending import make_account, message

pytestmark = pytest.mark.peers


def numbered(i: int) -> Any:
    return message(to=f"rcpt{i}@example.com", Subject=f"Message {i}")


def subjects(peer: Any) -> list[str]:
    return [str(email.message_from_bytes(m.data)["Subject"]) for m in peer.messages]


@pytest.mark.parametrize("close_reply", ["421 4.7.0 Too many messages, closing", None])
def test_200_messages_with_a_server_closing_after_every_50(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any,
    close_reply: str | None,
) -> None:  # fmt: skip
    account = make_account(db, smtp_starttls)
    smtp_starttls.close_after = 50
    smtp_starttls.close_reply = close_reply  # 421, or the connection just goes away
    sent: list[str] = []
    receiver = lambda s, **kw: sent.append(kw["result"].message_id)  # noqa: E731
    with message_sent.connected_to(receiver, peer_app), mailconnect.sending(account) as conn:
        for i in range(200):
            conn.send(numbered(i))
    assert subjects(smtp_starttls) == [f"Message {i}" for i in range(200)]  # once, in order
    assert len(smtp_starttls.auth_attempts) == 4 == conn.connections  # one AUTH per connection
    assert [o.ok for o in conn.results] == [True] * 200
    assert [o.index for o in conn.results] == list(range(200))
    assert sent == [o.message_id for o in conn.results]
    assert account.last_sent_at is not None


def test_per_message_failures_are_reported_and_the_session_goes_on(
    peer_app: Flask,
    mailconnect: MailConnect,
    db: Any,
    smtp_starttls: Any,
) -> None:
    account = make_account(db, smtp_starttls)
    with mailconnect.sending(account) as conn:
        conn.send(numbered(0))
        smtp_starttls.inject("RCPT", reply="550 5.1.1 No such user")
        with pytest.raises(PermanentSendError) as refused:
            conn.send(numbered(1))
        with pytest.raises(InvalidMessage):
            conn.send(message(to="not an address"))
        smtp_starttls.inject("END", drop=True, deliver=True)
        with pytest.raises(DeliveryUnknownError):
            conn.send(numbered(3))
        conn.send(numbered(4))  # a new connection; message 3 is not sent again
    assert refused.value.refused == {"rcpt1@example.com": (550, "5.1.1 No such user")}
    assert subjects(smtp_starttls) == ["Message 0", "Message 3", "Message 4"]
    assert [o.ok for o in conn.results] == [True, False, False, False, True]
    assert [type(o.error).__name__ for o in conn.results if o.error] == [
        "PermanentSendError", "InvalidMessage", "DeliveryUnknownError",
    ]  # fmt: skip
    assert len(smtp_starttls.auth_attempts) == 2


def test_a_421_at_mail_on_a_fresh_connection_is_not_retried_forever(
    peer_app: Flask,
    mailconnect: MailConnect,
    db: Any,
    smtp_starttls: Any,
) -> None:
    account = make_account(db, smtp_starttls)
    with mailconnect.sending(account) as conn:
        conn.send(numbered(0))
        smtp_starttls.inject("MAIL", reply="421 4.3.2 Shutting down", times=2)
        with pytest.raises(TransientSendError):
            conn.send(numbered(1))  # reused connection: reconnect once, 421 again: give up
        conn.send(numbered(2))
    assert subjects(smtp_starttls) == ["Message 0", "Message 2"]
    assert len(smtp_starttls.auth_attempts) == 3


def test_reconnects_before_the_oauth_token_expires(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any,
    oauth_provider: Any,
) -> None:  # fmt: skip
    from tests.oauth_flows import provider_config

    peer_app.config["MAILCONNECT_PROVIDERS"] = provider_config(oauth_provider)
    tokens = oauth_provider.issue_token(smtp_starttls.user, client_id=CLIENT_ID)
    account = make_account(
        db, smtp_starttls, provider="google", auth_method="oauth2", password=None,
        access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
        token_expires_at=utcnow() + timedelta(hours=1), token_scopes=tokens["scope"],
    )  # fmt: skip
    with mailconnect.sending(account) as conn:
        conn.send(numbered(0))
        conn.send(numbered(1))
        account.token_expires_at = utcnow() + timedelta(minutes=1)  # nearly expired
        db.session.commit()
        conn.send(numbered(2))
        conn.send(numbered(3))
    assert subjects(smtp_starttls) == [f"Message {i}" for i in range(4)]
    assert [m for m, _ in smtp_starttls.auth_attempts] == ["XOAUTH2", "XOAUTH2"]
    assert conn.connections == 2
    assert account.token_expires_at is not None
    assert account.token_expires_at > utcnow() + timedelta(minutes=30)  # refreshed


def test_close_keeps_a_later_login_failure_of_the_session(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any
) -> None:
    from flask_mailconnect import AccountNeedsReconnectError

    account = make_account(db, smtp_starttls)
    with mailconnect.sending(account) as conn:
        conn.send(numbered(0))
        # The server closes the connection; the reconnect's login is refused.
        smtp_starttls.inject("MAIL", reply="421 4.3.2 Shutting down")
        smtp_starttls.inject("AUTH", reply="535 5.7.8 Authentication credentials invalid")
        with pytest.raises(AccountNeedsReconnectError):
            conn.send(numbered(1))
    assert account.status == "needs_reconnect" and account.last_error_code == "auth_failed"
    assert account.last_sent_at is not None  # message 0 was sent


def test_unexpected_errors_are_wrapped_and_reported_per_message(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import smtplib

    from flask_mailconnect import sending

    real_prepare, real_submit = sending.prepare_message, sending.submit

    def prepare(msg: Any, **kw: Any) -> Any:
        if msg["Subject"] == "Message 1":
            raise UnicodeEncodeError("ascii", "\udcff", 0, 1, "surrogates not allowed")
        return real_prepare(msg, **kw)

    def submit(client: Any, sender: str, rcpts: Any, data: bytes, **kw: Any) -> Any:
        if b"Subject: Message 2" in data:
            raise smtplib.SMTPNotSupportedError("SMTPUTF8 not supported by server")
        return real_submit(client, sender, rcpts, data, **kw)

    monkeypatch.setattr(sending, "prepare_message", prepare)
    monkeypatch.setattr(sending, "submit", submit)
    account = make_account(db, smtp_starttls)
    with mailconnect.sending(account) as conn:
        conn.send(numbered(0))
        with pytest.raises(InvalidMessage):
            conn.send(numbered(1))
        with pytest.raises(PermanentSendError) as unsupported:
            conn.send(numbered(2))
        conn.send(numbered(3))
    assert unsupported.value.code == "smtp_not_supported" and not unsupported.value.retryable
    assert [o.ok for o in conn.results] == [True, False, False, True]
    assert [o.index for o in conn.results] == [0, 1, 2, 3]
    assert subjects(smtp_starttls) == ["Message 0", "Message 3"]
