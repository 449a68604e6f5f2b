"""Where synced headers are stored: the SQL half of :mod:`flask_mailconnect.sync`.

Rows are written with ONE cached statement per batch: an insert-or-ignore on the unique
``(account_id, uid)`` (``ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL, ``INSERT IGNORE``
on MariaDB/MySQL, a savepoint per row elsewhere) built once per dialect and executed with the
batch's parameters (``executemany``), so SQLAlchemy compiles it once per process instead of
once per sync as a multi-VALUES statement built from the rows would. Many workers syncing one
account at once never duplicate a row, and only the worker that inserted a message counts it.

Nothing here talks to the server or commits: :func:`~flask_mailconnect.sync.sync_recent` calls
these with what it fetched, and the caller owns the transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from .models import MailAccount, SyncedMessage
from .runtime import Runtime
from .transport.mailbox import MessageSummary

#: Rows per statement (each executes as one batched INSERT).
BATCH = 500

_TABLE: Any = SyncedMessage.__table__
_UNIQUE = ["account_id", "uid"]
#: One statement per dialect, built on its first use (importing only that dialect's module:
#: importing every dialect up front costs ~20 ms at ``import flask_mailconnect``), then kept so
#: SQLAlchemy's compiled cache serves every later sync. ``None``: no insert-or-ignore form.
_INSERTS: dict[str, Any] = {}


def _build_insert(dialect: str) -> Any:
    """The insert-or-ignore statement for ``dialect`` (see the module doc), or None."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        # RETURNING: psycopg reports no rowcount for a batched insert; the returned UIDs count.
        return (
            pg_insert(_TABLE).on_conflict_do_nothing(index_elements=_UNIQUE).returning(_TABLE.c.uid)
        )
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(_TABLE).on_conflict_do_nothing(index_elements=_UNIQUE)
    if dialect in ("mysql", "mariadb"):
        return sa.insert(_TABLE).prefix_with("IGNORE")
    return None


def _insert_for(dialect: str) -> Any:
    """:func:`_build_insert`, once per dialect (a race builds an equal statement twice)."""
    try:
        return _INSERTS[dialect]
    except KeyError:
        stmt = _INSERTS[dialect] = _build_insert(dialect)
        return stmt


def row(account_id: int, m: MessageSummary) -> dict[str, Any]:
    """The SyncedMessage row of one fetched message."""
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


def insert_ignoring_duplicates(state: Runtime, rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping any whose (account_id, uid) exists; returns how many went in."""
    if not rows:
        return 0
    session = state.session
    stmt = _insert_for(state.engine().dialect.name)  # our tables' database, bind or not
    inserted = 0
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        if stmt is None:  # any other database: a savepoint per row
            for one in batch:
                try:
                    with session.begin_nested():
                        session.execute(sa.insert(SyncedMessage).values(one))
                    inserted += 1
                except sa.exc.IntegrityError:
                    pass
            continue
        result: Any = session.execute(stmt, batch)
        if result.returns_rows:
            inserted += len(result.all())
        else:
            inserted += max(result.rowcount or 0, 0)
    return inserted


def stored_uids(state: Runtime, account: MailAccount) -> list[int]:
    """The account's stored UIDs, newest first."""
    query = (
        sa.select(SyncedMessage.uid)
        .where(SyncedMessage.account_id == account.id)
        .order_by(SyncedMessage.uid.desc())
    )
    return list(state.session.scalars(query))


def detach_all(state: Runtime, account: MailAccount) -> int:
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


def trim(state: Runtime, account: MailAccount, limit: int) -> int:
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


def apply_flags(
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


def _pending_columns(account: MailAccount) -> dict[Any, Any]:
    """The account's changed column attributes not yet flushed (ORM attribute: new value).
    Reading the history emits no SQL, even for an expired attribute."""
    state = sa.inspect(account)
    changes: dict[Any, Any] = {}
    for prop in state.mapper.column_attrs:
        added = state.attrs[prop.key].history.added
        if added and prop.key != "sync_uidnext":
            changes[prop.key] = added[0]
    return changes


@functools.cache
def _set_on_update(mapper: Any) -> list[str]:
    """The attributes of ``mapper``'s class (the account's: a host may map a subclass) that
    an UPDATE sets by itself (``onupdate``, ``server_onupdate``)."""
    return [
        prop.key
        for prop in mapper.column_attrs
        if any(c.onupdate is not None or c.server_onupdate is not None for c in prop.columns)
    ]


def advance_uidnext(state: Runtime, account: MailAccount, seen: int | None, new: int) -> bool:
    """Move the account's stored UIDNEXT from ``seen`` to ``new`` if nobody moved it yet.

    One conditional UPDATE (compare-and-set): of several workers syncing the account at once,
    exactly one sees its update take effect, and that one announces the new mail. The row
    lock the UPDATE takes is held until the caller commits, so a concurrent worker's UPDATE
    waits, then finds the value changed and matches nothing.

    The account's other unflushed changes (last synced, success) go in the same UPDATE, so
    the worker that wins writes the account once; a worker that loses leaves them to the
    caller's flush (one more UPDATE, as a flush before the compare-and-set would have cost).
    """
    session = state.session
    column = MailAccount.sync_uidnext
    changes = _pending_columns(account)
    values = {getattr(MailAccount, key): value for key, value in changes.items()}
    values[column] = new
    with session.no_autoflush:  # the changes ride along below instead of a flush of their own
        result: Any = session.execute(
            sa.update(MailAccount)
            .where(
                MailAccount.id == account.id, column.is_(None) if seen is None else column == seen
            )
            .values(values)
            .execution_options(synchronize_session=False)
        )
    set_committed_value(account, "sync_uidnext", new)
    won = bool(result.rowcount)
    if won:
        for key, value in changes.items():  # written: nothing left for the flush to send
            set_committed_value(account, key, value)
        # Columns the statement set itself (onupdate: updated_at), not on this object: read
        # them anew when next used.
        refreshed = _set_on_update(sa.inspect(account).mapper)
        if refreshed:  # an empty list would expire every attribute
            session.expire(account, refreshed)
    return won


__all__ = [
    "BATCH",
    "advance_uidnext",
    "apply_flags",
    "detach_all",
    "insert_ignoring_duplicates",
    "row",
    "stored_uids",
    "trim",
]
