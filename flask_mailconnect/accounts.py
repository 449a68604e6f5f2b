"""The one place that changes accounts: connect, test, update, disconnect.

Every function checks the actor's permission (when there is an actor: the Python API called
without one is trusted host code), writes the audit trail and sends the signal. None of them
commits: they add to and flush the host's session, and the caller commits (the views do), so a
host can wrap our changes and its own in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app

from . import audit, signals
from .exceptions import (
    AccountLimitReached,
    ConnectionTestFailed,
    MailConnectError,
    NoSenderAccount,
    PermissionDenied,
    TooManyTests,
)
from .models import AccountStatus, AuditEvent, MailAccount, SyncedMessage, utcnow
from .oauth.flow import GRAPH_MAIL_SEND, OAuthFlowError, OAuthGrant
from .providers import current_presets, detect_provider
from .scopes import ORGANIZATION, ORGANIZATION_OWNER, USER, Actor, Owner, load_owner
from .signatures import sanitize_signature, signature_to_text
from .transport.errors import SMTP_AUTH_DISABLED
from .transport.settings import ConnectionReport, ServerSettings
from .transport.tester import test_connection as run_test
from .validation import clean_display_name, normalize_email, validate_settings

if TYPE_CHECKING:
    from .extension import _State
    from .oauth.providers import OAuthProvider


def require(state: _State, actor: Actor | None, action: str, owner: Owner) -> None:
    """Raise :class:`PermissionDenied` unless ``actor`` may ``action`` on ``owner``'s account.

    ``actor=None`` means trusted host code (the Python API without an actor); views always pass
    the signed-in user, and refuse anonymous visitors before they get here.
    """
    if actor is not None and not state.policy.can(actor, action, owner):
        raise PermissionDenied(f"{actor.label} may not {action} accounts of {owner[0]}")


def _settings_for_test(state: _State, settings: ServerSettings) -> ServerSettings:
    options = state.transport_options()
    validate_settings(settings, smtp_ports=options.smtp_ports, imap_ports=options.imap_ports)
    return settings


def test_for_owner(
    state: _State, *, owner: Owner, settings: ServerSettings, actor: Actor | None
) -> ConnectionReport:
    """Test connection on behalf of ``owner`` (the page's button), recorded in the audit trail.

    Each test logs in to a server the user named, so a signed-in user could use the button to
    try passwords against any mail server: tests per actor are limited
    (``MAILCONNECT_TESTS_PER_HOUR``), counted from the audit trail so every worker agrees.
    """
    require(state, actor, "manage", owner)
    _check_test_budget(state, actor)
    report = run_test(_settings_for_test(state, settings), state.transport_options())
    audit.record(
        state.session, "test", actor=actor, owner=owner, email=settings.email,
        ok=report.ok, detail=_report_detail(report),
    )  # fmt: skip
    return report


def _check_test_budget(state: _State, actor: Actor | None) -> None:
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
            f"You have run {limit} connection tests in the last hour. "
            "Wait a while, then check the settings and try again."
        )


def _report_detail(report: ConnectionReport) -> str:
    return " ".join(f"{r.protocol.value}={r.code}" for r in report.results)


def _tested(state: _State, *, owner: Owner, settings: ServerSettings, actor: Actor | None) -> None:
    report = test_for_owner(state, owner=owner, settings=settings, actor=actor)
    if not report.ok:
        raise ConnectionTestFailed(report)


def _apply_servers(account: MailAccount, settings: ServerSettings) -> None:
    account.username = settings.username
    account.password = settings.password
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


def _forget_password(state: _State, account: MailAccount) -> None:
    """Drop the plaintext from the instance once it is flushed (encrypted) to the database.

    The instance goes on to signal receivers and templates; the column is deferred with
    raiseload, so reading it there raises instead of revealing it.
    """
    state.session.expire(account, ["password"])


def load_password(state: _State, account: MailAccount) -> str | None:
    """Decrypt and return the account's stored password (for the transport layer only)."""
    query = sa.select(MailAccount.password).where(MailAccount.id == account.id)
    return state.session.scalar(query)


def _provider_key(settings: ServerSettings, email: str) -> str:
    presets = current_presets()
    if settings.provider in presets:
        return settings.provider
    return detect_provider(email, presets).key


def _find(state: _State, owner: Owner, email: str) -> MailAccount | None:
    query = sa.select(MailAccount).where(
        MailAccount.owner_kind == owner[0],
        MailAccount.owner_id == owner[1],
        sa.func.lower(MailAccount.email) == email.lower(),
    )
    return state.session.scalars(query).first()


def connect_manual(
    state: _State,
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
    """
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
    signals.account_connected.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account=account,
        actor=actor.user if actor else None,
    )
    return account


def reconnect_manual(
    state: _State, account: MailAccount, *, settings: ServerSettings, actor: Actor | None
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
    signals.account_updated.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account=account,
        actor=actor.user if actor else None,
        changes={"credentials"},
    )
    return account


EDITABLE = ("display_name", "signature_html", "notify_email", "notify_mobile", "is_default")


def update_account(
    state: _State, account: MailAccount, *, actor: Actor | None, **changes: Any
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
    signals.account_updated.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account=account,
        actor=actor.user if actor else None,
        changes=changed,
    )
    return changed


def _next_default(state: _State, account: MailAccount) -> MailAccount | None:
    others = [a for a in accounts_for(state, account.owner) if a.id != account.id]
    return others[0] if others else None


def _clear_other_defaults(state: _State, account: MailAccount) -> None:
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


def disconnect(state: _State, account: MailAccount, *, actor: Actor | None) -> None:
    """Delete the account with its credentials; synced mail goes too unless the host pinned it.

    The signal receives the deleted account (its attributes stay readable) after the flush.
    """
    require(state, actor, "manage", account.owner)
    revoke = None
    if account.auth_method == "oauth2":  # revoked at the provider once the row is gone
        from .oauth.tokens import prepare_revocation

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
        successor = default_account(state, account.owner)  # the account itself is gone now
        if successor is not None:
            successor.is_default = True
            session.flush()
    signals.account_disconnected.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account=account,
        actor=actor.user if actor else None,
    )


def accounts_for(state: _State, owner: Owner) -> list[MailAccount]:
    query = (
        sa.select(MailAccount)
        .where(MailAccount.owner_kind == owner[0], MailAccount.owner_id == owner[1])
        .order_by(MailAccount.is_default.desc(), MailAccount.id)
    )
    return list(state.session.scalars(query))


def default_account(state: _State, owner: Owner) -> MailAccount | None:
    found = accounts_for(state, owner)
    return found[0] if found else None


# -- admin: active flag and hand-over (issue 4) -----------------------------------------------


def set_active(state: _State, account: MailAccount, active: bool, *, actor: Actor | None) -> bool:
    """ "Active: no" keeps the account (credentials, settings) but stops its use for sending.

    Needs ``manage`` on the owner. Returns whether anything changed; audited as ``deactivate``
    or ``reactivate`` and announced with ``account_updated`` (``changes={"active"}``).
    """
    require(state, actor, "manage", account.owner)
    if account.active == active:
        return False
    account.active = active
    state.session.flush()
    audit.record(state.session, "reactivate" if active else "deactivate", actor=actor,
                 account=account)  # fmt: skip
    signals.account_updated.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account=account,
        actor=actor.user if actor else None,
        changes={"active"},
    )
    return True


def create_handover(
    state: _State, *, owner: Owner, provider: str, email: str, actor: Actor | None
) -> MailAccount:
    """An OAuth account for ``owner`` with no credentials, status ``pending_authorization``.

    The admin picks the provider and the address; the owner then sees "Complete authorization"
    on their page and gives consent at the provider themselves, so nobody types a credential
    for someone else. Raises :class:`InvalidSettings` for an unknown provider or a bad address,
    and for an address ``owner`` already has; ``ValueError`` for an owner that is not a person
    (only the owner completes a hand-over, so it exists for personal accounts only).
    """
    from .exceptions import InvalidSettings
    from .oauth.providers import current_oauth_providers

    require(state, actor, "manage", owner)
    if owner[0] != USER:  # the consent is its owner's alone (Policy.can_complete_handover)
        raise ValueError("a hand-over is for a person's own (user) account")
    oauth = current_oauth_providers().get(provider)
    if oauth is None:
        raise InvalidSettings({"provider": "Choose a provider that signs in with OAuth 2.0."})
    # Only the shape is checked here: at consent the provider must vouch for this very address
    # (reconnect_oauth refuses another one), as it does for lab names such as ``.test``.
    local, _, domain = email.strip().rpartition("@")
    if (
        not local
        or "." not in domain
        or len(email) > 320
        or any(ch.isspace() or ord(ch) < 0x20 for ch in email.strip())
    ):
        raise InvalidSettings({"email": "Enter an email address such as name@example.com."})
    email = f"{local}@{domain.lower()}"
    if _find(state, owner, email) is not None:
        raise InvalidSettings({"email": "This person already has an account with this address."})
    check_limit(state, owner)
    servers = current_presets(include_disabled=True).get(oauth.servers)
    smtp = servers.smtp if servers else None
    imap = servers.imap if servers else None
    account = MailAccount(
        owner_kind=owner[0],
        owner_id=owner[1],
        provider=provider,  # OAuth accounts store the OAuth provider's key
        auth_method="oauth2",
        email=email,
        username=email,
        smtp_host=smtp.host if smtp else "",
        smtp_port=smtp.port if smtp else 587,
        smtp_security=smtp.security if smtp else "starttls",
        imap_host=imap.host if imap else None,
        imap_port=imap.port if imap else None,
        imap_security=imap.security if imap else None,
        status=AccountStatus.PENDING_AUTHORIZATION,
        connected_by=actor.id if actor else None,
        is_default=default_account(state, owner) is None,
    )
    state.session.add(account)
    state.session.flush()
    audit.record(state.session, "handover", actor=actor, account=account, detail=provider)
    return account


# -- limits, sender resolution, scope-wide actions (issue 4) ---------------------------------


def account_limit(owner: Owner) -> int | None:
    """``MAILCONNECT_MAX_ACCOUNTS`` for ``owner``'s kind: an int, or ``None`` for no limit."""
    limit = current_app.config.get("MAILCONNECT_MAX_ACCOUNTS")
    if isinstance(limit, dict):
        limit = limit.get(owner[0])
    return None if limit is None else int(limit)


def count_accounts(state: _State, owner: Owner) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(MailAccount)
        .where(MailAccount.owner_kind == owner[0], MailAccount.owner_id == owner[1])
    )
    return int(state.session.scalar(query) or 0)


def check_limit(state: _State, owner: Owner, *, have: int | None = None) -> None:
    """Raise :class:`AccountLimitReached` when ``owner`` may not get one more account.

    Every connect path calls this before creating an account (reconnecting never does).
    """
    limit = account_limit(owner)
    if limit is None:
        return
    if have is None:
        have = count_accounts(state, owner)
    if have >= limit:
        raise AccountLimitReached(owner, limit)


def accounts_by_owner(state: _State, owners: Iterable[Owner]) -> dict[Owner, list[MailAccount]]:
    """Accounts of many owners in one query (list pages: never a query per row).

    Each list is in ``accounts_for`` order: the default first.
    """
    wanted = list(dict.fromkeys(owners))
    found: dict[Owner, list[MailAccount]] = {o: [] for o in wanted}
    by_kind: dict[str, list[str]] = {}
    for kind, ident in wanted:
        by_kind.setdefault(kind, []).append(ident)
    if not by_kind:
        return found
    condition = sa.or_(
        *(
            sa.and_(MailAccount.owner_kind == kind, MailAccount.owner_id.in_(ids))
            for kind, ids in by_kind.items()
        )
    )
    query = (
        sa.select(MailAccount)
        .where(condition)
        .order_by(MailAccount.is_default.desc(), MailAccount.id)
    )
    for account in state.session.scalars(query):
        found.setdefault(account.owner, []).append(account)
    return found


def _sender_steps(actor: Actor | None, owner: Owner | None) -> list[tuple[str, Owner]]:
    order = current_app.config.get("MAILCONNECT_SENDER_ORDER") or []
    steps: list[tuple[str, Owner]] = []
    for step in order:
        if step == "scope":
            if owner is not None:
                steps.append((step, owner))
        elif step == ORGANIZATION:
            steps.append((step, ORGANIZATION_OWNER))
        elif step == USER:
            if actor is not None:
                steps.append((step, actor.owner))
        else:
            raise ValueError(f"MAILCONNECT_SENDER_ORDER: unknown step {step!r}")
    unique: list[tuple[str, Owner]] = []
    for step, key in steps:  # the project given may be the organisation: look once
        if all(key != k for _, k in unique):
            unique.append((step, key))
    return unique


def owner_label(state: _State, owner: Owner, *, actor: Actor | None = None) -> str:
    """How pages and messages name an owner: "project Apollo", "the organisation"."""
    kind, ident = owner
    if kind == ORGANIZATION:
        return "the organisation"
    if kind == USER:
        if actor is not None and ident == actor.id:
            return f"your own ({actor.label})"
        return f"user {ident}"
    scope = state.extension.scopes.get(kind)
    obj = load_owner(owner) if scope is not None else None
    if scope is None or obj is None:
        return f"{kind} {ident}"
    return f"{scope.name.lower()} {scope.label(obj)}"


def _why_not(state: _State, actor: Actor | None, account: MailAccount) -> str | None:
    if not account.active:
        return f"{account.email} is inactive"
    if account.status != AccountStatus.CONNECTED:
        return f"{account.email} is not connected ({account.status_label.lower()})"
    if actor is not None and not state.policy.can(actor, "use", account.owner):
        return f"{account.email}: {actor.label} may not send from it"
    return None


def resolve_sender(state: _State, *, actor: Actor | None, owner: Owner | None) -> MailAccount:
    """The account to send from, following ``MAILCONNECT_SENDER_ORDER``.

    Per step, the owner's accounts are tried default first; an account is skipped when it is
    inactive, not connected, or ``actor`` may not ``use`` it. One query for all steps.
    """
    steps = _sender_steps(actor, owner)
    found = accounts_by_owner(state, [o for _, o in steps])
    tried: list[str] = []
    for _step, key in steps:
        candidates = found.get(key, [])
        where = owner_label(state, key, actor=actor)
        if not candidates:
            tried.append(f"{where}: no account")
            continue
        reasons = []
        for account in candidates:
            why = _why_not(state, actor, account)
            if why is None:
                return account
            reasons.append(why)
        tried.append(f"{where}: " + ", ".join(reasons))
    raise NoSenderAccount(tried)


@dataclass(frozen=True)
class OwnerResult:
    """What "Disconnect all" did for one owner."""

    owner: Owner
    label: str
    outcome: str  # "disconnected" | "nothing" | "failed"
    emails: tuple[str, ...] = ()
    reason: str = ""


def scope_owners(state: _State, kind: str) -> list[tuple[Owner, Any, str]]:
    """``(owner, host object, label)`` for every owner a scope's page lists.

    The organisation has one owner; a registered scope lists what its ``list()`` returns.
    """
    if kind == ORGANIZATION:
        return [(ORGANIZATION_OWNER, None, "Organization")]
    scope = state.extension.scopes.get(kind)
    if scope is None or scope.list is None:
        raise LookupError(f"no listable scope {kind!r}")
    return [((kind, scope.ident(obj)), obj, scope.label(obj)) for obj in scope.list()]


def disconnect_all(state: _State, kind: str, *, actor: Actor | None) -> list[OwnerResult]:
    """Disconnect every account of every owner of ``kind`` that ``actor`` may manage.

    Owners the actor may not manage are left out of the result. Each owner runs in a
    savepoint, so one failure is reported and the others still happen. Does not commit.
    """
    if kind == USER:
        raise ValueError("disconnect_all is for shared scopes, not personal accounts")
    owners = [
        (owner, label)
        for owner, obj, label in scope_owners(state, kind)
        if actor is None or state.policy.can(actor, "manage", owner, obj=obj)
    ]
    if actor is not None and not owners:
        raise PermissionDenied(f"{actor.label} may not manage any {kind} accounts")
    found = accounts_by_owner(state, [o for o, _ in owners])
    results = []
    for owner, label in owners:
        mine = found.get(owner, [])
        if not mine:
            results.append(OwnerResult(owner, label, "nothing"))
            continue
        emails = tuple(a.email for a in mine)
        try:
            with state.session.begin_nested():
                for account in mine:
                    disconnect(state, account, actor=actor)
        except (MailConnectError, sa.exc.SQLAlchemyError) as exc:
            results.append(
                OwnerResult(owner, label, "failed", emails, str(exc) or type(exc).__name__)
            )
        else:
            results.append(OwnerResult(owner, label, "disconnected", emails))
    return results


# -- OAuth 2.0 accounts (issue 3) -------------------------------------------------------------


def _oauth_servers(account: MailAccount, provider: OAuthProvider) -> None:
    """SMTP/IMAP servers from the provider's server preset: never typed by the user."""
    preset = current_presets().get(provider.servers)
    if preset is None or preset.smtp is None:
        raise OAuthFlowError("config", f"no servers for {provider.servers!r}", provider=provider)
    account.smtp_host = preset.smtp.host
    account.smtp_port = preset.smtp.port
    account.smtp_security = preset.smtp.security
    if preset.imap is not None:
        account.imap_host = preset.imap.host
        account.imap_port = preset.imap.port
        account.imap_security = preset.imap.security
    else:
        account.imap_host = account.imap_port = account.imap_security = None


def _apply_grant(account: MailAccount, grant: OAuthGrant) -> None:
    account.auth_method = "oauth2"
    account.provider = grant.provider.key
    account.access_token = grant.access_token
    account.refresh_token = grant.refresh_token
    account.token_expires_at = grant.expires_at
    account.token_refreshed_at = utcnow()
    account.token_scopes = grant.scopes
    if grant.subject:  # bound at first consent; reconnects checked it (_check_identity)
        account.oauth_subject = grant.subject
        account.oauth_issuer = grant.issuer
    # A Graph token of an earlier grant is not this grant's: fetched again when needed.
    account.graph_access_token = None
    account.graph_token_expires_at = None
    account.status = AccountStatus.CONNECTED
    account.last_error_code = account.last_error_message = None


def _forget_tokens(state: _State, account: MailAccount) -> None:
    """Like :func:`_forget_password`: flushed (encrypted) tokens leave the instance."""
    state.session.expire(account, ["access_token", "refresh_token", "graph_access_token"])


def _grant_email(grant: OAuthGrant) -> str:
    """The address the provider vouched for, domain in lower case.

    Not run through the form's validator: the provider owns the address (and may use names,
    such as ``.test`` ones in a lab, that a typed address could not).
    """
    local, _, domain = grant.email.strip().rpartition("@")
    bad = not local or not domain or any(ch.isspace() or ord(ch) < 0x20 for ch in grant.email)
    if bad or len(grant.email) > 320:
        raise OAuthFlowError("no_email", "invalid address", provider=grant.provider)
    return f"{local}@{domain.lower()}"


def _connected_elsewhere(
    state: _State, owner: Owner, email: str, grant: OAuthGrant | None = None
) -> MailAccount | None:
    """Another owner's account with this address, or bound to this provider identity.

    A check before the insert; two concurrent consents can both pass it, so the unique index
    on (provider, oauth_subject) decides, and :func:`_flush_bound` reports the loser as
    ``already_connected``.
    """
    same = sa.func.lower(MailAccount.email) == email.lower()
    if grant is not None and grant.subject:
        same = sa.or_(
            same,
            sa.and_(
                MailAccount.provider == grant.provider.key,
                MailAccount.oauth_subject == grant.subject,
            ),
        )
    query = sa.select(MailAccount).where(
        same,
        sa.not_(sa.and_(MailAccount.owner_kind == owner[0], MailAccount.owner_id == owner[1])),
    )
    return state.session.scalars(query).first()


def _flush_bound(state: _State, grant: OAuthGrant, email: str) -> None:
    """Flush; a unique violation (the identity or address was connected meanwhile) becomes
    ``already_connected``. The caller's view rolls the session back on that error."""
    try:
        state.session.flush()
    except sa.exc.IntegrityError:
        raise OAuthFlowError("already_connected", email, provider=grant.provider) from None


def _check_identity(account: MailAccount, grant: OAuthGrant) -> None:
    """The account's bound identity must be the one that consented (same address is not
    enough: another tenant's user may claim it). Unbound accounts (hand-over, older rows,
    password accounts switching to OAuth) are bound now."""
    if account.oauth_subject is None:
        return
    if grant.subject != account.oauth_subject or account.provider != grant.provider.key:
        raise OAuthFlowError("different_identity", _grant_email(grant), provider=grant.provider)


def connect_oauth(
    state: _State, *, owner: Owner, grant: OAuthGrant, actor: Actor | None
) -> MailAccount:
    """Store an OAuth 2.0 account for ``owner`` from a consent ``grant`` (tokens encrypted).

    When ``owner`` already has this address, that account is signed in again instead
    (:func:`reconnect_oauth`: same id and settings, ``account_updated``). An address another
    owner has connected raises :class:`OAuthFlowError` ``already_connected``. Servers come
    from the provider's preset. Does not test: see :func:`run_oauth_test`.
    """
    require(state, actor, "manage", owner)
    email = _grant_email(grant)
    existing = _find(state, owner, email)
    if existing is not None:
        return reconnect_oauth(state, existing, grant=grant, actor=actor)
    if _connected_elsewhere(state, owner, email, grant) is not None:
        raise OAuthFlowError("already_connected", email, provider=grant.provider)
    check_limit(state, owner)
    account = MailAccount(
        owner_kind=owner[0],
        owner_id=owner[1],
        email=email,
        username=email,
        display_name="",
        connected_by=actor.id if actor else None,
        is_default=default_account(state, owner) is None,
        send_via="smtp",
    )
    _oauth_servers(account, grant.provider)
    _apply_grant(account, grant)
    state.session.add(account)
    _flush_bound(state, grant, email)
    _forget_tokens(state, account)
    audit.record(state.session, "connect", actor=actor, account=account, detail="oauth2")
    signals.account_connected.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account=account,
        actor=actor.user if actor else None,
    )
    return account


