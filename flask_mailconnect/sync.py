"""Recent mail and folder mapping: the account side of :mod:`.transport.mailbox`.

:func:`sync_recent` keeps the newest ``limit`` INBOX messages' headers in
:class:`~flask_mailconnect.models.SyncedMessage`:

- first run (or after UIDVALIDITY changed): EXAMINE INBOX, then ONE ``FETCH`` of the newest
  ``limit`` messages (headers, flags, a snippet);
- afterwards: nothing new when UIDNEXT did not move; else ONE ``UID FETCH <stored uidnext>:*``
  for the new messages, plus one ``UID FETCH <oldest kept>:<newest kept> (FLAGS)`` that updates
  read/unread and drops messages deleted on the server;
- rows are stored by :mod:`.sync_store`: one cached insert-or-ignore per batch on the unique
  ``(account_id, uid)``, so many workers syncing one account at once never duplicate a row,
  and only the worker that inserted a message counts it; each message's headers are parsed
  once (:func:`.transport.mailbox.summarize`);
- messages at or above the UIDNEXT the previous sync recorded are new mail: the worker whose
  compare-and-set moves the stored UIDNEXT sends ``new_mail`` for them (:mod:`.new_mail`);
  the first sync of an account and a resync after UIDVALIDITY changed announce nothing;
- at most ``limit`` rows are kept: older unpinned ones are deleted. Pinned rows (the host linked
  them to a record) are never deleted; when UIDVALIDITY changes their UIDs mean nothing any
  more, so they are kept with the account reference cleared (like disconnect does).

The network half (:func:`_fetch_recent`) touches no database, so ``timeout=`` can run it in a
thread and stop waiting (the sync on save, :mod:`.sync_on_save`).

Failures are recorded on the account through :mod:`.credentials` (credentials refused:
``needs_reconnect`` and the signal; anything else: ``error``) and raised as
:class:`~flask_mailconnect.exceptions.SyncError`, never as an imaplib exception. Like
accounts.py, nothing here commits: the caller owns the transaction (commit after a
``SyncError`` too, to keep the recorded failure).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from . import audit, signals, sync_store
from .accounts.status import record_success
from .arrivals import announce as announce_new_mail
from .exceptions import ConnectionFailed, InvalidSettings, SyncError
from .i18n import gettext
from .mailbox_access import (
    code_for,
    fail,
    open_mailbox,
    refuse_early,
    require_action,
    settings_for,
)
from .models import MailAccount, SyncedMessage, utcnow
from .owners import Actor
from .runtime import Runtime
from .transport import mailbox
from .transport.imap import open_imap
from .transport.mailbox import ROLES, FolderInfo, MailboxStatus, MessageSummary
from .transport.settings import ServerSettings, TransportOptions

if TYPE_CHECKING:  # imapclient is imported where a mailbox is opened, not with the package
    from imapclient import IMAPClient

log = logging.getLogger("flask_mailconnect.sync")

INBOX = "INBOX"


@dataclass(frozen=True)
class SyncResult:
    """What one :func:`sync_recent` did."""

    account_id: int
    new: int  #: rows this call inserted (another worker may have inserted the rest)
    fetched: int  #: messages whose headers were fetched
    removed: int  #: unpinned rows deleted (older than the newest ``limit``, or gone)
    full: bool  #: a full (first, or UIDVALIDITY changed) sync rather than an incremental one
    uidvalidity: int
    uidnext: int | None
    uids: tuple[int, ...] = field(default=(), repr=False)  #: UIDs fetched, newest first
    #: UIDs announced by ``new_mail`` (new since the previous sync), newest first
    announced: tuple[int, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class FolderListing:
    """The mailbox's folders and the mapping to show: stored, else suggested."""

    folders: list[FolderInfo]
    suggested: dict[str, str | None]
    current: dict[str, str | None]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.folders if f.selectable]

    @property
    def initial(self) -> dict[str, str | None]:
        """Per role: the stored folder, or the suggestion when none is stored yet."""
        return {role: self.current.get(role) or self.suggested.get(role) for role in ROLES}


# -- recent mail -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Known:
    """What the database knew before this sync (read before any network)."""

    uidvalidity: int | None
    uidnext: int | None
    stored: tuple[int, ...]  #: stored UIDs, newest first


@dataclass(frozen=True)
class _Fetched:
    """What the server said: no database involved, so it may come from another thread."""

    status: MailboxStatus
    full: bool
    messages: list[MessageSummary]
    flags: dict[int, tuple[str, ...]] | None


