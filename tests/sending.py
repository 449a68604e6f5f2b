"""Helpers the sending tests share: tests/test_send.py, tests/test_send_fast_paths.py and
tests/test_drafts.py.

The host app set up for the local peers (``peer_app_context``, the body of each module's
``peer_app`` fixture), an account at aiosmtpd (and Dovecot), a plain message, a delivered
message parsed as a mail client reads it, and reading back the Sent copies at Dovecot.
"""

from __future__ import annotations

import email
import email.policy
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

from flask import Flask
from imapclient import IMAPClient

from flask_mailconnect import MailAccount


def peer_app_context(app: Flask, peer_certs: Any) -> Iterator[Flask]:
    """``app`` allowed to reach the local peers (private hosts, any port, the test CA), inside
    its app context while the caller iterates."""
    app.config.update(
        MAILCONNECT_ALLOW_PRIVATE_HOSTS=True,
        MAILCONNECT_SMTP_PORTS=None,
        MAILCONNECT_IMAP_PORTS=None,
        MAILCONNECT_CA_FILE=peer_certs.ca_file,
        MAILCONNECT_CONNECT_TIMEOUT=5,
    )
    with app.app_context():
        yield app


def make_account(db: Any, smtp: Any, dovecot: Any = None, **fields: Any) -> MailAccount:
    values: dict[str, Any] = dict(
        owner_kind="user", owner_id="1", provider="other", email=smtp.user,
        username=smtp.user, password=smtp.password, smtp_host="localhost",
        smtp_port=smtp.port, smtp_security=smtp.security, display_name="Alice Example",
    )  # fmt: skip
    if dovecot is not None:
        values.update(imap_host="localhost", imap_port=dovecot.ssl_port, imap_security="ssl")
    values.update(fields)
    account = MailAccount(**values)
    db.session.add(account)
    db.session.commit()
    return account


def message(to: str = "Bob <bob@example.com>", **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = headers.pop("Subject", "Hello")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("Hi Bob,\nsee you.\n")
    return msg


def parsed(data: bytes) -> EmailMessage:
    # As a mail client reads it: line endings as "\n".
    result = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(result, EmailMessage)
    return result


def imap_login(dovecot: Any, peer_certs: Any) -> IMAPClient:
    """imapclient logged in to ``dovecot`` over implicit TLS (the test CA trusted)."""
    context = ssl.create_default_context(cafile=peer_certs.ca_file)
    client = IMAPClient("localhost", dovecot.ssl_port, ssl=True, ssl_context=context, timeout=5)
    client.login(dovecot.user, dovecot.password)
    return client


def sent_messages(client: IMAPClient, folder: str) -> dict[int, dict[bytes, Any]]:
    """FLAGS and the whole message of every message in ``folder``, by UID."""
    client.select_folder(folder)
    uids = client.search(["ALL"])
    return client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