def reconnect_oauth(
    state: _State, account: MailAccount, *, grant: OAuthGrant, actor: Actor | None
) -> MailAccount:
    """Sign ``account`` in again with new tokens, when the provider vouched for its address.

    Keeps the id, settings and history; fires ``account_updated`` (``changes={"credentials"}``),
    never a second ``account_connected``. Another address raises ``different_email``; the same
    address from another identity than the one bound at first consent (``oauth_subject``)
    raises ``different_identity``. A hand-over (awaiting authorization) is completed by its
    owner only (:meth:`Policy.can_complete_handover`), never by someone managing it for them.
    """
    if account.status == AccountStatus.PENDING_AUTHORIZATION:
        if actor is not None and not state.policy.can_complete_handover(actor, account):
            raise PermissionDenied(f"{actor.label} may not complete this hand-over")
    else:
        require(state, actor, "manage", account.owner)
    email = _grant_email(grant)
    if email.lower() != account.email.lower():
        raise OAuthFlowError("different_email", email, provider=grant.provider)
    _check_identity(account, grant)
    forget = ["access_token", "refresh_token", "graph_access_token"]
    if account.auth_method != "oauth2":  # a password account switching to OAuth
        account.password = None
        forget.append("password")
        account.username = account.email
        _oauth_servers(account, grant.provider)
    _apply_grant(account, grant)
    _flush_bound(state, grant, email)
    state.session.expire(account, forget)
    audit.record(state.session, "reconnect", actor=actor, account=account, detail="oauth2")
    signals.account_updated.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        account=account,
        actor=actor.user if actor else None,
        changes={"credentials"},
    )
    return account


