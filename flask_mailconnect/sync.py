"""Recent mail and folder mapping: the account side of :mod:`.transport.mailbox`.

:func:`sync_recent` keeps the newest ``limit`` INBOX messages' headers in
:class:`~flask_mailconnect.models.SyncedMessage`:

- first run (or after UIDVALIDITY changed): EXAMINE INBOX, then ONE ``FETCH`` of the newest
  ``limit`` messages (headers, flags, a snippet);
- afterwards: nothing new when UIDNEXT did not move; else ONE ``UID FETCH <stored uidnext>:*``
  for the new messages, plus one ``UID FETCH <oldest kept>:<newest kept> (FLAGS)`` that updates
  read/unread and drops messages deleted on the server;
- rows are inserted with insert-or-ignore on the unique ``(account_id, uid)`` (``ON CONFLICT DO
  NOTHING`` on SQLite and PostgreSQL, ``INSERT IGNORE`` on MariaDB/MySQL, a savepoint per row
  elsewhere), so many workers syncing one account at once never duplicate a row, and only the
  worker that inserted a message counts it;
- at most ``limit`` rows are kept: older unpinned ones are deleted. Pinned rows (the host linked
  them to a record) are never deleted; when UIDVALIDITY changes their UIDs mean nothing any
  more, so they are kept with the account reference cleared (like disconnect does).

Failures are recorded on the account through :mod:`.credentials` (credentials refused:
``needs_reconnect`` and the signal; anything else: ``error``) and raised as
:class:`~flask_mailconnect.exceptions.SyncError`, never as an imaplib exception. Like
accounts.py, nothing here commits: the caller owns the transaction (commit after a
``SyncError`` too, to keep the recorded failure).
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from imapclient import IMAPClient
from imapclient import exceptions as imap_errors

from . import audit, credentials, signals
from . import codes as errors
from .accounts import require
from .accounts.status import record_failure, record_success
from .codes import message_for
from .exceptions import (
    ConnectionFailed,
    InvalidSettings,
    NeedsReconnect,
    SyncError,
    TokenError,
    TokenRefreshUnavailable,
)
from .models import AccountStatus, MailAccount, SyncedMessage, utcnow
from .owners import Actor
from .providers import current_catalog
from .runtime import Runtime
from .transport import mailbox
from .transport.imap import open_imap
from .transport.mailbox import ROLES, FolderInfo, MessageSummary

log = logging.getLogger("flask_mailconnect.sync")

INBOX = "INBOX"
#: Rows per INSERT statement.
BATCH = 100


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


# -- talking to the server ---------------------------------------------------------------------


def _require(state: Runtime, actor: Actor | None, action: str, account: MailAccount) -> None:

    require(state, actor, action, account.owner)


def _refuse_early(account: MailAccount) -> None:
    """Accounts we must not log in with: no IMAP, inactive, or waiting for their owner."""
    if not account.receives:
        raise SyncError(
            "not_receiving",
            "This account is set up for sending only: turn on receiving (IMAP) to see its mail.",
        )
    if not account.active:
        raise SyncError("inactive", "This account is inactive. An administrator can reactivate it.")
    if account.status in (AccountStatus.NEEDS_RECONNECT, AccountStatus.PENDING_AUTHORIZATION):
        # Retrying a refused password can lock the mailbox at the provider: wait for the owner.
        text = account.last_error_message or message_for(
            errors.AUTH_FAILED, current_catalog().for_account(account).hints
        )
        raise SyncError(account.last_error_code or "needs_reconnect", text)


def _code_for(exc: BaseException) -> str:
    if isinstance(exc, ConnectionFailed):
        return exc.code
    if isinstance(exc, TimeoutError):
        return errors.TIMEOUT
    if isinstance(exc, (imaplib.IMAP4.abort, OSError, ssl.SSLError)):
        return errors.CONNECTION_LOST
    if isinstance(exc, imap_errors.IMAPClientError | imaplib.IMAP4.error):
        return errors.MAILBOX_UNAVAILABLE
    return errors.PROTOCOL_ERROR


def _fail(state: Runtime, account: MailAccount, code: str, message: str = "") -> SyncError:
    message = message or message_for(code, current_catalog().for_account(account).hints)
    record_failure(state, account, code, message)
    state.session.flush()
    return SyncError(code, message)


@contextlib.contextmanager
def _mailbox(state: Runtime, account: MailAccount) -> Iterator[IMAPClient]:
    """A logged-in IMAP client for ``account``; every failure becomes a recorded SyncError."""

    try:
        settings = credentials.server_settings(state, account)
    except NeedsReconnect as exc:  # already marked needs_reconnect (and signalled) by tokens.py
        raise SyncError(exc.error or "token_revoked", str(exc)) from None
    except TokenRefreshUnavailable as exc:
        raise _fail(state, account, "token_unavailable", str(exc)) from None
    except TokenError as exc:
        raise _fail(state, account, exc.error or "token_error", str(exc)) from None
    try:
        client = open_imap(settings, state.transport_options())
    except ConnectionFailed as exc:
        log.info("sync of account %s: %s (%s)", account.id, exc.code, exc.detail)
        raise _fail(state, account, exc.code, exc.message) from None
    try:
        yield client
    except SyncError:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    except Exception as exc:
        code = _code_for(exc)
        log.info("sync of account %s failed: %s (%s)", account.id, code, type(exc).__name__)
        with contextlib.suppress(Exception):
            client.shutdown()
        raise _fail(state, account, code) from None
    except BaseException:  # KeyboardInterrupt, a job system's timeout: never leak the socket
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    else:
        with contextlib.suppress(Exception):
            client.logout()


# -- recent mail -------------------------------------------------------------------------------


def _row(account_id: int, m: MessageSummary) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "uid": m.uid,
        "message_id": m.message_id,
        "sender": m.sender,
        "subject": m.subject,
        "sent_at": m.date,
        "snippet": m.snippet,
        "flags": " ".join(m.flags)[:255],
        "pinned": False,
    }


def _insert_statement(dialect: str, batch: list[dict[str, Any]]) -> Any:
    """INSERT that skips rows whose (account_id, uid) exists, or None for other databases."""
    table: Any = SyncedMessage.__table__
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return (
            sqlite.insert(table)
            .values(batch)
            .on_conflict_do_nothing(index_elements=["account_id", "uid"])
        )
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return (
            postgresql.insert(table)
            .values(batch)
            .on_conflict_do_nothing(index_elements=["account_id", "uid"])
        )
    if dialect in ("mysql", "mariadb"):
        return sa.insert(table).values(batch).prefix_with("IGNORE")
    return None


def _insert_ignoring_duplicates(state: Runtime, rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping any whose (account_id, uid) exists; returns how many went in."""
    session = state.session
    dialect = session.get_bind().dialect.name
    inserted = 0
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        stmt = _insert_statement(dialect, batch)
        if stmt is not None:
            result: Any = session.execute(stmt)
            inserted += max(result.rowcount or 0, 0)
            continue
        for row in batch:  # any other database: a savepoint per row
            try:
                with session.begin_nested():
                    session.execute(sa.insert(SyncedMessage).values(row))
                inserted += 1
            except sa.exc.IntegrityError:
                pass
    return inserted


