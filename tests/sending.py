"""Helpers the sending tests share: the modules in tests/sending_peers/ (test_send.py,
test_send_fast_paths.py, test_drafts.py, test_bulk_send.py), tests/test_smtputf8.py and
tests/test_compose_direct.py.

The host app set up for the local peers (``peer_app_context``, the body of the ``peer_app``
fixture in tests/sending_peers/conftest.py), an account at aiosmtpd (and Dovecot), a plain
message, a delivered message parsed as a mail client reads it, reading back the Sent copies at
Dovecot, and the recipient addresses the fast paths are checked against (``ADDRESSES``,
``PLAIN_OR_NOT``).
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


# -- recipient addresses the fast paths are checked against ------------------------------------

#: Valid and invalid addresses, for recipient normalisation against email-validator.
ADDRESSES = [
    "a@example.com", "A.B@Example.COM", "x+tag@sub.example.org", "x@localhost", "x@test",
    "x@a.test", "x@münchen.de", "x@xn--mnchen-3ya.de", "a..b@example.com", ".a@example.com",
    "x@example", "x@1.2.3.4", "x@[1.2.3.4]", "x@-a.com", "x@a-.com", "x" * 65 + "@example.com",
    "x@" + "a" * 250 + ".com", "ü@example.com", "x@example.com.", "x@.example.com",
    "x@exa_mple.com", "x@example.invalid", "x@example.onion", "x@EXAMPLE.co.uk",
    "x@ex ample.com", "x@sub.localhost", "x@123.com", "x@example.123", "o'neil@example.ie",
    "{x}@example.com", "x@" + ("a" * 63 + ".") * 3 + "com",
]  # fmt: skip

#: ``ADDRESSES`` and To headers that are, or only look like, one bare address.
PLAIN_OR_NOT = [
    *ADDRESSES, "bob@example.com", "a.b+c_d-e@mail.example.co.uk", "bob@example", "bob@@x.com",
    "bob@example.com.", ".bob@example.com", "bob.@example.com", "bob@-x.com", "bob@x..com",
    "bob@example.com, eve@example.com", "bob@example.com (eve@example.com)",
    '"eve@example.com" bob@example.com', "bob@example.com\teve@example.com",
]  # fmt: skip
