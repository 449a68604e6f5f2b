"""Accounts at the peers for the health-check tests: tests/health/ (test_health.py,
test_health_batch.py) and tests/test_health_batch_restore.py.

``add`` commits an account at aiosmtpd and Dovecot (a password, or OAuth tokens minted by the
local OAuth server), ``get`` reads it back fresh.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask_mailconnect import MailAccount
from flask_mailconnect.models import utcnow
from tests import hostapp
from tests.peers import MAILBOX_PASSWORD, MAILBOX_USER
from tests.peers.oauth import mint_token


def add(
    smtp: Any,
    dovecot: Any,
    *,
    owner_id: str = "1",
    password: str = MAILBOX_PASSWORD,
    oauth: str | None = None,
    server: Any = None,
    smtp_port: int | None = None,
    imap_port: int | None = None,
    **extra: Any,
) -> int:
    """A committed account at the peers (password, or OAuth with tokens minted by ``server``)."""
    fields: dict[str, Any] = {
        "owner_kind": "user", "owner_id": owner_id, "provider": "other",
        "auth_method": "password", "email": MAILBOX_USER, "username": MAILBOX_USER,
        "password": password, "smtp_host": smtp.host, "smtp_port": smtp_port or smtp.port,
        "smtp_security": smtp.security, "imap_host": dovecot.host,
        "imap_port": imap_port or dovecot.ssl_port, "imap_security": "ssl",
    }  # fmt: skip
    if oauth is not None:
        tokens = mint_token(server, MAILBOX_USER, flavour=oauth)
        fields.update(
            provider=oauth, auth_method="oauth2", password=None,
            access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
            token_expires_at=utcnow() + timedelta(hours=1), token_scopes=tokens["scope"],
            token_refreshed_at=utcnow(),
        )  # fmt: skip
    fields.update(extra)
    account = MailAccount(**fields)
    hostapp.db.session.add(account)
    hostapp.db.session.commit()
    return account.id


def get(account_id: int) -> MailAccount:
    hostapp.db.session.commit()
    hostapp.db.session.expire_all()
    account = hostapp.db.session.get(MailAccount, account_id)
    assert account is not None
    return account
