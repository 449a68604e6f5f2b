"""Mail on save: an account's newest messages are loaded as soon as it is saved.

ELMA365 shows the 50 most recent messages right after an account is saved; so do we. The
views call :func:`load_on_save` after they committed a manual connect, a reconnect or an
OAuth connect / sign-in again (the Python API's callers may too: ``MailConnect.sync_on_save``):

1. with a job queue (``@mailconnect.enqueue``): the ``sync_account`` job of
   :mod:`flask_mailconnect.jobs` is handed to it and the request goes on;
2. otherwise (or when handing it over raised): :func:`~flask_mailconnect.sync.sync_recent` runs
   in the request, waiting at most ``MAILCONNECT_SYNC_ON_SAVE_TIMEOUT`` seconds for the server
   (its network half runs in a thread; past the time the page goes on and Refresh or the next
   periodic sync loads the mail).

It never undoes or fails the save: the save is already committed, every failure is caught,
recorded on the account where it says something about the account (a refused login, an
unreachable server: through the sync's own failure recording) and returned as an outcome. The
first sync of a new account sends no ``new_mail`` (those messages were already there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app

from .exceptions import SyncError
from .i18n import gettext
from .models import AccountStatus, MailAccount
from .runtime import Runtime
from .sync import sync_recent

log = logging.getLogger("flask_mailconnect.sync")

#: How many messages a save loads (ELMA365's 50).
ON_SAVE_LIMIT = 50


@dataclass(frozen=True)
class SaveSync:
    """What :func:`load_on_save` did.

    ``outcome``: ``queued`` (handed to the host's queue), ``synced`` (loaded in the request),
    ``timeout`` (the server took longer than allowed), ``failed`` (``code`` and ``message``
    say why; recorded on the account when it concerns it) or ``skipped`` (the account does
    not receive mail, is not connected, or on-save loading is off).
    """

    outcome: str
    count: int = 0
    code: str | None = None
    message: str = ""


def load_on_save(state: Runtime, account: MailAccount, *, limit: int = ON_SAVE_LIMIT) -> SaveSync:
    """Load ``account``'s newest ``limit`` messages now (see the module doc). Call it after
    the save was committed; it commits its own work. Never raises for a failed load."""
    if not account.receives or not account.active or account.status != AccountStatus.CONNECTED:
        return SaveSync("skipped")
    try:
        if state.hooks.enqueue_job("sync_account", account_id=account.id, limit=limit):
            return SaveSync("queued")
    except Exception as exc:  # the host's queue is down: load it here instead
        log.warning("account %s: enqueueing the sync failed (%s); syncing in the request",
                    account.id, type(exc).__name__)  # fmt: skip
    timeout = float(current_app.config.get("MAILCONNECT_SYNC_ON_SAVE_TIMEOUT") or 0)
    if timeout <= 0:
        return SaveSync("skipped")
    session = state.session
    try:
        # As the app, not the person: an admin saving someone's account may not read its mail,
        # yet the mail should be there when its owner looks.
        result = sync_recent(state, account, limit=limit, timeout=timeout)
        session.commit()
    except SyncError as exc:
        session.commit()  # keep the failure the sync recorded on the account
        outcome = "timeout" if exc.code == "sync_timeout" else "failed"
        log.info("account %s: mail on save %s (%s)", account.id, outcome, exc.code)
        return SaveSync(outcome, code=exc.code, message=exc.message)
    except Exception as exc:  # never fail a save that is already committed
        session.rollback()
        log.warning("account %s: mail on save failed (%s)", account.id, type(exc).__name__)
        message = gettext("Recent mail could not be loaded.")
        return SaveSync("failed", code="internal", message=message)
    return SaveSync("synced", count=result.new)


__all__ = ["ON_SAVE_LIMIT", "SaveSync", "load_on_save"]
