"""Health checks and token keep-alive: is each account still able to sign in?

:func:`check` refreshes an OAuth token when due (or when it would otherwise lapse from
inactivity), logs in to SMTP and IMAP, and records the outcome on the account (last success,
last error code and remediation text, status) and in the audit trail (action ``check``). Like
accounts.py it never commits the host's session (token refreshes commit their own rows, see
oauth/refresh.py); :func:`check_many` (the CLI, and jobs) commits after each account.

Keep-alive: a refresh token that is never used dies (Microsoft: 90 days; Google: 6 months, or 7
days for apps in testing mode). A login with the access token does not count as use, so an
account whose ``token_refreshed_at`` is older than ``MAILCONNECT_KEEPALIVE_DAYS`` for its
provider gets a forced refresh (``fresh_access_token(force=True)``) well ahead of that.

Nothing here keeps state in module globals: every call works on the current app.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from . import audit
from .accounts import require
from .accounts.status import record_failure, record_success
from .codes import (
    KEY_UNAVAILABLE,
    RETRYABLE_CODES,
    SMTP_AUTH_DISABLED,
    TOKEN_REJECTED,
    message_for,
)
from .credentials import server_settings
from .exceptions import (
    EncryptionKeyError,
    NeedsReconnect,
    TokenError,
    TokenRefreshUnavailable,
)
from .models import AccountStatus, MailAccount, utcnow
from .oauth.refresh import fresh_access_token
from .owners import Actor
from .providers import current_catalog
from .runtime import Runtime
from .transport.settings import ProtocolResult
from .transport.tester import test_connection as run_test

log = logging.getLogger("flask_mailconnect.health")

#: ``code`` of a check whose token endpoint could not be reached (retry later).
TOKEN_UNAVAILABLE = "token_refresh_unavailable"
#: ``code`` of a check whose provider refused the client (configuration, not the user).
TOKEN_ERROR = "token_error"
#: ``code`` of a check that crashed (a bug or a database error); only :func:`check_many` makes it.
CRASHED = "crashed"

#: Outcomes, as counted by the CLI summary.
OK, ERROR, NEEDS_RECONNECT, SKIPPED = "ok", "error", "needs_reconnect", "skipped"


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` found for one account.

    ``outcome`` is ``ok``, ``error`` (may recover by itself or by an admin: see ``retryable``),
    ``needs_reconnect`` (the owner must sign in again) or ``skipped`` (inactive, awaiting
    authorization, or already needing reconnection: no network traffic). ``code`` and
    ``message`` are the stable code and the remediation text also stored on the account;
    ``smtp`` / ``imap`` the per-protocol results when a login was attempted.
    """

    account_id: int
    outcome: str
    status: str
    code: str = "ok"
    message: str = ""
    smtp: ProtocolResult | None = None
    imap: ProtocolResult | None = None
    token_refreshed: bool = False
    kept_alive: bool = False
    retryable: bool = False
    skipped_reason: str | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    @property
    def results(self) -> list[ProtocolResult]:
        return [r for r in (self.smtp, self.imap) if r is not None]


# -- keep-alive -----------------------------------------------------------------------------


def keepalive_days(account: MailAccount) -> float | None:
    """Days the account's refresh token may stay unused: ``MAILCONNECT_KEEPALIVE_DAYS`` for
    its provider's key (else its ``"*"``), else the provider's own rule."""
    provider = current_catalog().for_account(account)
    table = current_app.config["MAILCONNECT_KEEPALIVE_DAYS"] or {}
    days = table.get(provider.key, table.get("*", provider.keepalive_days))
    return None if days is None else float(days)


def keepalive_due(account: MailAccount, now: datetime | None = None) -> bool:
    """Has this OAuth account's refresh token gone unused for its provider's keep-alive age?"""
    if account.auth_method != "oauth2":
        return False
    days = keepalive_days(account)
    if days is None:
        return False
    last = account.token_refreshed_at or account.created_at
    if last is None:
        return True
    return (now or utcnow()) - last >= timedelta(days=days)


def keep_alive(state: Runtime, account: MailAccount) -> bool:
    """Refresh the token now if it is due by inactivity; True when a refresh happened here.

    Raises what :func:`~flask_mailconnect.oauth.refresh.fresh_access_token` raises.
    """
    if not keepalive_due(account):
        return False

    before = account.token_refreshed_at
    fresh_access_token(state, account, force=True)
    return account.token_refreshed_at != before


# -- one account ----------------------------------------------------------------------------


def _skip_reason(account: MailAccount) -> str | None:
    if not account.active:
        return "inactive"
    if account.status == AccountStatus.PENDING_AUTHORIZATION:
        return "pending_authorization"
    if account.status == AccountStatus.NEEDS_RECONNECT:
        # Logging in again with rejected credentials cannot help and may lock the mailbox.
        return "needs_reconnect"
    return None


