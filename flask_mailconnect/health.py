"""Health checks and token keep-alive: is each account still able to sign in?

:func:`check` refreshes an OAuth token when due (or when it would otherwise lapse from
inactivity), logs in to SMTP and IMAP, and records the outcome on the account (last success,
last error code and remediation text, status) and in the audit trail (action ``check``). Like
accounts.py it never commits the host's session (token refreshes commit their own rows, see
oauth/refresh.py); :func:`check_many` (the CLI, and jobs) commits per account, or, one
worker at a time, the common outcomes of up to :data:`CHUNK` accounts in one batch.

Keep-alive (a forced refresh of a token unused for ``MAILCONNECT_KEEPALIVE_DAYS``, before its
provider lets it die) is in :mod:`.keepalive`; its names stay importable from here.

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
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from . import audit
from .accounts import require
from .accounts.status import (
    RECONNECT_CODES,
    CheckRecord,
    failure_message,
    record_checks,
    record_failure,
    record_success,
    status_after,
)
from .codes import KEY_UNAVAILABLE, RETRYABLE_CODES, SMTP_AUTH_DISABLED, TOKEN_REJECTED, message_for
from .credentials import accounts_with_passwords, server_settings
from .exceptions import EncryptionKeyError, NeedsReconnect, TokenError, TokenRefreshUnavailable
from .i18n import N_
from .keepalive import keep_alive, keepalive_due
from .models import AccountStatus, MailAccount, utcnow
from .oauth.refresh import fresh_access_token
from .owners import Actor
from .providers import Catalog, current_catalog
from .runtime import Runtime
from .transport.settings import ProtocolResult, TransportOptions
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
    return _check(state, account, actor=actor)


def _check(
    state: Runtime,
    account: MailAccount,
    *,
    actor: Actor | None = None,
    defer: list[CheckRecord] | None = None,
    shared: tuple[TransportOptions, Catalog] | None = None,
) -> CheckResult:
    """:func:`check`; with ``shared``, what the checks of a batch share; with ``defer``, a
    success or a plain failure (the common outcomes) is appended there for
    :func:`.record_checks` instead of changing the account and adding its audit row (the
    session stays clean); outcomes that mark the account, audit or signal on their own
    (rejected credentials, token errors) are recorded here as usual."""
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

    kept_alive = False
    smtp = imap = None
    before = account.token_refreshed_at
    try:
        kept_alive = keep_alive(state, account)
        smtp, imap = _log_in(state, account, shared)
        failed = [r for r in (smtp, imap) if r is not None and not r.ok]
        if not failed:
            code, message, retryable = "ok", "", False
            if defer is None:
                record_success(account)
        else:
            first = failed[0]
            code, message, retryable = first.code, first.message, first.code in RETRYABLE_CODES
            if defer is None or code in RECONNECT_CODES:
                record_failure(state, account, code, message)
                defer = None  # marked and audited one by one (it may fire a signal)
    except NeedsReconnect as exc:
        defer = None
        # tokens.py marked the account, audited and fired the signal (once), and committed.
        code, message, retryable = exc.error or "token_revoked", str(exc), False
    except TokenRefreshUnavailable as exc:  # the token endpoint unreachable: retry later
        defer = None
        code, message, retryable = TOKEN_UNAVAILABLE, str(exc), True
        record_failure(state, account, code, message)
    except TokenError as exc:  # the provider refused the client: configuration, not the user
        defer = None
        code, message, retryable = TOKEN_ERROR, str(exc), False
        record_failure(state, account, code, message)
    except EncryptionKeyError:
        # A documented state, not a crash. A lost server key is the operator's problem, not
        # the account's: its status and last error stay as they were (exceptions.
        # CredentialsUnavailable, docs/errors.rst); the result and the audit row say it.
        code, message, retryable = KEY_UNAVAILABLE, message_for(KEY_UNAVAILABLE), True
        defer = None  # not a health outcome: nothing on the account to write
    status = account.status if defer is None else status_after(account.status, code == "ok")
    if status == AccountStatus.NEEDS_RECONNECT:
        outcome = NEEDS_RECONNECT
    elif code == "ok":
        outcome = OK
    else:
        outcome = ERROR
    result = CheckResult(
        account.id, outcome, status, code=code, message=message, smtp=smtp, imap=imap,
        token_refreshed=account.token_refreshed_at != before, kept_alive=kept_alive,
        retryable=retryable, elapsed=time.monotonic() - started,
    )  # fmt: skip
    _record_check(state, account, result, actor=actor, defer=defer)
    return result


def _log_in(
    state: Runtime, account: MailAccount, shared: tuple[TransportOptions, Catalog] | None
) -> tuple[ProtocolResult, ProtocolResult | None]:
    """The SMTP and IMAP (when the account receives) logins of a check."""
    options, catalog = shared or (state.transport_options(), None)
    report = run_test(server_settings(state, account, catalog=catalog), options)
    if account.auth_method == "oauth2" and any(r.code == TOKEN_REJECTED for r in report.results):
        # The server refused a token that looked valid: refresh once and try again.
        fresh_access_token(state, account, force=True)
        report = run_test(server_settings(state, account, catalog=catalog), options)
    smtp = report.smtp
    if account.send_via == "graph" and smtp.code == SMTP_AUTH_DISABLED:
        smtp = replace(
            smtp, ok=True, code="ok",
            message=N_("SMTP AUTH is off for this mailbox; mail is sent through Microsoft Graph."),
        )  # fmt: skip
    return smtp, report.imap


def _record_check(
    state: Runtime,
    account: MailAccount,
    result: CheckResult,
    *,
    actor: Actor | None,
    defer: list[CheckRecord] | None,
) -> None:
    """The check's audit row; with ``defer``, its :class:`CheckRecord` for the batch instead."""
    detail = " ".join(f"{r.protocol.value}={r.code}" for r in result.results)
    if result.kept_alive:
        detail = f"{detail} keepalive".strip()
    if defer is None:
        audit.record(state.session, "check", actor=actor, account=account, ok=result.ok,
                     detail=detail or result.code)  # fmt: skip
        return
    ok, code = result.code == "ok", result.code
    message = "" if ok else failure_message(account, code, result.message)
    defer.append(CheckRecord(account.id, account.email, account.owner_kind, account.owner_id,
                             ok=ok, code=code, message=message, detail=detail or code))  # fmt: skip