def _stored_uids(state: Runtime, account: MailAccount) -> list[int]:
    query = (
        sa.select(SyncedMessage.uid)
        .where(SyncedMessage.account_id == account.id)
        .order_by(SyncedMessage.uid.desc())
    )
    return list(state.session.scalars(query))


def _detach_all(state: Runtime, account: MailAccount) -> int:
    """UIDVALIDITY changed: drop unpinned rows, keep pinned ones without the account."""
    session = state.session
    removed = session.execute(
        sa.delete(SyncedMessage).where(
            SyncedMessage.account_id == account.id, SyncedMessage.pinned.is_(False)
        )
    ).rowcount  # type: ignore[attr-defined]
    session.execute(
        sa.update(SyncedMessage)
        .where(SyncedMessage.account_id == account.id)
        .values(account_id=None)
        .execution_options(synchronize_session=False)
    )
    return int(removed or 0)


def _trim(state: Runtime, account: MailAccount, limit: int) -> int:
    """Delete unpinned rows older than the newest ``limit`` (pinned ones always stay)."""
    cutoff = state.session.scalar(
        sa.select(SyncedMessage.uid)
        .where(SyncedMessage.account_id == account.id)
        .order_by(SyncedMessage.uid.desc())
        .offset(limit - 1)
        .limit(1)
    )
    if cutoff is None:
        return 0
    result = state.session.execute(
        sa.delete(SyncedMessage).where(
            SyncedMessage.account_id == account.id,
            SyncedMessage.pinned.is_(False),
            SyncedMessage.uid < cutoff,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _apply_flags(
    state: Runtime, account: MailAccount, lowest: int, highest: int, flags: Mapping[int, tuple]
) -> int:
    """Update flags of kept rows in ``lowest:highest``; delete unpinned rows the server lost."""
    session = state.session
    rows = session.execute(
        sa.select(
            SyncedMessage.id, SyncedMessage.uid, SyncedMessage.flags, SyncedMessage.pinned
        ).where(
            SyncedMessage.account_id == account.id,
            SyncedMessage.uid >= lowest,
            SyncedMessage.uid <= highest,
        )
    ).all()
    changed = []
    gone = []
    for row_id, uid, stored, pinned in rows:
        if uid not in flags:
            if not pinned:
                gone.append(row_id)
            continue
        now = " ".join(flags[uid])[:255]
        if now != stored:
            changed.append({"id": row_id, "flags": now})
    if changed:
        session.execute(sa.update(SyncedMessage), changed)
    if gone:
        session.execute(sa.delete(SyncedMessage).where(SyncedMessage.id.in_(gone)))
    return len(gone)


def sync_recent(
    state: Runtime, account: MailAccount, *, limit: int = 50, actor: Actor | None = None
) -> SyncResult:
    """Bring the account's newest ``limit`` INBOX messages into SyncedMessage (module doc)."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    _require(state, actor, "read", account)  # reading someone's mail: not for their admin
    _refuse_early(account)
    stored = _stored_uids(state, account)
    with _mailbox(state, account) as client:
        status = mailbox.examine(client, INBOX)
        full = (
            account.sync_uidvalidity is None
            or account.sync_uidvalidity != status.uidvalidity
            or account.sync_uidnext is None
            or not stored
            # Fewer kept than wanted while the server has more (a larger limit, deletions):
            # fetch the newest again; rows already stored are skipped by the insert.
            or len(stored) < min(limit, status.exists)
        )
        flags: dict[int, tuple[str, ...]] | None = None
        if full:
            fetched = mailbox.fetch_newest(client, status, limit)
        else:
            since = int(account.sync_uidnext or 1)
            if status.uidnext is not None and status.uidnext <= since:
                fetched = []  # nothing arrived: no header fetch at all
            elif status.uidnext is not None and status.uidnext - since > limit:
                fetched = mailbox.fetch_newest(client, status, limit)  # a flood: newest only
            else:
                fetched = mailbox.fetch_from_uid(client, since)
            kept_low, kept_high = min(stored), max(stored)
            flags = mailbox.fetch_flags(client, kept_low, kept_high)
    removed = 0
    if full and account.sync_uidvalidity not in (None, status.uidvalidity):
        log.info("account %s: UIDVALIDITY changed, resyncing", account.id)
        removed += _detach_all(state, account)
    if flags is not None:
        removed += _apply_flags(state, account, min(stored), max(stored), flags)
    new = _insert_ignoring_duplicates(state, [_row(account.id, m) for m in fetched[:limit]])
    removed += _trim(state, account, limit)
    highest = max((m.uid for m in fetched), default=0)
    uidnext = status.uidnext or (highest + 1 if highest else account.sync_uidnext)
    account.sync_uidvalidity = status.uidvalidity
    if account.sync_uidnext is None or full or (uidnext or 0) > account.sync_uidnext:
        account.sync_uidnext = uidnext
    account.last_synced_at = utcnow()
    record_success(account)
    state.session.flush()
    result = SyncResult(
        account_id=account.id,
        new=new,
        fetched=len(fetched),
        removed=removed,
        full=full,
        uidvalidity=status.uidvalidity,
        uidnext=status.uidnext,
        uids=tuple(m.uid for m in fetched),
    )
    signals.announce(signals.messages_synced, actor, account=account, count=new)
    return result


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
    _require(state, actor, "manage", account)
    _refuse_early(account)
    with _mailbox(state, account) as client:
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
    _require(state, actor, "manage", account)
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
            problems[role] = f"There is no folder named {name!r} in this mailbox."
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