def check(state: Runtime, account: MailAccount, *, actor: Actor | None = None) -> CheckResult:
    """Refresh the token if needed, log in to SMTP and IMAP, record the outcome. Never commits.

    Never raises for a failed check: the outcome is in the result and on the account. With an
    ``actor``, raises :class:`PermissionDenied` unless the actor may manage the account.
    """
    if actor is not None:
        require(state, actor, "manage", account.owner)
    started = time.monotonic()
    skip = _skip_reason(account)
    if skip is not None:
        outcome = NEEDS_RECONNECT if skip == "needs_reconnect" else SKIPPED
        return CheckResult(
            account.id, outcome, account.status, code=account.last_error_code or skip,
            message=account.last_error_message or "", skipped_reason=skip,
        )  # fmt: skip

    kept_alive = refreshed = False
    smtp = imap = None
    before = account.token_refreshed_at
    try:
        kept_alive = keep_alive(state, account)
        report = run_test(server_settings(state, account), state.transport_options())
        if account.auth_method == "oauth2" and any(
            r.code == TOKEN_REJECTED for r in report.results
        ):
            # The server refused a token that looked valid: refresh once and try again.

            fresh_access_token(state, account, force=True)
            report = run_test(server_settings(state, account), state.transport_options())
        smtp, imap = report.smtp, report.imap
        if account.send_via == "graph" and smtp.code == SMTP_AUTH_DISABLED:
            smtp = replace(
                smtp, ok=True, code="ok",
                message="SMTP AUTH is off for this mailbox; mail is sent through Microsoft Graph.",
            )  # fmt: skip
        failed = [r for r in (smtp, imap) if r is not None and not r.ok]
        if not failed:
            record_success(account)
            code, message, retryable = "ok", "", False
        else:
            first = failed[0]
            code, message, retryable = first.code, first.message, first.code in RETRYABLE_CODES
            record_failure(state, account, code, message)
    except NeedsReconnect as exc:
        # tokens.py marked the account, audited and fired the signal (once), and committed.
        code, message, retryable = exc.error or "token_revoked", str(exc), False
    except TokenRefreshUnavailable as exc:
        code, message, retryable = TOKEN_UNAVAILABLE, str(exc), True
        record_failure(state, account, code, message)
    except TokenError as exc:
        code, message, retryable = TOKEN_ERROR, str(exc), False
        record_failure(state, account, code, message)
    except EncryptionKeyError:  # a documented state, not a crash: the account is unchanged
        code, message, retryable = KEY_UNAVAILABLE, message_for(KEY_UNAVAILABLE), True
        record_failure(state, account, code, message)
    refreshed = account.token_refreshed_at != before
    if account.status == AccountStatus.NEEDS_RECONNECT:
        outcome = NEEDS_RECONNECT
    elif code == "ok":
        outcome = OK
    else:
        outcome = ERROR
    detail = " ".join(f"{r.protocol.value}={r.code}" for r in (smtp, imap) if r is not None)
    if kept_alive:
        detail = f"{detail} keepalive".strip()
    audit.record(
        state.session, "check", actor=actor, account=account, ok=outcome == OK,
        detail=detail or code,
    )  # fmt: skip
    return CheckResult(
        account.id, outcome, account.status, code=code, message=message, smtp=smtp, imap=imap,
        token_refreshed=refreshed, kept_alive=kept_alive, retryable=retryable,
        elapsed=time.monotonic() - started,
    )  # fmt: skip


# -- many accounts --------------------------------------------------------------------------


#: Accounts checked one after another in one app context (one catalogue load).
CHUNK = 20


def select_account_ids(
    state: Runtime,
    *,
    scope: tuple[str, str | None] | None = None,
    account_id: int | None = None,
    include_inactive: bool = False,
    keepalive_only: bool = False,
) -> list[int]:
    """Ids of the accounts to check: all, one owner kind (``("project", None)``), one owner
    (``("project", "7")``) or one account. Inactive accounts are left out unless asked."""
    query = sa.select(MailAccount.id).order_by(MailAccount.id)
    if account_id is not None:
        query = query.where(MailAccount.id == account_id)
    if scope is not None:
        query = query.where(MailAccount.owner_kind == scope[0])
        if scope[1] is not None:
            query = query.where(MailAccount.owner_id == scope[1])
    if not include_inactive:
        query = query.where(MailAccount.active.is_(True))
    if keepalive_only:
        query = query.where(
            MailAccount.auth_method == "oauth2",
            MailAccount.status.in_([AccountStatus.CONNECTED, AccountStatus.ERROR]),
        )
    return list(state.session.scalars(query))


def _single_connection(state: Runtime) -> bool:
    engine = state.db.engine
    return isinstance(engine.pool, (StaticPool, SingletonThreadPool))


def _crashed(account_id: int, exc: BaseException) -> CheckResult:
    log.exception("Checking account %s crashed", account_id, exc_info=exc)
    return CheckResult(
        account_id, ERROR, "unknown", code=CRASHED,
        message=f"The check crashed ({type(exc).__name__}); see the log.",
    )  # fmt: skip