# -- many accounts --------------------------------------------------------------------------


#: Accounts checked one after another in one app context (one catalogue load) and, for
#: checks, recorded in one batch, when one worker runs. A batch costs ~2 ms of CPU whatever
#: its size (a SELECT, two writes, a commit); larger batches would spread that thinner, but the
#: CLI's progress and the saved results arrive per batch, and the batch's transaction stays
#: open through its network checks: 20 keeps both short.
CHUNK = 20
#: The same per worker thread when several run: small, so the workers stay evenly loaded and
#: results flow; each batch's common outcomes are still written together.
WORKER_BATCH = 5


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
    engine = state.engine()
    return isinstance(engine.pool, (StaticPool, SingletonThreadPool))


def _crashed(account_id: int, exc: BaseException) -> CheckResult:
    log.exception("Checking account %s crashed", account_id, exc_info=exc)
    return CheckResult(
        account_id, ERROR, "unknown", code=CRASHED,
        message=f"The check crashed ({type(exc).__name__}); see the log.",
    )  # fmt: skip


def _run_chunk(
    app: Flask, account_ids: list[int], work: Callable[[Runtime, MailAccount], CheckResult]
) -> list[CheckResult]:
    """Run ``work`` for a few accounts one after another in one app context: the provider
    catalogue is built once for them (once per request, as pages do) instead of once per
    account. Each account still has its own session and commit."""
    with app.app_context():
        return [_run_here(app, account_id, work) for account_id in account_ids]


def _shared(state: Runtime) -> tuple[TransportOptions, Catalog] | None:
    """What the checks of one batch (one app context) share, made once for all of them."""
    try:
        return state.transport_options(), current_catalog()
    except Exception:  # noqa: BLE001 - each account then fails (crashes) on its own, as before
        return None


