"""What sending, syncing and health checks need to talk to an account's servers.

:func:`server_settings` turns a stored account into the transport's :class:`ServerSettings`,
decrypting the password or getting a fresh OAuth access token (refreshed under the row lock in
the OAuth layer). A caller that checks many accounts may load their (encrypted) passwords with
the batch: :func:`with_password` as a query option, or :func:`accounts_with_passwords`; the
password is still decrypted here, at the moment of use, and never kept. What a login's outcome
does to the account (health fields, status, audit row, signal) is written by
:mod:`flask_mailconnect.accounts.status`. Nothing here commits.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import undefer

from .columns import Sealed, open_secret
from .models import MailAccount
from .oauth.refresh import fresh_access_token
from .providers import Catalog, current_catalog
from .runtime import Runtime
from .transport.settings import ServerSettings

if TYPE_CHECKING:
    from sqlalchemy.orm.interfaces import LoaderOption


@functools.cache
def with_password() -> LoaderOption:
    """Query option for a batch of accounts about to be checked or used: their password column
    (deferred with raiseload, see models.py) comes with the rows, still sealed, so
    :func:`server_settings` needs no query of its own per account.

    Built on first use, not at import: making it configures the SQLAlchemy mappers (~15 ms),
    which ``import flask_mailconnect`` should not pay. The option is immutable and the same
    for every app, so one is kept."""
    return undefer(MailAccount.password)


@functools.cache
def accounts_with_passwords() -> sa.Select[MailAccount]:
    """The accounts whose ids are bound as ``ids`` (an expanding IN), with their sealed
    passwords (:func:`with_password`): a batch's one SELECT. Built once, on first use; a
    statement built per batch costs a coercion per id and a cache-key walk each time."""
    ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
    return sa.select(MailAccount).where(MailAccount.id.in_(ids)).options(with_password())


def server_settings(
    state: Runtime,
    account: MailAccount,
    *,
    min_validity: timedelta = timedelta(minutes=5),
    catalog: Catalog | None = None,
) -> ServerSettings:
    """The account's servers and a usable credential. ``catalog``: the current app context's
    provider catalogue when the caller already holds it (a batch of checks).

    OAuth: raises :class:`~flask_mailconnect.exceptions.NeedsReconnect` or
    :class:`~flask_mailconnect.exceptions.TokenRefreshUnavailable` from the refresh.
    """
    oauth_token = None
    password = ""
    if account.auth_method == "oauth2":
        oauth_token = fresh_access_token(state, account, min_validity=min_validity)
    else:
        password = stored_password(state, account) or ""
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
        hints=(catalog or current_catalog()).for_account(account).hints,
    )


def stored_password(state: Runtime, account: MailAccount) -> str | None:
    """The account's stored password, decrypted at the moment of use (for the transport
    only): as read with the row (:func:`with_password`), else read now (a value set in this
    session is flushed first). Never touches the attribute itself: it raises when not loaded
    (``deferred_raiseload``)."""
    loaded = sa.inspect(account).dict.get("password")  # what was loaded, without loading
    if isinstance(loaded, Sealed):
        return open_secret(loaded)
    query = sa.select(MailAccount.password).where(MailAccount.id == account.id)
    return open_secret(state.session.scalar(query))
