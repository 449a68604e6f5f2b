"""What sending, syncing and health checks need to talk to an account's servers.

:func:`server_settings` turns a stored account into the transport's :class:`ServerSettings`,
decrypting the password or getting a fresh OAuth access token (refreshed under the row lock in
oauth/tokens.py). :func:`record_success`, :func:`record_failure` and
:func:`mark_needs_reconnect` keep the account's health fields and status in one place.
Like accounts.py, nothing here commits: callers own the transaction.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from . import audit, signals
from .codes import message_for
from .models import AccountStatus, MailAccount, utcnow
from .oauth.tokens import fresh_access_token
from .owners import Actor
from .providers import current_catalog
from .runtime import Runtime
from .transport.settings import ServerSettings

#: Codes meaning the stored credentials no longer work: only the owner can fix them.
RECONNECT_CODES = frozenset({"auth_failed", "token_rejected", "token_revoked", "no_refresh_token"})


def server_settings(
    state: Runtime, account: MailAccount, *, min_validity: timedelta = timedelta(minutes=5)
) -> ServerSettings:
    """The account's servers and a usable credential.

    OAuth: raises :class:`~flask_mailconnect.oauth.tokens.NeedsReconnect` or
    :class:`~flask_mailconnect.oauth.tokens.TokenRefreshUnavailable` from the refresh.
    """
    oauth_token = None
    password = ""
    if account.auth_method == "oauth2":
        oauth_token = fresh_access_token(state, account, min_validity=min_validity)
    else:
        password = (
            state.session.scalar(
                sa.select(MailAccount.password).where(MailAccount.id == account.id)
            )
            or ""
        )
    return ServerSettings(
        email=account.email,
        username=account.username,
        password=password,
        smtp_host=account.smtp_host,
        smtp_port=account.smtp_port,
        smtp_security=account.smtp_security,  # type: ignore[arg-type]
        imap_host=account.imap_host,
        imap_port=account.imap_port,
        imap_security=account.imap_security,  # type: ignore[arg-type]
        provider=account.provider,
        oauth_token=oauth_token,
        hints=current_catalog().for_account(account).hints,
    )


def record_success(account: MailAccount) -> None:
    """A login worked: connected again (a needs_reconnect account stays so until re-signed)."""
    now = utcnow()
    account.last_checked_at = account.last_success_at = now
    account.last_error_code = account.last_error_message = None
    if account.status == AccountStatus.ERROR:
        account.status = AccountStatus.CONNECTED


def record_failure(state: Runtime, account: MailAccount, code: str, message: str = "") -> bool:
    """Note a failed login or send. Credential failures mark the account needs_reconnect.

    Returns True when this call moved the account to needs_reconnect (the signal fired).
    """
    message = message or message_for(code, current_catalog().for_account(account).hints)
    if code in RECONNECT_CODES:
        return mark_needs_reconnect(state, account, code=code, message=message)
    account.last_checked_at = utcnow()
    account.last_error_code = code
    account.last_error_message = message
    if account.status == AccountStatus.CONNECTED:
        account.status = AccountStatus.ERROR
    return False


def mark_needs_reconnect(
    state: Runtime, account: MailAccount, *, code: str, message: str, actor: Actor | None = None
) -> bool:
    """Mark the account needs_reconnect; audit and fire ``account_needs_reconnect`` once.

    Returns False (and fires nothing) when it already needed reconnecting.
    """
    account.last_checked_at = utcnow()
    account.last_error_code = code
    account.last_error_message = message
    if account.status == AccountStatus.NEEDS_RECONNECT:
        return False
    account.status = AccountStatus.NEEDS_RECONNECT
    state.session.flush()
    audit.record(
        state.session, "needs_reconnect", actor=actor, account=account, ok=False, detail=code
    )
    signals.announce(signals.account_needs_reconnect, actor, account=account, reason=code)
    return True
