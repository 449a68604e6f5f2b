"""Admin actions on accounts: the Active flag and the OAuth hand-over."""

from __future__ import annotations

from .. import audit, signals
from ..exceptions import InvalidSettings
from ..models import AccountStatus, MailAccount
from ..owners import USER, Actor, Owner
from ..providers import current_catalog
from ..runtime import Runtime
from ..scopes import check_owner
from .core import _find, check_limit, default_account, require

# -- admin: active flag and hand-over (issue 4) -----------------------------------------------


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
    and for an address ``owner`` already has; ``ValueError`` for an owner that is not a person
    (only the owner completes a hand-over, so it exists for personal accounts only);
    :class:`UnknownOwner` for an owner no account may belong to.
    """
    check_owner(owner)
    require(state, actor, "manage", owner)
    if owner[0] != USER:  # the consent is its owner's alone (Policy.can_complete_handover)
        raise ValueError("a hand-over is for a person's own (user) account")
    oauth = current_catalog().oauth().get(provider)
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