SMTP_AUTH_OFF = "Sending through SMTP (SMTP AUTH) is turned off for this mailbox."
GRAPH_HINT = (
    " To send anyway, connect again and allow sending through Microsoft Graph (Mail.Send), "
    "or ask your administrator to turn on Authenticated SMTP for this mailbox."
)


def run_oauth_test(
    state: _State, account: MailAccount, *, actor: Actor | None, access_token: str | None = None
) -> ConnectionReport:
    """Test connection for an OAuth account: XOAUTH2 to its SMTP and IMAP servers.

    Uses ``access_token`` (just granted) or a fresh one from :mod:`.oauth.tokens` (refreshed
    under the row lock when due). Records the outcome on the account (status, last error) and
    in the audit trail; a failing test never removes the account. Where SMTP AUTH is off
    (535 5.7.139) and Graph ``Mail.Send`` was granted, mail goes through Graph instead.
    """
    require(state, actor, "manage", account.owner)
    if access_token is None:
        from .oauth.tokens import fresh_access_token

        access_token = fresh_access_token(state, account)
    settings = ServerSettings(
        email=account.email,
        username=account.username,
        password="",
        smtp_host=account.smtp_host,
        smtp_port=account.smtp_port,
        smtp_security=account.smtp_security,  # type: ignore[arg-type]
        imap_host=account.imap_host,
        imap_port=account.imap_port,
        imap_security=account.imap_security,  # type: ignore[arg-type]
        provider=_oauth_preset_key(account),
        oauth_token=access_token,
    )
    report = run_test(settings, state.transport_options())
    if not report.smtp.ok and report.smtp.code == SMTP_AUTH_DISABLED:
        report = _try_graph(state, account, report, access_token)
    now = utcnow()
    account.last_checked_at = now
    if report.ok:
        account.status = AccountStatus.CONNECTED
        account.last_success_at = now
        account.last_error_code = account.last_error_message = None
    else:
        failed = next(r for r in report.results if not r.ok)
        account.status = AccountStatus.ERROR
        account.last_error_code = failed.code
        account.last_error_message = failed.message
    state.session.flush()
    audit.record(
        state.session, "test", actor=actor, account=account, ok=report.ok,
        detail=_report_detail(report),
    )  # fmt: skip
    return report


