"""Connecting with a password, testing, personal settings, disconnecting, listing."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from .. import audit, signals
from ..columns import seal
from ..exceptions import (
    AccountLimitReached,
    ConnectionTestFailed,
    PermissionDenied,
    TooManyTests,
)
from ..i18n import gettext
from ..models import AccountStatus, AuditEvent, MailAccount, SyncedMessage, utcnow
from ..oauth.revoke import prepare_revocation
from ..owners import Actor, Owner
from ..providers import current_catalog, detect_provider, with_hints
from ..runtime import Runtime
from ..scopes import check_owner
from ..signatures import sanitize_signature, signature_to_text
from ..transport.settings import ConnectionReport, ServerSettings
from ..transport.tester import test_connection as run_test
from ..validation import clean_display_name, normalize_email, validate_settings


def require(state: Runtime, actor: Actor | None, action: str, owner: Owner) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` may ``action`` on ``owner``'s account.

    ``actor=None`` means trusted host code (the Python API without an actor); views always pass
    the signed-in user, and refuse anonymous visitors before they get here.
    """
    if actor is not None and not state.policy.can(actor, action, owner):
        raise PermissionDenied(f"{actor.label} may not {action} accounts of {owner[0]}")


def _settings_for_test(state: Runtime, settings: ServerSettings) -> ServerSettings:
    options = state.transport_options()
    validate_settings(settings, smtp_ports=options.smtp_ports, imap_ports=options.imap_ports)
    return with_hints(settings)


def test_for_owner(
    state: Runtime, *, owner: Owner, settings: ServerSettings, actor: Actor | None
) -> ConnectionReport:
    """Test connection on behalf of ``owner`` (the page's button), recorded in the audit trail.

    Each test logs in to a server the user named, so a signed-in user could use the button to
    try passwords against any mail server: tests per actor are limited
    (``MAILCONNECT_TESTS_PER_HOUR``), counted from the audit trail so every worker agrees.
    """
    check_owner(owner)
    require(state, actor, "manage", owner)
    _check_test_budget(state, actor)
    report = run_test(_settings_for_test(state, settings), state.transport_options())
    audit.record(
        state.session, "test", actor=actor, owner=owner, email=settings.email,
        ok=report.ok, detail=_report_detail(report),
    )  # fmt: skip
    return report


def _check_test_budget(state: Runtime, actor: Actor | None) -> None:
    limit = current_app.config["MAILCONNECT_TESTS_PER_HOUR"]
    if actor is None or limit is None:
        return
    since = utcnow() - timedelta(hours=1)
    used = state.session.scalar(
        sa.select(sa.func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == "test",
            AuditEvent.actor_id == actor.id,
            AuditEvent.created_at >= since,
        )
    )
    if (used or 0) >= limit:
        raise TooManyTests(
            gettext(
                "You have run %(num)d connection tests in the last hour. Wait a while, then "
                "check the settings and try again.",
                num=limit,
            )
        )


def _report_detail(report: ConnectionReport) -> str:
    return " ".join(f"{r.protocol.value}={r.code}" for r in report.results)


def _tested(state: Runtime, *, owner: Owner, settings: ServerSettings, actor: Actor | None) -> None:
    report = test_for_owner(state, owner=owner, settings=settings, actor=actor)
    if not report.ok:
        raise ConnectionTestFailed(report)


def _apply_servers(account: MailAccount, settings: ServerSettings) -> None:
    account.username = settings.username
    account.password = seal(settings.password)  # no key: EncryptionKeyError here, not at flush
    account.smtp_host = settings.smtp_host.strip().rstrip(".").lower()
    account.smtp_port = settings.smtp_port
    account.smtp_security = settings.smtp_security
    if settings.receives:
        account.imap_host = (settings.imap_host or "").strip().rstrip(".").lower()
        account.imap_port = settings.imap_port
        account.imap_security = settings.imap_security
    else:
        account.imap_host = account.imap_port = account.imap_security = None
    now = utcnow()
    account.status = AccountStatus.CONNECTED
    account.last_checked_at = account.last_success_at = now
    account.last_error_code = account.last_error_message = None


def _forget_password(state: Runtime, account: MailAccount) -> None:
    """Drop the plaintext from the instance once it is flushed (encrypted) to the database.

    The instance goes on to signal receivers and templates; the column is deferred with
    raiseload, so reading it there raises instead of revealing it.
    """
    state.session.expire(account, ["password"])