def _run_checks(app: Flask, account_ids: list[int]) -> list[CheckResult]:
    """:func:`check` for a few accounts in one app context and one session, with the common
    outcomes written together at the end (:func:`.record_checks`: one UPDATE per outcome kind
    and one audit INSERT, executed with all rows, and one commit), instead of an ORM flush and
    a commit per account. One SELECT reads them all, their sealed passwords included. OAuth
    accounts, and outcomes that mark the account (rejected credentials, token errors), commit
    one by one as in :func:`_run_chunk`."""
    state: Runtime = app.extensions["mailconnect"]
    with app.app_context():
        session = state.session
        # OAuth and marked accounts commit mid-batch: expiring the batch's rows (read a moment
        # ago) would make each later account read its row and password again.
        batch = state.db.session()
        expire_on_commit, batch.expire_on_commit = batch.expire_on_commit, False
        results: list[CheckResult] = []
        pending: list[CheckRecord] = []
        try:
            # The passwords come with the rows (sealed; decrypted one at a time where used).
            found = session.scalars(accounts_with_passwords(), {"ids": account_ids})
            accounts = {account.id: account for account in found}
            shared = _shared(state)
            for account_id in account_ids:
                account = accounts.get(account_id)
                results.append(_check_one(state, account_id, account, pending, shared))
            if pending:
                try:
                    record_checks(session, pending, now=utcnow())
                    session.commit()
                except Exception as exc:
                    session.rollback()
                    lost = {r.account_id for r in pending}
                    results = [_crashed(r.account_id, exc) if r.account_id in lost else r
                               for r in results]  # fmt: skip
        finally:
            batch.expire_on_commit = expire_on_commit  # for code that kept the session
            state.db.session.remove()
        return results


def _check_one(
    state: Runtime,
    account_id: int,
    account: MailAccount | None,
    pending: list[CheckRecord],
    shared: tuple[TransportOptions, Catalog] | None,
) -> CheckResult:
    if account is None:  # disconnected meanwhile
        return CheckResult(account_id, SKIPPED, "deleted", code="deleted", skipped_reason="deleted")
    session = state.session
    try:
        defer = pending if account.auth_method != "oauth2" else None
        result = _check(state, account, defer=defer, shared=shared)
        if session.new or session.dirty or session.deleted:  # recorded on the account itself
            session.commit()
        return result
    except Exception as exc:
        session.rollback()
        return _crashed(account_id, exc)


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

    Workers take a few accounts at a time (:data:`WORKER_BATCH`; :data:`CHUNK` with one
    worker), each batch in its own app context and session; with the default ``work`` the
    common outcomes of a batch are written and committed together (:func:`_run_checks`),
    others are committed account by account. A single-connection engine (in-memory SQLite)
    runs one at a time.
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
            chunk = ids[first : first + CHUNK]
            yield from (
                _run_checks(app, chunk) if work is check_work else _run_chunk(app, chunk, work)
            )
        return
    cancel = threading.Event()
    batched = work is check_work
    size = WORKER_BATCH if batched else 1
    with ThreadPoolExecutor(concurrency, thread_name_prefix="mailconnect-check") as pool:

        def task(chunk: list[int]) -> list[CheckResult]:
            if cancel.is_set():
                return [CheckResult(i, SKIPPED, "unknown", code="cancelled",
                                    skipped_reason="cancelled") for i in chunk]  # fmt: skip
            if batched:
                return _run_checks(app, chunk)
            return _run_chunk(app, chunk, work)

        # At most two batches per worker in flight: a long list never becomes a long queue
        # of futures (and their results) held in memory, and results flow as they finish.
        pending = (ids[i : i + size] for i in range(0, len(ids), size))
        window = 2 * concurrency
        running = {pool.submit(task, c) for c in itertools.islice(pending, window)}
        try:
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield from future.result()
                running |= {pool.submit(task, c) for c in itertools.islice(pending, len(done))}
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