def _oauth_preset_key(account: MailAccount) -> str | None:
    from .oauth.providers import current_oauth_providers

    provider = current_oauth_providers().get(account.provider)
    return provider.servers if provider is not None else account.provider


def _try_graph(
    state: _State, account: MailAccount, report: ConnectionReport, token: str
) -> ConnectionReport:
    """SMTP AUTH is off: send through Microsoft Graph when ``Mail.Send`` was granted.

    Graph takes no SMTP/IMAP token (another audience): a Graph token is obtained with the
    account's refresh token (:func:`~.oauth.tokens.fresh_graph_token`), and whether
    ``Mail.Send`` was granted is read from that token's answer, not from the consent's scopes.
    """
    from .oauth.providers import current_oauth_providers
    from .oauth.tokens import GraphNotGranted, TokenError, fresh_graph_token
    from .transport.graph import check_graph

    provider = current_oauth_providers().get(account.provider)
    asked = provider is not None and GRAPH_MAIL_SEND.lower() in (s.lower() for s in provider.scopes)
    smtp = report.smtp
    if asked and provider is not None and provider.graph_url:
        options = state.transport_options()
        try:
            graph_token = fresh_graph_token(state, account)
        except GraphNotGranted:
            account.send_via = "smtp"
            return replace(report, smtp=replace(smtp, message=SMTP_AUTH_OFF + GRAPH_HINT))
        except TokenError as exc:
            account.send_via = "smtp"
            message = f"{SMTP_AUTH_OFF} Sending through Microsoft Graph failed as well: {exc}"
            return replace(report, smtp=replace(smtp, message=message))
        result = check_graph(graph_token, provider.graph_url, options.timeout, options.ca_file)
        if result.ok:
            account.send_via = "graph"
            smtp = replace(
                result,
                protocol=smtp.protocol,
                message="SMTP AUTH is turned off for this mailbox: mail is sent through "
                "Microsoft Graph instead.",
            )
            return replace(report, smtp=smtp)
        # Mail.Send was granted but Graph refused too: say that, not "allow Mail.Send".
        account.send_via = "smtp"
        message = (
            f"{SMTP_AUTH_OFF} Sending through Microsoft Graph failed as well: {result.message}"
        )
        return replace(report, smtp=replace(smtp, message=message))
    account.send_via = "smtp"
    # The transport's message is written for password accounts; this one is OAuth already, so
    # the remedies are said once, for it (never appended to the generic text: that repeated
    # both of them).
    return replace(report, smtp=replace(smtp, message=SMTP_AUTH_OFF + GRAPH_HINT))