def _fetch_recent(
    settings: ServerSettings, options: TransportOptions, known: _Known, limit: int
) -> _Fetched:
    """Log in, EXAMINE INBOX, fetch what is new (module doc), log out. Sockets only."""
    client = open_imap(settings, options)
    try:
        status = mailbox.examine(client, INBOX)
        stored = known.stored
        full = (
            known.uidvalidity is None
            or known.uidvalidity != status.uidvalidity
            or known.uidnext is None
            or not stored
            # Fewer kept than wanted while the server has more (a larger limit, deletions):
            # fetch the newest again; rows already stored are skipped by the insert.
            or len(stored) < min(limit, status.exists)
        )
        flags: dict[int, tuple[str, ...]] | None = None
        if full:
            fetched = mailbox.fetch_newest(client, status, limit)
        else:
            since = int(known.uidnext or 1)
            if status.uidnext is not None and status.uidnext <= since:
                fetched = []  # nothing arrived: no header fetch at all
            elif status.uidnext is not None and status.uidnext - since > limit:
                fetched = mailbox.fetch_newest(client, status, limit)  # a flood: newest only
            else:
                fetched = mailbox.fetch_from_uid(client, since)
            flags = mailbox.fetch_flags(client, min(stored), max(stored))
    except BaseException:  # KeyboardInterrupt, a job system's timeout: never leak the socket
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    _quit(client)
    return _Fetched(status=status, full=full, messages=fetched[:limit], flags=flags)


def _quit(client: IMAPClient) -> None:
    """LOGOUT, then close without waiting for the server's BYE: everything was read, and the
    answer would cost one more round trip for nothing (the server ends the session on the
    command or on the closed connection alike)."""
    with contextlib.suppress(Exception):
        client._imap.send(b"mc1 LOGOUT\r\n")
    with contextlib.suppress(Exception):
        client.shutdown()


class _OutOfTime(Exception):
    """The caller's ``timeout`` passed (not a network step's own timeout: that one fails)."""


def _within(seconds: float, work: Callable[[], _Fetched]) -> _Fetched:
    """``work()`` in a thread, waited for at most ``seconds`` (else :class:`_OutOfTime`).

    The network half only: the database stays with the calling thread. A worker still busy
    when the time is up finishes on its own (every network step has its own timeout) and its
    answer is dropped.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="mailconnect-sync", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    if worker.is_alive():
        raise _OutOfTime(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return cast(_Fetched, outcome["value"])


def sync_recent(
    state: Runtime,
    account: MailAccount,
    *,
    limit: int = 50,
    actor: Actor | None = None,
    timeout: float | None = None,
) -> SyncResult:
    """Bring the account's newest ``limit`` INBOX messages into SyncedMessage (module doc).

    ``timeout``: wait at most this many seconds for the server (the network half runs in a
    thread); past it :class:`SyncError` ``sync_timeout`` is raised and nothing is recorded on
    the account (slow is not broken). ``None``: each network step has its own timeout only.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    require_action(state, actor, "read", account)  # reading someone's mail: not for their admin
    refuse_early(account)
    stored = sync_store.stored_uids(state, account)
    known = _Known(account.sync_uidvalidity, account.sync_uidnext, tuple(stored))
    settings = settings_for(state, account)
    options = state.transport_options()
    try:
        if timeout is None:
            fetched = _fetch_recent(settings, options, known, limit)
        else:
            fetched = _within(timeout, lambda: _fetch_recent(settings, options, known, limit))
    except ConnectionFailed as exc:
        log.info("sync of account %s: %s (%s)", account.id, exc.code, exc.detail)
        raise fail(state, account, exc.code, exc.message) from None
    except _OutOfTime:
        raise SyncError(
            "sync_timeout",
            gettext(
                "The mail server did not answer within %(seconds)s seconds.",
                seconds=f"{timeout:g}",
            ),
        ) from None
    except Exception as exc:
        code = code_for(exc)
        log.info("sync of account %s failed: %s (%s)", account.id, code, type(exc).__name__)
        raise fail(state, account, code) from None
    return _store(state, account, known, fetched, limit, actor)


