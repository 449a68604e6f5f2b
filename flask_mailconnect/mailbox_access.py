"""Logging in to an account's mailbox for the use-cases that read it (sync, folders, the
message page): the same checks, credentials and failure bookkeeping for all of them.

- :func:`require_action`: the permission check (``read`` for mail, ``manage`` for folders);
- :func:`refuse_early`: accounts we must not log in with (no IMAP, inactive, waiting for their
  owner: retrying a refused password can lock a mailbox at the provider);
- :func:`settings_for`: the account's transport settings (password decrypted, or a fresh OAuth
  token); token problems become recorded :class:`~flask_mailconnect.exceptions.SyncError`;
- :func:`open_mailbox`: a logged-in IMAP client, through the transport's network guard and TLS;
  every failure is recorded on the account (:mod:`.accounts.status`) and raised as
  ``SyncError``, never as an imaplib exception;
- :func:`fail` and :func:`code_for`: that recording, for callers that talk to the server
  themselves (:func:`~flask_mailconnect.sync.sync_recent`'s network half runs in a thread).

A lost encryption key is not caught here: ``EncryptionKeyError`` reaches the caller (pages
answer it with the 503 page). Nothing here commits.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING

from . import codes as errors
from . import credentials
from .accounts import require
from .accounts.status import record_failure
from .codes import message_for
from .exceptions import (
    ConnectionFailed,
    NeedsReconnect,
    SyncError,
    TokenError,
    TokenRefreshUnavailable,
)
from .i18n import gettext
from .models import AccountStatus, MailAccount
from .owners import Actor
from .providers import current_catalog
from .runtime import Runtime
from .transport.imap import open_imap
from .transport.settings import ServerSettings

if TYPE_CHECKING:  # imapclient is imported where a mailbox is opened, not with the package
    from imapclient import IMAPClient

log = logging.getLogger("flask_mailconnect.sync")


def require_action(state: Runtime, actor: Actor | None, action: str, account: MailAccount) -> None:
    """``PermissionDenied`` unless ``actor`` may ``action`` the account (``None``: host code)."""
    require(state, actor, action, account.owner)


def refuse_early(account: MailAccount) -> None:
    """Accounts we must not log in with: no IMAP, inactive, or waiting for their owner."""
    if not account.receives:
        raise SyncError(
            "not_receiving",
            gettext(
                "This account is set up for sending only: turn on receiving (IMAP) to see its mail."
            ),
        )
    if not account.active:
        raise SyncError(
            "inactive", gettext("This account is inactive. An administrator can reactivate it.")
        )
    if account.status in (AccountStatus.NEEDS_RECONNECT, AccountStatus.PENDING_AUTHORIZATION):
        # Retrying a refused password can lock the mailbox at the provider: wait for the owner.
        text = account.last_error_message or message_for(
            errors.AUTH_FAILED, current_catalog().for_account(account).hints
        )
        raise SyncError(account.last_error_code or "needs_reconnect", text)


def code_for(exc: BaseException) -> str:
    """The stable code for what went wrong while talking to the server."""
    from imapclient import exceptions as imap_errors  # here, not at ``import flask_mailconnect``

    if isinstance(exc, ConnectionFailed):
        return exc.code
    if isinstance(exc, TimeoutError):
        return errors.TIMEOUT
    if isinstance(exc, (imaplib.IMAP4.abort, OSError, ssl.SSLError)):
        return errors.CONNECTION_LOST
    if isinstance(exc, imap_errors.IMAPClientError | imaplib.IMAP4.error):
        return errors.MAILBOX_UNAVAILABLE
    return errors.PROTOCOL_ERROR


def fail(state: Runtime, account: MailAccount, code: str, message: str = "") -> SyncError:
    """Record the failure on the account (status, last error, remedy) and return the error."""
    message = message or message_for(code, current_catalog().for_account(account).hints)
    record_failure(state, account, code, message)
    state.session.flush()
    return SyncError(code, message)


def settings_for(state: Runtime, account: MailAccount) -> ServerSettings:
    """The account's transport settings; token problems become recorded SyncErrors."""
    try:
        return credentials.server_settings(state, account)
    except NeedsReconnect as exc:  # already marked needs_reconnect (and signalled) by tokens.py
        raise SyncError(exc.error or "token_revoked", str(exc)) from None
    except TokenRefreshUnavailable as exc:
        raise fail(state, account, "token_unavailable", str(exc)) from None
    except TokenError as exc:
        raise fail(state, account, exc.error or "token_error", str(exc)) from None


@contextlib.contextmanager
def open_mailbox(state: Runtime, account: MailAccount) -> Iterator[IMAPClient]:
    """A logged-in IMAP client for ``account``; every failure becomes a recorded SyncError."""
    settings = settings_for(state, account)
    try:
        client = open_imap(settings, state.transport_options())
    except ConnectionFailed as exc:
        log.info("mailbox of account %s: %s (%s)", account.id, exc.code, exc.detail)
        raise fail(state, account, exc.code, exc.message) from None
    try:
        yield client
    except SyncError:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    except Exception as exc:
        code = code_for(exc)
        log.info("mailbox of account %s failed: %s (%s)", account.id, code, type(exc).__name__)
        with contextlib.suppress(Exception):
            client.shutdown()
        raise fail(state, account, code) from None
    except BaseException:  # KeyboardInterrupt, a job system's timeout: never leak the socket
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    else:
        with contextlib.suppress(Exception):
            client.logout()


__all__ = [
    "code_for",
    "fail",
    "open_mailbox",
    "refuse_early",
    "require_action",
    "settings_for",
]
