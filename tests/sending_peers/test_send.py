"""mailconnect.send(): one message through an account, against real aiosmtpd and Dovecot peers
with injected faults. The server's delivered list is the judge of "nothing sent twice"."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask

from flask_mailconnect import (
    AccountNeedsReconnectError,
    AccountStatus,
    DeliveryUnknownError,
    InactiveAccountError,
    InvalidMessage,
    MailAccount,
    MailConnect,
    PermanentSendError,
    PermissionDenied,
    SendError,
    TransientSendError,
    account_needs_reconnect,
    message_sent,
)
from flask_mailconnect.models import utcnow
from tests.hostapp import User
from tests.sending import (
    imap_login,
    make_account,
    message,
    parsed,
    sent_messages,
)

pytestmark = pytest.mark.peers


@pytest.fixture
def account(peer_app: Flask, db: Any, smtp_starttls: Any) -> MailAccount:
    return make_account(db, smtp_starttls)


def test_send_sets_from_date_message_id_and_strips_bcc(
    peer_app: Flask, mailconnect: MailConnect, db: Any, account: MailAccount, smtp_starttls: Any
) -> None:
    seen: list[dict[str, Any]] = []
    msg = message(Cc="carol@example.org, BOB@example.com", Bcc="dave@example.net")
    with message_sent.connected_to(lambda sender, **kw: seen.append(kw), peer_app):
        result = mailconnect.send(msg, account=account)
    [delivered] = smtp_starttls.messages
    assert delivered.rcpt_tos == ["bob@example.com", "carol@example.org", "dave@example.net"]
    assert delivered.mail_from == account.email
    sent = parsed(delivered.data)
    assert sent["From"] == f"Alice Example <{account.email}>"
    assert sent["Bcc"] is None and b"dave@" not in delivered.data
    assert sent["Date"] is not None
    assert sent["Message-ID"] == result.message_id and result.message_id.endswith("@example.test>")
    assert result.accepted == delivered.rcpt_tos and result.refused == {}
    assert result.via == "smtp" and result.sent_copy is None  # send-only account: no IMAP
    assert msg["From"] is None and msg["Bcc"] == "dave@example.net"  # the host's object intact
    assert [kw["result"] for kw in seen] == [result] and seen[0]["account"] is account
    assert account.last_sent_at is not None and account.last_success_at is not None
    assert account.status == AccountStatus.CONNECTED


def test_same_address_from_is_accepted_and_another_is_refused(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    mailconnect.send(message(From=account.email.upper()), account=account)
    assert parsed(smtp_starttls.messages[0].data)["From"].addresses[0].display_name == (
        "Alice Example"
    )
    with pytest.raises(InvalidMessage, match="sends as"):
        mailconnect.send(message(From="mallory@example.com"), account=account)
    assert len(smtp_starttls.messages) == 1


@pytest.mark.parametrize(
    "to",
    ["bob@@example.com", "bob", "Bob <bob@example.com", "a@b.example c@d.example",
     "x@-bad-.example.com", "<>", "bob@localhost"],
)  # fmt: skip
def test_recipients_are_parsed_strictly(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any, to: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        mailconnect.send(message(to=to), account=account)
    assert caught.value.retryable is False and caught.value.field == "To"
    assert smtp_starttls.messages == [] and smtp_starttls.connections == 0


def test_no_recipient_is_refused(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount
) -> None:
    msg = EmailMessage()
    msg["Subject"] = "nobody"
    msg.set_content("x")
    with pytest.raises(InvalidMessage, match="no recipient"):
        mailconnect.send(msg, account=account)


def test_header_injection_is_refused(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    # EmailMessage with the default policy already refuses this at assignment ...
    with pytest.raises(ValueError):
        message()["Subject"] = "hi\r\nBcc: victim@example.com"
    # ... but a compat32 message (or a parsed one) carries it: refused before any connection.
    for value in ("hi\r\nBcc: victim@example.com", "hi\nX-Evil: 1", "hi\rX: 1"):
        msg = EmailMessage(policy=email.policy.compat32)
        msg["To"] = "bob@example.com"
        msg["Subject"] = value
        msg.set_payload("body")
        with pytest.raises(InvalidMessage, match="line break") as caught:
            mailconnect.send(msg, account=account)
        assert caught.value.field == "Subject"
    assert smtp_starttls.messages == [] and smtp_starttls.connections == 0


def test_line_breaks_in_a_nested_part_header_are_refused(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    from email.mime.application import MIMEApplication
    from email.mime.multipart import MIMEMultipart
    from email.mime.text import MIMEText

    msg = MIMEMultipart()  # compat32 parts keep what they are given
    msg["To"] = "bob@example.com"
    msg["Subject"] = "report"
    msg.attach(MIMEText("see attachment"))
    attachment = MIMEApplication(b"%PDF-1.4")
    attachment["Content-Disposition"] = 'attachment; filename="a.pdf"\r\nBcc: victim@example.com'
    msg.attach(attachment)
    with pytest.raises(InvalidMessage, match="line break") as caught:
        mailconnect.send(msg, account=account)
    assert caught.value.field == "Content-Disposition"
    assert smtp_starttls.messages == [] and smtp_starttls.connections == 0


def test_resent_and_sender_headers_cannot_name_another_sender(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    msg = message()
    msg["Sender"] = "ceo@example.com"
    msg["Resent-From"] = "ceo@example.com"
    msg["Resent-Sender"] = "ceo@example.com"
    mailconnect.send(msg, account=account)
    [delivered] = smtp_starttls.messages
    sent = parsed(delivered.data)
    assert sent["Sender"] is None and sent["Resent-From"] is None
    assert sent["Resent-Sender"] is None
    assert account.email in sent["From"]


def test_signature_in_both_parts_and_hostile_html_sanitised(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any
) -> None:
    hostile = (
        '<p onmouseover="steal()">Alice <b>Example</b><script>alert(1)</script>'
        '<a href="javascript:alert(2)">site</a> <a href="https://acme.example">acme</a>'
        '<img src="https://tracker.example/pixel.gif" width="1">'
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="logo"></p>'
    )
    # Stored as-is (bypassing update_account's cleaning) to prove send sanitises again.
    account = make_account(db, smtp_starttls, signature_html=hostile, signature_text="")
    msg = message()
    msg.add_alternative("<html><body><p>Hi Bob</p></body></html>", subtype="html")
    mailconnect.send(msg, account=account)
    sent = parsed(smtp_starttls.messages[0].data)
    text = sent.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = sent.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Hi Bob,") and "\n-- \nAlice Example" in text
    assert "<b>Example</b>" in html and html.index("mailconnect-signature") < html.index("</body>")
    for bad in ("<script", "onmouseover", "javascript:", "tracker.example", "steal()"):
        assert bad not in html and bad not in text
    assert 'href="https://acme.example"' in html and "data:image/png" in html


def test_plain_message_gets_the_text_signature(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any
) -> None:
    account = make_account(
        db, smtp_starttls, signature_html="<p>HTML sig</p>", signature_text="Alice\nACME Ltd"
    )
    mailconnect.send(message(), account=account)
    sent = parsed(smtp_starttls.messages[0].data)
    assert sent.get_content_type() == "text/plain"
    assert sent.get_content().endswith("\n-- \nAlice\nACME Ltd\n")
    assert "HTML sig" not in sent.get_content()


def test_a_message_without_a_body_goes_out_with_the_signature_as_its_body(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any
) -> None:
    account = make_account(db, smtp_starttls, signature_html="", signature_text="Alice")
    msg = EmailMessage()
    msg["To"], msg["Subject"] = "bob@example.com", "Subject only"
    mailconnect.send(msg, account=account)  # used to fail with AttributeError
    sent = parsed(smtp_starttls.messages[0].data)
    assert sent["Subject"] == "Subject only"
    assert sent.get_content().endswith("-- \nAlice\n")


def test_inactive_account_is_refused_without_a_connection(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any
) -> None:
    account = make_account(db, smtp_starttls, active=False)
    with pytest.raises(InactiveAccountError) as caught:
        mailconnect.send(message(), account=account)
    assert caught.value.retryable is False and caught.value.code == "inactive"
    with pytest.raises(InactiveAccountError):
        mailconnect.sending(account)
    assert smtp_starttls.connections == 0


def test_pending_and_needs_reconnect_accounts_are_refused(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any
) -> None:
    pending = make_account(db, smtp_starttls, status=AccountStatus.PENDING_AUTHORIZATION)
    with pytest.raises(SendError) as caught:
        mailconnect.send(message(), account=pending)
    assert caught.value.code == "not_connected"
    pending.status = AccountStatus.NEEDS_RECONNECT
    with pytest.raises(AccountNeedsReconnectError):
        mailconnect.send(message(), account=pending)
    assert smtp_starttls.connections == 0


def test_actor_needs_use_permission_and_resolution_by_owner(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any
) -> None:
    account = make_account(db, smtp_starttls)  # alice's (user 1)
    alice, bob = db.session.get(User, 1), db.session.get(User, 2)
    with pytest.raises(PermissionDenied):
        mailconnect.send(message(), account=account, actor=bob)
    result = mailconnect.send(message(), actor=alice)  # resolved: alice's own account
    assert result.account_id == account.id and len(smtp_starttls.messages) == 1


# -- faults injected at the server -------------------------------------------------------------


def test_421_at_mail_is_transient(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    smtp_starttls.inject("MAIL", reply="421 4.3.2 System shutting down")
    with pytest.raises(TransientSendError) as caught:
        mailconnect.send(message(), account=account)
    assert caught.value.retryable and caught.value.smtp_code == 421
    assert smtp_starttls.messages == [] and account.status == AccountStatus.CONNECTED
    mailconnect.send(message(), account=account)  # the caller's retry works, once
    assert len(smtp_starttls.messages) == 1


def test_451_at_rcpt_is_transient_with_the_refusal(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    smtp_starttls.inject("RCPT", reply="451 4.3.0 Try again later")
    with pytest.raises(TransientSendError) as caught:
        mailconnect.send(message(), account=account)
    assert caught.value.code == "recipients_refused" and caught.value.retryable
    assert caught.value.refused == {"bob@example.com": (451, "4.3.0 Try again later")}
    assert smtp_starttls.messages == [] and account.status == AccountStatus.CONNECTED


def test_one_refused_recipient_among_others_is_reported(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    smtp_starttls.inject("RCPT", reply="550 5.1.1 No such user")
    result = mailconnect.send(message(to="bob@example.com, carol@example.com"), account=account)
    assert result.accepted == ["carol@example.com"]
    assert result.refused == {"bob@example.com": (550, "5.1.1 No such user")}
    assert smtp_starttls.messages[0].rcpt_tos == ["carol@example.com"]


def test_535_at_auth_needs_reconnect_and_signals_once(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    fired: list[str] = []
    smtp_starttls.inject("AUTH", reply="535 5.7.8 Authentication credentials invalid", times=2)
    with account_needs_reconnect.connected_to(
        lambda sender, **kw: fired.append(kw["reason"]), peer_app
    ):
        with pytest.raises(AccountNeedsReconnectError) as caught:
            mailconnect.send(message(), account=account)
        assert caught.value.code == "auth_failed" and not caught.value.retryable
        assert account.status == AccountStatus.NEEDS_RECONNECT
        with pytest.raises(AccountNeedsReconnectError):  # refused up front now: no connection
            mailconnect.send(message(), account=account)
    assert fired == ["auth_failed"] and smtp_starttls.auth_commands == 1
    assert smtp_starttls.messages == []


def test_554_after_data_is_permanent(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    smtp_starttls.inject("END", reply="554 5.7.1 Message rejected as spam")
    with pytest.raises(PermanentSendError) as caught:
        mailconnect.send(message(), account=account)
    assert caught.value.smtp_code == 554 and not caught.value.retryable
    assert caught.value.message_id and smtp_starttls.messages == []
    assert account.status == AccountStatus.CONNECTED


def test_drop_before_data_is_transient_and_not_resent(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    smtp_starttls.inject("DATA", drop=True)
    with pytest.raises(TransientSendError) as caught:
        mailconnect.send(message(), account=account)
    assert caught.value.code == "connection_lost" and caught.value.retryable
    assert smtp_starttls.messages == [] and smtp_starttls.auth_commands == 1


def test_drop_after_data_is_delivery_unknown_and_never_resent(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    smtp_starttls.inject("END", drop=True, deliver=True)
    with pytest.raises(DeliveryUnknownError, match="may have been sent") as caught:
        mailconnect.send(message(), account=account)
    assert caught.value.retryable is False and caught.value.code == "delivery_unknown"
    assert len(smtp_starttls.messages) == 1 and smtp_starttls.auth_commands == 1
    assert account.last_sent_at is None


def test_server_slower_than_the_timeout(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    peer_app.config["MAILCONNECT_CONNECT_TIMEOUT"] = 0.5
    smtp_starttls.inject("MAIL", delay=1.5)
    with pytest.raises(TransientSendError) as caught:
        mailconnect.send(message(), account=account)
    assert caught.value.code == "timeout"
    # Slow after the data: the server may deliver late, so this is "unknown", never resent.
    smtp_starttls.inject("END", delay=1.5, deliver=True)
    with pytest.raises(DeliveryUnknownError):
        mailconnect.send(message(), account=account)
    assert len(smtp_starttls.messages) == 1 and smtp_starttls.auth_commands == 2
    assert account.status == AccountStatus.CONNECTED


def test_unreachable_server_is_transient_and_flags_the_account(
    peer_app: Flask, mailconnect: MailConnect, db: Any, silent_server: Any
) -> None:
    peer_app.config["MAILCONNECT_CONNECT_TIMEOUT"] = 0.5
    account = make_account(
        db, type("S", (), {"user": "a@example.test", "password": "x", "port": silent_server.port,
                           "security": "ssl"})(),
    )  # fmt: skip
    with pytest.raises(TransientSendError) as caught:
        mailconnect.send(message(), account=account)
    assert caught.value.code == "timeout"
    assert (account.status, account.last_error_code) == (AccountStatus.ERROR, "timeout")


# -- Sent copy ---------------------------------------------------------------------------------


def test_sent_copy_appended_for_a_provider_that_does_not_keep_one(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any, dovecot: Any,
    peer_certs: Any,
) -> None:  # fmt: skip
    client = imap_login(dovecot, peer_certs)
    try:
        if not client.folder_exists("Sent"):
            client.create_folder("Sent")
        before = set(sent_messages(client, "Sent"))
        account = make_account(db, smtp_starttls, dovecot)
        result = mailconnect.send(message(Bcc="dave@example.net"), account=account)
        assert result.sent_copy == "Sent" and result.sent_copy_error is None
        new = {u: d for u, d in sent_messages(client, "Sent").items() if u not in before}
        [(_, data)] = new.items()
        assert b"\\Seen" in data[b"FLAGS"]
        copy = parsed(data[b"BODY[]"])
        assert copy["Message-ID"] == result.message_id and copy["Bcc"] == "dave@example.net"
        # Gmail files sent mail itself: no copy.
        account.provider = "gmail"
        result = mailconnect.send(message(), account=account)
        assert result.sent_copy is None and result.sent_copy_error is None
        assert len(sent_messages(client, "Sent")) == len(before) + 1
    finally:
        client.logout()


def test_a_failed_sent_copy_does_not_fail_the_send(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any, dovecot: Any,
    caplog: Any,
) -> None:  # fmt: skip
    account = make_account(db, smtp_starttls, dovecot, folder_sent="No/Such/Folder")
    result = mailconnect.send(message(), account=account)
    assert result.sent_copy is None and result.sent_copy_error == "append_failed"
    assert len(smtp_starttls.messages) == 1 and account.status == AccountStatus.CONNECTED
    assert smtp_starttls.password not in caplog.text
    assert account.last_sent_at is not None and utcnow() >= account.last_sent_at


# -- OAuth (XOAUTH2) and Microsoft Graph ---------------------------------------------------------


def _oauth_account(
    peer_app: Flask, db: Any, smtp: Any, oauth: Any, flavour: str = "google", **fields: Any
) -> MailAccount:
    from tests.oauth_flows import provider_config
    from tests.peers.oauth import CLIENT_ID

    config = provider_config(oauth)
    config["microsoft"]["graph_url"] = fields.pop("graph_url", None)
    peer_app.config["MAILCONNECT_PROVIDERS"] = config
    scope = fields.pop("scope", None)
    extra = {"scope": scope} if scope else {}
    tokens = oauth.issue_token(smtp.user, client_id=CLIENT_ID, flavour=flavour, **extra)
    return make_account(
        db, smtp, provider=flavour, auth_method="oauth2", password=None,
        access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
        token_expires_at=utcnow() + timedelta(hours=1), token_scopes=tokens["scope"], **fields,
    )  # fmt: skip


def test_xoauth2_send_with_a_token_from_the_oauth_server(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any, oauth_provider: Any
) -> None:
    account = _oauth_account(peer_app, db, smtp_starttls, oauth_provider)
    result = mailconnect.send(message(), account=account)
    assert smtp_starttls.auth_attempts == [("XOAUTH2", smtp_starttls.user)]
    assert smtp_starttls.messages[0].login == smtp_starttls.user
    assert result.sent_copy is None  # Google keeps its own copy


def test_revoked_token_needs_reconnect_and_signals_once(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any, oauth_provider: Any
) -> None:
    account = _oauth_account(peer_app, db, smtp_starttls, oauth_provider)
    oauth_provider.revoke_user(smtp_starttls.user)  # access and refresh tokens die at Google
    fired: list[str] = []
    with account_needs_reconnect.connected_to(
        lambda sender, **kw: fired.append(kw["reason"]), peer_app
    ):
        with pytest.raises(AccountNeedsReconnectError) as caught:
            mailconnect.send(message(), account=account)
        with pytest.raises(AccountNeedsReconnectError):
            mailconnect.send(message(), account=account)
    assert not caught.value.retryable
    assert account.status == AccountStatus.NEEDS_RECONNECT and fired == ["token_revoked"]
    assert smtp_starttls.messages == []


def test_graph_send_for_an_account_set_to_graph(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any, oauth_provider: Any,
    graph: Any,
) -> None:  # fmt: skip
    # As after a real Microsoft consent: the stored access token is for Outlook (SMTP/IMAP);
    # the grant also covers Graph Mail.Send, which needs a token of its own.
    consent = (
        "openid email offline_access https://outlook.office.com/SMTP.Send "
        "https://graph.microsoft.com/Mail.Send"
    )
    account = _oauth_account(
        peer_app, db, smtp_starttls, oauth_provider, flavour="microsoft", send_via="graph",
        graph_url=graph.url, scope=consent,
    )  # fmt: skip
    refreshes = oauth_provider.refresh_requests
    result = mailconnect.send(message(Bcc="dave@example.net"), account=account)
    assert oauth_provider.refresh_requests == refreshes + 1  # one Graph token fetched
    [sent] = graph.sent
    mime = parsed(sent["mime"] if isinstance(sent["mime"], bytes) else sent["mime"].encode())
    assert mime["Message-ID"] == result.message_id and mime["Bcc"] == "dave@example.net"
    assert result.via == "graph" and smtp_starttls.messages == []
    graph.queue_failure(429, "ApplicationThrottled", "7")
    with pytest.raises(TransientSendError) as caught:
        mailconnect.send(message(), account=account)
    assert caught.value.retry_after == 7 and len(graph.sent) == 1


def test_graph_answer_lost_after_the_post_is_delivery_unknown_not_retryable(
    peer_app: Flask, mailconnect: MailConnect, db: Any, smtp_starttls: Any, oauth_provider: Any,
    graph: Any,
) -> None:  # fmt: skip
    consent = "openid email offline_access https://graph.microsoft.com/Mail.Send"
    account = _oauth_account(
        peer_app, db, smtp_starttls, oauth_provider, flavour="microsoft", send_via="graph",
        graph_url=graph.url, scope=consent,
    )  # fmt: skip
    peer_app.config["MAILCONNECT_CONNECT_TIMEOUT"] = 1
    # Graph took the message, then stalled past the read timeout: it may have been sent.
    graph.stall_after_body = 2.5
    with pytest.raises(DeliveryUnknownError, match="may have been sent") as caught:
        mailconnect.send(message(), account=account)
    assert not caught.value.retryable and len(graph.sent) == 1
    graph.stall_after_body = 0.0
    # A 500 / 502 / 504 after the POST: also unknown.
    for status in (500, 502, 504):
        graph.queue_after_send(status, "ServiceNotAvailable")
        with pytest.raises(DeliveryUnknownError) as caught:
            mailconnect.send(message(), account=account)
        assert not caught.value.retryable
    assert len(graph.sent) == 4
    # 503 with Retry-After and 429: Graph did not take it; retry later.
    for status in (503, 429):
        graph.queue_failure(status, "ServiceNotAvailable", "30")
        with pytest.raises(TransientSendError) as throttled:
            mailconnect.send(message(), account=account)
        assert throttled.value.retryable and throttled.value.retry_after == 30
    assert len(graph.sent) == 4
    # Connection refused: the request never went out.
    from flask_mailconnect.transport import graph as graph_transport

    with pytest.raises(graph_transport.ConnectionFailed) as refused:
        graph_transport.send_via_graph(
            b"x", access_token="t", graph_url="https://127.0.0.1:1/v1.0", timeout=1,
            ca_file=None, allow_private_hosts=True,
        )  # fmt: skip
    assert not isinstance(refused.value, graph_transport.GraphOutcomeUnknown)
    assert refused.value.code == "refused"


def test_cli_send_test(
    peer_app: Flask, mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    runner = peer_app.test_cli_runner()
    ok = runner.invoke(args=["mailconnect", "send-test", "--account", str(account.id),
                             "--to", "bob@example.com"])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "Sent <" in ok.output and "Accepted: bob@example.com" in ok.output
    assert smtp_starttls.messages[0].rcpt_tos == ["bob@example.com"]
    smtp_starttls.inject("RCPT", reply="550 5.1.1 No such user")
    failed = runner.invoke(args=["mailconnect", "send-test", "--account", str(account.id),
                                 "--to", "bob@example.com"])  # fmt: skip
    assert failed.exit_code == 1 and "retrying will not help" in failed.output
    smtp_starttls.inject("END", drop=True, deliver=True)
    unknown = runner.invoke(args=["mailconnect", "send-test", "--account", str(account.id),
                                  "--to", "bob@example.com"])  # fmt: skip
    assert unknown.exit_code == 1 and "may have been delivered; do not resend" in unknown.output
    assert "Not sent" not in unknown.output
    missing = runner.invoke(args=["mailconnect", "send-test", "--account", "999", "--to", "x@y.z"])
    assert missing.exit_code == 1 and "No account" in missing.output