def _store(
    state: Runtime,
    account: MailAccount,
    known: _Known,
    fetched: _Fetched,
    limit: int,
    actor: Actor | None,
) -> SyncResult:
    """Write what was fetched, move UIDNEXT, announce (the database half of a sync)."""
    status, stored = fetched.status, known.stored
    removed = 0
    resync = known.uidvalidity not in (None, status.uidvalidity)
    if fetched.full and resync:
        log.info("account %s: UIDVALIDITY changed, resyncing", account.id)
        removed += sync_store.detach_all(state, account)
    if fetched.flags is not None:
        removed += sync_store.apply_flags(state, account, min(stored), max(stored), fetched.flags)
    messages = fetched.messages
    new = sync_store.insert_ignoring_duplicates(
        state, [sync_store.row(account.id, m) for m in messages]
    )
    if len(stored) + len(messages) > limit:  # else nothing can be past the newest ``limit``
        removed += sync_store.trim(state, account, limit)
    highest = max((m.uid for m in messages), default=0)
    uidnext = status.uidnext or (highest + 1 if highest else known.uidnext)
    # Every other change first: the compare-and-set below writes them in its own UPDATE (one
    # statement for the account); when it does not run or loses, the flush below writes them.
    account.sync_uidvalidity = status.uidvalidity
    account.last_synced_at = utcnow()
    record_success(account)
    won = False
    moves = known.uidnext is None or fetched.full or (uidnext or 0) > known.uidnext
    if uidnext is not None and uidnext != known.uidnext and moves:
        won = sync_store.advance_uidnext(state, account, known.uidnext, uidnext)
    state.session.flush()
    # New mail: arrived since the previous sync of the same mailbox (not the first sync, not
    # a resync after UIDVALIDITY changed), announced by the worker that moved UIDNEXT.
    arrived: list[MessageSummary] = []
    if won and not resync and known.uidvalidity is not None and known.uidnext is not None:
        arrived = [m for m in messages if m.uid >= known.uidnext]
    signals.announce(signals.messages_synced, actor, account=account, count=new)
    announced = announce_new_mail(account, arrived, actor, INBOX)
    return SyncResult(
        account_id=account.id,
        new=new,
        fetched=len(messages),
        removed=removed,
        full=fetched.full,
        uidvalidity=status.uidvalidity,
        uidnext=status.uidnext,
        uids=tuple(m.uid for m in messages),
        announced=tuple(m.uid for m in announced),
    )


def recent_messages(state: Runtime, account: MailAccount, limit: int = 50) -> list[SyncedMessage]:
    """The account's synced messages, newest first: one query."""
    query = (
        sa.select(SyncedMessage)
        .where(SyncedMessage.account_id == account.id)
        .order_by(SyncedMessage.uid.desc())
        .limit(limit)
    )
    return list(state.session.scalars(query))


# -- folders -----------------------------------------------------------------------------------


def current_mapping(account: MailAccount) -> dict[str, str | None]:
    return {role: getattr(account, f"folder_{role}") for role in ROLES}


def list_folders(
    state: Runtime, account: MailAccount, *, actor: Actor | None = None
) -> FolderListing:
    """The mailbox's folders (one LIST) with the stored and the suggested mapping.

    Raises :class:`SyncError` (recorded on the account) when the server cannot be reached or
    refuses the login.
    """
    require_action(state, actor, "manage", account)
    refuse_early(account)
    with open_mailbox(state, account) as client:
        folders = mailbox.list_folders(client)
    record_success(account)
    return FolderListing(
        folders=folders,
        suggested=mailbox.suggest_mapping(folders),
        current=current_mapping(account),
    )


def update_folders(
    state: Runtime,
    account: MailAccount,
    mapping: Mapping[str, str | None],
    *,
    actor: Actor | None = None,
    folders: list[str] | None = None,
) -> set[str]:
    """Store the folder mapping (``inbox``, ``sent``, ``archive``, ``trash``; ``None`` or ``""``
    clears one). Names are checked against ``folders`` (the listing the person chose from), or
    against a fresh LIST when not given. Audited; ``account_updated`` fires with the changed
    ``folder_*`` names. Returns them."""
    require_action(state, actor, "manage", account)
    unknown = set(mapping) - set(ROLES)
    if unknown:
        raise TypeError(f"unknown folder roles: {', '.join(sorted(unknown))}")
    if folders is None:
        folders = list_folders(state, account, actor=actor).names
    available = set(folders)
    problems = {}
    cleaned: dict[str, str | None] = {}
    for role, value in mapping.items():
        name = (value or "").strip() or None
        if name is not None and name not in available:
            problems[role] = gettext(
                "There is no folder named %(name)r in this mailbox.", name=name
            )
        cleaned[role] = name
    if problems:
        raise InvalidSettings(problems)
    changed = {
        f"folder_{role}"
        for role, name in cleaned.items()
        if getattr(account, f"folder_{role}") != name
    }
    if not changed:
        return changed
    for role, name in cleaned.items():
        setattr(account, f"folder_{role}", name)
    state.session.flush()
    audit.record(
        state.session, "update", actor=actor, account=account, detail=",".join(sorted(changed))
    )
    signals.announce(signals.account_updated, actor, account=account, changes=changed)
    return changed


__all__ = [
    "FolderListing",
    "SyncResult",
    "current_mapping",
    "list_folders",
    "recent_messages",
    "sync_recent",
    "update_folders",
]
