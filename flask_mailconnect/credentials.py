"""What sending, syncing and health checks need to talk to an account's servers.

:func:`server_settings` turns a stored account into the transport's :class:`ServerSettings`,
decrypting the password or getting a fresh OAuth access token (refreshed under the row lock in
the OAuth layer). What a login's outcome does to the account (health fields, status, audit
row, signal) is written by :mod:`flask_mailconnect.accounts.status`. Nothing here commits.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from .columns import open_secret
from .models import MailAccount
from .oauth.refresh import fresh_access_token
from .providers import current_catalog
from .runtime import Runtime
from .transport.settings import ServerSettings


def server_settings(
    state: Runtime, account: MailAccount, *, min_validity: timedelta = timedelta(minutes=5)
) -> ServerSettings:
    """The account's servers and a usable credential.

    OAuth: raises :class:`~flask_mailconnect.exceptions.NeedsReconnect` or
    :class:`~flask_mailconnect.exceptions.TokenRefreshUnavailable` from the refresh.
    """
    oauth_token = None
    password = ""
    if account.auth_method == "oauth2":
        oauth_token = fresh_access_token(state, account, min_validity=min_validity)
    else:
        stored = state.session.scalar(
            sa.select(MailAccount.password).where(MailAccount.id == account.id)
        )
        password = open_secret(stored) or ""
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
