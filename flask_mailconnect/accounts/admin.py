"""Admin actions on accounts: the Active flag, the OAuth hand-over, consent on someone's behalf."""

from __future__ import annotations

import sqlalchemy as sa
from flask import current_app, has_app_context

from .. import audit, signals
from ..exceptions import InvalidSettings
from ..i18n import gettext
from ..models import AccountStatus, MailAccount
from ..owners import USER, Actor, Owner
from ..providers import current_catalog
from ..runtime import Runtime
from ..scopes import check_owner
from .core import _find, check_limit, default_account, require

# -- admin: active flag and hand-over (issue 4) -----------------------------------------------


def on_behalf(actor: Actor | None, owner: Owner) -> bool:
    """Whether a consent by ``actor`` for ``owner`` is one given for another person: a
    personal (user) account that is not the actor's own. Shared scopes (projects, the
    organisation) are managed by their managers: consent there is nobody else's."""
    return actor is not None and owner[0] == USER and owner[1] != actor.id


def may_consent_for(state: Runtime, actor: Actor | None, owner: Owner) -> bool:
    """May ``actor`` give the OAuth consent that stores an account under ``owner``?

    Their own accounts and shared scopes they manage: as ``manage`` says. Someone else's
    personal account: only an admin who manages it, and only with
    ``MAILCONNECT_ADMIN_OAUTH_ON_BEHALF`` on (off, such accounts are handed over and the person
    consents themselves).
    """
    if actor is None or not state.policy.can(actor, "manage", owner):
        return False
    if not on_behalf(actor, owner):
        return True
    allowed = current_app.config.get("MAILCONNECT_ADMIN_OAUTH_ON_BEHALF", True)
    return bool(actor.is_admin and (allowed if has_app_context() else True))


def connected_by_other(state: Runtime, owner: Owner, email: str) -> MailAccount | None:
    """An account of another owner with this address (connected or awaiting authorization)."""
    query = sa.select(MailAccount).where(
        sa.func.lower(MailAccount.email) == email.lower(),
        sa.not_(sa.and_(MailAccount.owner_kind == owner[0], MailAccount.owner_id == owner[1])),
    )
    return state.session.scalars(query.limit(1)).first()


def set_active(state: Runtime, account: MailAccount, active: bool, *, actor: Actor | None) -> bool:
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
    signals.announce(signals.account_updated, actor, account=account, changes={"active"})
    return True


def create_handover(
    state: Runtime, *, owner: Owner, provider: str, email: str, actor: Actor | None
) -> MailAccount:
    """An OAuth account for ``owner`` with no credentials, status ``pending_authorization``.

    The admin picks the provider and the address; the owner then sees "Complete authorization"
    on their page and gives consent at the provider themselves, so nobody types a credential
    for someone else. Raises :class:`InvalidSettings` for an unknown provider or a bad address,
    for an address ``owner`` already has and for one another owner has connected;
    ``ValueError`` for an owner that is not a person (only the owner completes a hand-over,
    so it exists for personal accounts only);
    :class:`UnknownOwner` for an owner no account may belong to.
    """
    check_owner(owner)
    require(state, actor, "manage", owner)
    if owner[0] != USER:  # the consent is its owner's alone (Policy.can_complete_handover)
        raise ValueError("a hand-over is for a person's own (user) account")
    oauth = current_catalog().oauth().get(provider)
    if oauth is None:
        raise InvalidSettings(
            {"provider": gettext("Choose a provider that signs in with OAuth 2.0.")}
        )
    # Only the shape is checked here: at consent the provider must vouch for this very address
    # (reconnect_oauth refuses another one), as it does for lab names such as ``.test``.
    local, _, domain = email.strip().rpartition("@")
    if (
        not local
        or "." not in domain
        or len(email) > 320
        or any(ch.isspace() or ord(ch) < 0x20 for ch in email.strip())
    ):
        raise InvalidSettings(
            {"email": gettext("Enter an email address such as name@example.com.")}
        )
    email = f"{local}@{domain.lower()}"
    if _find(state, owner, email) is not None:
        raise InvalidSettings(
            {"email": gettext("This person already has an account with this address.")}
        )
    # Refused now, not after the person consented: connect_oauth would refuse it then.
    if connected_by_other(state, owner, email) is not None:
        raise InvalidSettings(
            {"email": gettext("This address is already connected in this app by someone else.")}
        )
    check_limit(state, owner)
    smtp, imap = oauth.smtp, oauth.imap
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
