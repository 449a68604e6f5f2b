"""Plain job functions for RQ, Celery or any job system: they take ids and return plain dicts.

Each function works on one account by id, in an app context: the current one when there is one
(a Celery task wrapped in ``app.app_context()``, a test), otherwise the app that the process
builds from ``MAILCONNECT_APP_FACTORY`` (``"package.module:create_app"``, a factory called with
no arguments, or ``"package.module:app"``, an app object), once per process. Each call is its
own unit of work: it commits what it changed, or rolls back and re-raises; a ``SyncError`` or
``SendError`` is re-raised after committing the failure it recorded on the account.

Safe to run concurrently on many workers, and to run twice:

* :func:`refresh_account` refreshes under the account's row lock (oauth/refresh.py), so many
  workers refreshing one account cause one call to the provider;
* :func:`check_account` writes only the health fields and status (last writer wins; every
  writer wrote what it saw moments ago);
* :func:`sync_account` inserts messages by ``(account, uid)`` ignoring duplicates;
* :func:`send_message` sends at most once per (account, Message-ID): it claims the pair in the
  database before any SMTP command, so a job delivered twice skips; a retryable error (raised
  before the server took the data) releases the claim so a retry can send.

Return values are JSON-serialisable dicts (Celery's default serializer and RQ's result store).
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, has_app_context

from .exceptions import DeliveryUnknownError, InvalidMessage, NeedsReconnect, SendError, SyncError
from .health import check, check_many, keepalive_due, select_account_ids, summarize
from .models import MailAccount, SendClaim
from .oauth.refresh import fresh_access_token
from .runtime import Runtime
from .sending import send
from .sync import sync_recent

T = TypeVar("T")

#: Environment variable naming the host's app factory (or app) for worker processes.
APP_FACTORY_ENV = "MAILCONNECT_APP_FACTORY"


@functools.lru_cache(maxsize=4)
def load_app(spec: str) -> Flask:
    """The app for ``"module:attr"``: ``attr`` is a Flask app, or a factory returning one.

    Built once per process and spec (a worker's jobs share it; nothing per account is kept).
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise RuntimeError(f"{APP_FACTORY_ENV} must look like 'package.module:create_app'")
    found = getattr(importlib.import_module(module_name), attr)
    app = found if isinstance(found, Flask) else found()
    if isinstance(app, tuple):  # a factory returning (app, extras...)
        app = app[0]
    if not isinstance(app, Flask):
        raise RuntimeError(f"{spec} gave {type(app).__name__}, not a Flask app")
    if "mailconnect" not in app.extensions:
        raise RuntimeError(f"{spec} built an app without MailConnect")
    return app


@contextmanager
def app_context() -> Iterator[Flask]:
    """The current app context, or one of the app named by ``MAILCONNECT_APP_FACTORY``."""
    if has_app_context():
        yield current_app._get_current_object()  # type: ignore[attr-defined]
        return
    spec = os.environ.get(APP_FACTORY_ENV)
    if not spec:
        raise RuntimeError(
            "flask_mailconnect.jobs needs an app: run the job inside app.app_context(), or set "
            f"{APP_FACTORY_ENV}=package.module:create_app in the worker's environment."
        )
    app = load_app(spec)
    with app.app_context():
        yield app


def _run(account_id: int, work: Callable[[Runtime, MailAccount], T]) -> T | None:
    """``work`` on the account in an app context; commit, or roll back and re-raise.

    A :class:`SyncError` or :class:`SendError` is the outcome recorded on the account (status,
    last error, audit row: record_failure / mark_needs_reconnect only flush): that is committed
    before the error is re-raised, so the job system sees the failure and the database keeps it.
    """

    with app_context() as app:
        state: Runtime = app.extensions["mailconnect"]
        session = state.session
        try:
            account = session.get(MailAccount, int(account_id))
            if account is None:  # disconnected since the job was queued: nothing to do
                return None
            result = work(state, account)
            session.commit()
            return result
        except (SyncError, SendError):
            try:
                session.commit()  # keep the recorded failure
            except BaseException:
                session.rollback()
                raise
            raise
        except BaseException:
            session.rollback()
            raise


def _gone(account_id: int) -> dict[str, Any]:
    return {"account_id": int(account_id), "outcome": "skipped", "code": "deleted"}


def check_account(account_id: int) -> dict[str, Any]:
    """Health check of one account (:meth:`MailConnect.check`). Never raises for a failed
    check: the outcome is returned and recorded on the account."""

    result = _run(account_id, lambda state, account: check(state, account))
    if result is None:
        return _gone(account_id)
    return {
        "account_id": result.account_id,
        "outcome": result.outcome,
        "status": result.status,
        "code": result.code,
        "message": result.message,
        "retryable": result.retryable,
        "token_refreshed": result.token_refreshed,
        "results": [
            {"protocol": r.protocol.value, "ok": r.ok, "code": r.code} for r in result.results
        ],
    }


def refresh_account(account_id: int, *, force: bool = False) -> dict[str, Any]:
    """Refresh one OAuth account's access token when it is due: near expiry, unused for
    ``MAILCONNECT_KEEPALIVE_DAYS`` (keep-alive), or ``force``. Under the row lock.

    Returns ``outcome`` ``ok`` / ``skipped`` / ``needs_reconnect``; raises
    :class:`~flask_mailconnect.exceptions.TokenRefreshUnavailable` (retry later) and
    :class:`~flask_mailconnect.exceptions.TokenError` (configuration).
    """

    def work(state: Runtime, account: MailAccount) -> dict[str, Any]:
        base = {"account_id": account.id, "refreshed": False}
        if account.auth_method != "oauth2" or not account.active:
            return {**base, "outcome": "skipped", "code": "not_oauth_or_inactive"}
        before = account.token_refreshed_at
        try:
            fresh_access_token(state, account, force=force or keepalive_due(account))
        except NeedsReconnect as exc:
            return {**base, "outcome": "needs_reconnect", "code": exc.error or "token_revoked"}
        refreshed = account.token_refreshed_at != before
        return {**base, "outcome": "ok" if refreshed else "skipped", "refreshed": refreshed}

    return _run(account_id, work) or _gone(account_id)


def sync_account(account_id: int, *, limit: int = 50) -> dict[str, Any]:
    """Store the newest ``limit`` INBOX headers of one account (``sync_recent``)."""

    def work(state: Runtime, account: MailAccount) -> dict[str, Any]:
        result = sync_recent(state, account, limit=limit)
        data = asdict(result)
        data.pop("uids", None)
        return {"account_id": account.id, "outcome": "ok", **data}

    return _run(account_id, work) or _gone(account_id)


def _as_message(message: bytes | str | dict[str, Any]) -> EmailMessage:
    if isinstance(message, dict):  # {"to": ..., "subject": ..., "text": ..., "html": ...}
        built = EmailMessage()
        for header in ("to", "cc", "bcc", "reply_to", "subject"):
            value = message.get(header)
            if value:
                name = "Reply-To" if header == "reply_to" else header.capitalize()
                built[name] = ", ".join(value) if isinstance(value, list) else str(value)
        if message.get("message_id"):
            built["Message-ID"] = str(message["message_id"])
        built.set_content(str(message.get("text", "")))
        if message.get("html"):
            built.add_alternative(str(message["html"]), subtype="html")
        return built
    raw = message.encode() if isinstance(message, str) else message
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def send_message(account_id: int, message: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """Send one message through the account (``MailConnect.send``), at most once.

    ``message``: the RFC 5322 bytes (``msg.as_bytes()``), or a dict with ``to``, ``cc``,
    ``bcc``, ``reply_to``, ``subject``, ``text``, ``html`` and ``message_id``. It must carry a
    Message-ID (set one with ``email.utils.make_msgid()`` when enqueueing): the job claims
    (account, Message-ID) in the database before any SMTP command, so a redelivered or
    duplicated job answers ``{"outcome": "skipped", "code": "already_<state>"}`` instead of
    sending twice. A send that surely did not happen (a retryable error) releases the claim, so
    the job system's retry can send it; "delivery unknown" and permanent refusals keep it.
    """
    from sqlalchemy.exc import IntegrityError

    built = _as_message(message)
    message_id = str(built["Message-ID"] or "").strip()
    if not message_id:
        raise InvalidMessage(
            "A queued message needs a Message-ID (email.utils.make_msgid()) so that a job "
            "delivered twice cannot send it twice.",
            field="Message-ID",
        )

    def work(state: Runtime, account: MailAccount) -> dict[str, Any]:
        session = state.session
        claim = SendClaim(account_id=account.id, message_id=message_id[:255])
        session.add(claim)
        try:
            session.commit()  # visible to every other worker before the first SMTP command
        except IntegrityError:
            session.rollback()
            taken = session.scalar(
                sa.select(SendClaim.state).where(
                    SendClaim.account_id == account.id, SendClaim.message_id == message_id[:255]
                )
            )
            return {"account_id": account.id, "outcome": "skipped",
                    "code": f"already_{taken}", "message_id": message_id}  # fmt: skip
        try:
            result = send(state, account, built)
        except DeliveryUnknownError:
            claim.state = "unknown"
            raise
        except SendError as exc:
            if exc.retryable:
                session.delete(claim)  # nothing was sent: a retry may try again
            else:
                claim.state = "failed"
            raise
        claim.state = "sent"
        data: dict[str, Any] = {"account_id": account.id, "outcome": "ok"}
        for name in ("message_id", "accepted", "refused"):
            value = getattr(result, name, None)
            if value is not None:
                data[name] = list(value) if isinstance(value, (set, tuple)) else value
        return data

    return _run(account_id, work) or _gone(account_id)


def account_ids(*, scope: str | None = None, oauth_only: bool = False) -> list[int]:
    """Ids of active accounts (of an owner kind ``"project"`` or owner ``"project:7"``): what a
    periodic fan-out task enqueues one job for each."""

    with app_context() as app:
        parsed = None
        if scope:
            kind, _, ident = scope.partition(":")
            parsed = (kind, ident or None)
        state: Runtime = app.extensions["mailconnect"]
        ids = select_account_ids(state, scope=parsed, keepalive_only=oauth_only)
        state.session.commit()
        return ids


def check_all(*, scope: str | None = None, concurrency: int | None = None) -> dict[str, int]:
    """Check every active account in this worker, a few at a time (like ``flask mailconnect
    check``): one periodic job instead of one job per account. Returns the summary counts."""

    ids = account_ids(scope=scope)
    with app_context() as app:
        workers = concurrency or int(app.config["MAILCONNECT_CHECK_CONCURRENCY"])
        return summarize(check_many(ids, concurrency=workers, app=app))


__all__ = [
    "APP_FACTORY_ENV",
    "account_ids",
    "app_context",
    "check_account",
    "check_all",
    "load_app",
    "refresh_account",
    "send_message",
    "sync_account",
]