def _provider_key(settings: ServerSettings, email: str) -> str:
    known = current_catalog().get(settings.provider)
    if known is not None:
        return known.key
    return detect_provider(email, use_mx=False)[0].key


def _find(state: Runtime, owner: Owner, email: str) -> MailAccount | None:
    query = sa.select(MailAccount).where(
        MailAccount.owner_kind == owner[0],
        MailAccount.owner_id == owner[1],
        sa.func.lower(MailAccount.email) == email.lower(),
    )
    return state.session.scalars(query).first()


def connect_manual(
    state: Runtime,
    *,
    owner: Owner,
    settings: ServerSettings,
    actor: Actor | None,
    display_name: str | None = None,
) -> MailAccount:
    """Test ``settings``; when both protocols pass, store a password account for ``owner``.

    Raises :class:`InvalidSettings` before any network traffic when the settings cannot work,
    and :class:`ConnectionTestFailed` (with the report) when the test fails. When ``owner``
    already has this address, that account is signed in again instead (settings kept).
    Raises :class:`UnknownOwner` for an owner kind nobody declared (a typo such as
    ``"projct"`` would otherwise leave an orphan account), even for an admin.
    """
    check_owner(owner)
    require(state, actor, "manage", owner)
    _settings_for_test(state, settings)  # InvalidSettings before any network traffic
    display_name = clean_display_name(display_name)
    email = normalize_email(settings.email)
    existing = _find(state, owner, email)
    if existing is not None:
        return reconnect_manual(state, existing, settings=settings, actor=actor)
    check_limit(state, owner)
    _tested(state, owner=owner, settings=settings, actor=actor)
    account = MailAccount(
        owner_kind=owner[0],
        owner_id=owner[1],
        provider=_provider_key(settings, email),
        auth_method="password",
        email=email,
        display_name=display_name,
        connected_by=actor.id if actor else None,
        is_default=default_account(state, owner) is None,
    )
    _apply_servers(account, settings)
    state.session.add(account)
    state.session.flush()
    _forget_password(state, account)
    audit.record(state.session, "connect", actor=actor, account=account)
    signals.announce(signals.account_connected, actor, account=account)
    return account


def reconnect_manual(
    state: Runtime, account: MailAccount, *, settings: ServerSettings, actor: Actor | None
) -> MailAccount:
    """New password (or servers) for an existing account after a passing test; keeps the rest."""
    require(state, actor, "manage", account.owner)
    _settings_for_test(state, settings)
    if normalize_email(settings.email).lower() != account.email.lower():
        settings = replace(settings, email=account.email)  # the address is the account's identity
    _tested(state, owner=account.owner, settings=settings, actor=actor)
    _apply_servers(account, settings)
    account.provider = _provider_key(settings, account.email)
    state.session.flush()
    _forget_password(state, account)
    audit.record(state.session, "reconnect", actor=actor, account=account)
    signals.announce(signals.account_updated, actor, account=account, changes={"credentials"})
    return account


EDITABLE = ("display_name", "signature_html", "notify_email", "notify_mobile", "is_default",
            "notify_new_mail", "notify_new_mail_mobile")  # fmt: skip


def update_account(
    state: Runtime, account: MailAccount, *, actor: Actor | None, **changes: Any
) -> set[str]:
    """Change the account's personal settings; fires ``account_updated`` when anything changed."""
    require(state, actor, "manage", account.owner)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    if "signature_html" in changes:
        limit = current_app.config["MAILCONNECT_SIGNATURE_MAX_LENGTH"]
        clean = sanitize_signature(str(changes["signature_html"] or "")[:limit])
        changes["signature_html"] = clean
    if "display_name" in changes:
        changes["display_name"] = clean_display_name(changes["display_name"])
    successor = None
    if "is_default" in changes:
        changes["is_default"] = bool(changes["is_default"])
        if account.is_default and not changes["is_default"]:
            # An owner with accounts always has a default: unticking hands it to the next one,
            # and the only account stays default.
            successor = _next_default(state, account)
            if successor is None:
                del changes["is_default"]
    changed = {k for k, v in changes.items() if getattr(account, k) != v}
    for name in changed:
        setattr(account, name, changes[name])
    if "signature_html" in changed:
        account.signature_text = signature_to_text(account.signature_html)
    if "is_default" in changed and account.is_default:
        _clear_other_defaults(state, account)
    if successor is not None and "is_default" in changed:
        successor.is_default = True
    if not changed:
        return changed
    state.session.flush()
    audit.record(
        state.session, "update", actor=actor, account=account, detail=",".join(sorted(changed))
    )
    signals.announce(signals.account_updated, actor, account=account, changes=changed)
    return changed


