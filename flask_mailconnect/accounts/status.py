"""An account's health and status: the one writer of status changes, their audit rows and signals.

Logins, sends, syncs and health checks report their outcome here (:func:`record_success`,
:func:`record_failure`); credentials that stopped working move the account to
``needs_reconnect`` (:func:`mark_needs_reconnect`), audited and announced once. (A refused grant
during an OAuth token refresh is written by :mod:`flask_mailconnect.account_events`, in the
refresh's own transaction.) Nothing here commits the host's session.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .. import audit, signals
from ..codes import TOKEN_SAVE_FAILED, message_for
from ..models import AccountStatus, AuditEvent, MailAccount, utcnow
from ..owners import Actor
from ..providers import current_catalog
from ..runtime import Runtime

#: Codes meaning the stored credentials no longer work: only the owner can fix them.
RECONNECT_CODES = frozenset(
    {"auth_failed", "token_rejected", "token_revoked", "no_refresh_token", TOKEN_SAVE_FAILED}
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
    message = failure_message(account, code, message)
    if code in RECONNECT_CODES:
        return mark_needs_reconnect(state, account, code=code, message=message)
    account.last_checked_at = utcnow()
    account.last_error_code = code
    account.last_error_message = message
    if account.status == AccountStatus.CONNECTED:
        account.status = AccountStatus.ERROR
    return False


def failure_message(account: MailAccount, code: str, message: str = "") -> str:
    """The message :func:`record_failure` stores: ``message``, else the code's own in words with
    the account's provider's hints."""
    return message or message_for(code, current_catalog().for_account(account).hints)


def status_after(status: str, ok: bool) -> str:
    """The status :func:`record_success` (``ok``) or a plain :func:`record_failure` leaves."""
    if ok and status == AccountStatus.ERROR:
        return AccountStatus.CONNECTED
    if not ok and status == AccountStatus.CONNECTED:
        return AccountStatus.ERROR
    return status


@dataclass(frozen=True)
class CheckRecord:
    """One health check's outcome, written later with others by :func:`record_checks`: a
    success, or a failure whose code is not in :data:`RECONNECT_CODES` (those mark the account
    and fire a signal, one by one, through :func:`record_failure`)."""

    account_id: int
    email: str
    owner_kind: str
    owner_id: str
    ok: bool
    code: str
    message: str
    detail: str


_ACCOUNTS = cast(sa.Table, MailAccount.__table__)
_AUDIT = cast(sa.Table, AuditEvent.__table__)


def _health_update(ok: bool) -> sa.Update:
    """One UPDATE for all the accounts of a batch that share an outcome (``b_ids``, an
    expanding IN list: one statement and one parameter set, instead of an executemany whose
    rows SQLAlchemy processes one by one). The status moves only from the state the outcome
    can move it out of, decided by the database at write time: a check never undoes a
    ``needs_reconnect`` or a deactivation another worker committed meanwhile."""
    col = _ACCOUNTS.c
    values: dict[str, object] = {
        "last_checked_at": sa.bindparam("b_now"),
        "last_error_code": sa.bindparam("b_code"),
        "last_error_message": sa.bindparam("b_message"),
    }
    if ok:
        values["last_success_at"] = sa.bindparam("b_now")
        values["status"] = sa.case(
            (col.status == AccountStatus.ERROR, AccountStatus.CONNECTED), else_=col.status
        )
    else:
        values["status"] = sa.case(
            (col.status == AccountStatus.CONNECTED, AccountStatus.ERROR), else_=col.status
        )
    ids: sa.BindParameter[list[int]] = sa.bindparam("b_ids", expanding=True)
    return sa.update(_ACCOUNTS).where(col.id.in_(ids)).values(values)


_UPDATES = {True: _health_update(True), False: _health_update(False)}
_AUDIT_INSERT = sa.insert(_AUDIT)


def record_checks(session: Session, records: Sequence[CheckRecord], *, now: datetime) -> None:
    """Write many checks' outcomes: one UPDATE per distinct outcome (all successes together;
    failures grouped by code and message, usually one group) and one audit INSERT executed
    with all rows (Core, no ORM unit of work). The same columns and audit row as
    :func:`record_success` / :func:`record_failure` and ``audit.record`` per account. Nothing
    here commits."""
    if not records:
        return
    groups: dict[tuple[bool, str | None, str | None], list[int]] = {}
    for r in records:
        key = (True, None, None) if r.ok else (False, r.code, r.message)
        groups.setdefault(key, []).append(r.account_id)
    # Our tables' bind (a host may keep them in a database of their own), not the default.
    connection = session.connection(bind_arguments={"mapper": MailAccount})
    for (ok, code, message), ids in groups.items():
        connection.execute(
            _UPDATES[ok], {"b_ids": ids, "b_now": now, "b_code": code, "b_message": message}
        )
    connection.execute(
        _AUDIT_INSERT,
        [
            {
                "created_at": now,
                "action": "check",
                "outcome": "ok" if r.ok else "failed",
                "actor_id": None,
                "actor_label": "system",
                "account_id": r.account_id,
                "account_email": r.email[:320],
                "owner_kind": r.owner_kind,
                "owner_id": r.owner_id,
                "detail": r.detail[:2000],
                "remote_addr": None,
            }
            for r in records
        ],
    )


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