def run_one(
    app: Flask,
    account_id: int,
    work: Callable[[Runtime, MailAccount], CheckResult],
) -> CheckResult:
    """Run ``work`` for one account in an app context and session of its own; commit after."""
    with app.app_context():
        return _run_here(app, account_id, work)


def _run_chunk(
    app: Flask, account_ids: list[int], work: Callable[[Runtime, MailAccount], CheckResult]
) -> list[CheckResult]:
    """Run ``work`` for a few accounts one after another in one app context: the provider
    catalogue is built once for them (once per request, as pages do) instead of once per
    account. Each account still has its own session and commit."""
    with app.app_context():
        return [_run_here(app, account_id, work) for account_id in account_ids]


def _run_here(
    app: Flask, account_id: int, work: Callable[[Runtime, MailAccount], CheckResult]
) -> CheckResult:
    """One account in the current app context: its own session, committed after."""
    state: Runtime = app.extensions["mailconnect"]
    session = state.session
    try:
        account = session.get(MailAccount, account_id)
        if account is None:  # disconnected meanwhile
            return CheckResult(
                account_id, SKIPPED, "deleted", code="deleted", skipped_reason="deleted"
            )
        result = work(state, account)
        session.commit()
        return result
    except Exception as exc:
        session.rollback()
        return _crashed(account_id, exc)
    finally:
        state.db.session.remove()


def check_work(state: Runtime, account: MailAccount) -> CheckResult:
    return check(state, account)


def keepalive_work(state: Runtime, account: MailAccount) -> CheckResult:
    """Refresh the token if due by inactivity; no logins. Outcome ``ok``/``skipped``/..."""

    skip = _skip_reason(account)
    if skip is not None or account.auth_method != "oauth2":
        return CheckResult(
            account.id, SKIPPED, account.status, code=skip or "not_oauth", skipped_reason=skip
        )
    try:
        if not keep_alive(state, account):
            return CheckResult(account.id, SKIPPED, account.status, code="not_due",
                               skipped_reason="not_due")  # fmt: skip
    except NeedsReconnect as exc:
        return CheckResult(account.id, NEEDS_RECONNECT, account.status,
                           code=exc.error or "token_revoked", message=str(exc))  # fmt: skip
    except TokenRefreshUnavailable as exc:
        return CheckResult(account.id, ERROR, account.status, code=TOKEN_UNAVAILABLE,
                           message=str(exc), retryable=True)  # fmt: skip
    except TokenError as exc:
        return CheckResult(account.id, ERROR, account.status, code=TOKEN_ERROR, message=str(exc))
    audit.record(state.session, "keepalive", actor=None, account=account)
    return CheckResult(account.id, OK, account.status, token_refreshed=True, kept_alive=True)


def check_many(
    account_ids: Iterable[int],
    *,
    concurrency: int = 4,
    work: Callable[[Runtime, MailAccount], CheckResult] = check_work,
    app: Flask | None = None,
) -> Iterator[CheckResult]:
    """Check accounts with at most ``concurrency`` at a time; yields results as they finish.

    Each account runs in a worker thread with its own app context and session and is committed
    on its own. A single-connection engine (in-memory SQLite) runs one at a time.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    state: Runtime = app.extensions["mailconnect"]
    ids = list(account_ids)
    with app.app_context():
        single = _single_connection(state)
    if single:
        concurrency = 1
    concurrency = max(1, int(concurrency))
    if concurrency == 1:
        for first in range(0, len(ids), CHUNK):
            yield from _run_chunk(app, ids[first : first + CHUNK], work)
        return
    cancel = threading.Event()
    with ThreadPoolExecutor(concurrency, thread_name_prefix="mailconnect-check") as pool:

        def task(account_id: int) -> CheckResult:
            if cancel.is_set():
                return CheckResult(account_id, SKIPPED, "unknown", code="cancelled",
                                   skipped_reason="cancelled")  # fmt: skip
            return run_one(app, account_id, work)

        # At most two accounts per worker in flight: a long list never becomes a long queue
        # of futures (and their results) held in memory, and results flow as they finish.
        pending = iter(ids)
        window = 2 * concurrency
        running = {pool.submit(task, i) for i in itertools.islice(pending, window)}
        try:
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                running |= {pool.submit(task, i) for i in itertools.islice(pending, len(done))}
        finally:
            cancel.set()


def summarize(results: Iterable[CheckResult]) -> dict[str, Any]:
    counts = {OK: 0, ERROR: 0, NEEDS_RECONNECT: 0, SKIPPED: 0}
    refreshed = crashed = 0
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        refreshed += result.kept_alive
        crashed += result.code == CRASHED
    return {**counts, "kept_alive": refreshed, "crashed": crashed}


__all__ = [
    "CheckResult",
    "check",
    "check_many",
    "keep_alive",
    "keepalive_due",
    "select_account_ids",
    "summarize",
]