def _next_default(state: Runtime, account: MailAccount) -> MailAccount | None:
    others = [a for a in _owned(state, account.owner) if a.id != account.id]
    return others[0] if others else None


def _clear_other_defaults(state: Runtime, account: MailAccount) -> None:
    state.session.execute(
        sa.update(MailAccount)
        .where(
            MailAccount.owner_kind == account.owner_kind,
            MailAccount.owner_id == account.owner_id,
            MailAccount.id != account.id,
        )
        .values(is_default=False)
        .execution_options(synchronize_session="fetch")
    )


def disconnect(state: Runtime, account: MailAccount, *, actor: Actor | None) -> None:
    """Delete the account with its credentials; synced mail goes too unless the host pinned it.

    The signal receives the deleted account (its attributes stay readable) after the flush.
    """
    require(state, actor, "manage", account.owner)
    revoke = None
    if account.auth_method == "oauth2":  # revoked at the provider once the row is gone
        revoke = prepare_revocation(state, account)
    session = state.session
    session.execute(
        sa.delete(SyncedMessage).where(
            SyncedMessage.account_id == account.id, SyncedMessage.pinned.is_(False)
        )
    )
    session.execute(
        sa.update(SyncedMessage)
        .where(SyncedMessage.account_id == account.id)
        .values(account_id=None)
        .execution_options(synchronize_session=False)
    )
    was_default = account.is_default
    audit.record(session, "disconnect", actor=actor, account=account)
    session.delete(account)
    session.flush()
    if revoke is not None:  # after the delete: a failed delete leaves a working account
        revoke()
    if was_default:
        # The account itself is gone now. An orphan's owner (a kind no longer declared) is
        # read, never refused: admins clean such accounts up.
        found = _owned(state, account.owner)
        successor = found[0] if found else None
        if successor is not None:
            successor.is_default = True
            session.flush()
    signals.announce(signals.account_disconnected, actor, account=account)


def accounts_for(state: Runtime, owner: Owner) -> list[MailAccount]:
    """``owner``'s accounts, the default first; :class:`UnknownOwner` for an owner kind
    nobody declared (the host asked about something that cannot have accounts)."""
    return _owned(state, check_owner(owner))


@functools.cache
def owned_query() -> sa.Select[MailAccount]:
    """An owner's accounts, the default first. Built once, on first use (at import it would
    configure the mappers, which start-up should not pay): a statement made per call costs its
    construction and its cache key each time, about as much as running it on a settings
    page."""
    return (
        sa.select(MailAccount)
        .where(
            MailAccount.owner_kind == sa.bindparam("owner_kind"),
            MailAccount.owner_id == sa.bindparam("owner_id"),
        )
        .order_by(MailAccount.is_default.desc(), MailAccount.id)
    )


def _owned(state: Runtime, owner: Owner) -> list[MailAccount]:
    query = owned_query()
    return list(state.session.scalars(query, {"owner_kind": owner[0], "owner_id": owner[1]}))


def default_account(state: Runtime, owner: Owner) -> MailAccount | None:
    found = accounts_for(state, owner)
    return found[0] if found else None


# -- limits (MAILCONNECT_MAX_ACCOUNTS) ---------------------------------------------------------


def account_limit(owner: Owner) -> int | None:
    """``MAILCONNECT_MAX_ACCOUNTS`` for ``owner``'s kind: an int, or ``None`` for no limit."""
    limit = current_app.config.get("MAILCONNECT_MAX_ACCOUNTS")
    if isinstance(limit, dict):
        limit = limit.get(owner[0])
    return None if limit is None else int(limit)


def count_accounts(state: Runtime, owner: Owner) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(MailAccount)
        .where(MailAccount.owner_kind == owner[0], MailAccount.owner_id == owner[1])
    )
    return int(state.session.scalar(query) or 0)


def check_limit(state: Runtime, owner: Owner, *, have: int | None = None) -> None:
    """Raise :class:`AccountLimitReached` when ``owner`` may not get one more account.

    Every connect path calls this before creating an account (reconnecting never does), so
    it also refuses an owner no account may belong to (:class:`UnknownOwner`).
    """
    check_owner(owner)
    limit = account_limit(owner)
    if limit is None:
        return
    if have is None:
        have = count_accounts(state, owner)
    if have >= limit:
        raise AccountLimitReached(owner, limit)
