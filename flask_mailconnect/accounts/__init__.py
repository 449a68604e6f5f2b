"""The one place that changes accounts: connect, test, update, disconnect, share, hand over.

Every function checks the actor's permission (when there is an actor: the Python API called
without one is trusted host code), writes the audit trail and sends the signal. None of them
commits: they add to and flush the host's session, and the caller commits (the views do), so a
host can wrap our changes and its own in one transaction.

- :mod:`.core`: password accounts, Test connection, personal settings, disconnect, listing,
  account limits;
- :mod:`.sharing`: accounts of many owners, sender resolution, scope-wide actions;
- :mod:`.admin`: the Active flag, the OAuth hand-over, consent on someone's behalf;
- :mod:`.oauth`: OAuth 2.0 accounts (connect, sign in again, XOAUTH2 test, Graph).
"""

from .admin import create_handover, may_consent_for, on_behalf, set_active
from .cards import AccountCard, account_cards
from .core import (
    EDITABLE,
    account_limit,
    accounts_for,
    check_limit,
    connect_manual,
    count_accounts,
    default_account,
    disconnect,
    reconnect_manual,
    require,
    test_for_owner,
    update_account,
)
from .oauth import connect_oauth, reconnect_oauth, run_oauth_test
from .providers import (
    delete_provider,
    provider_account_counts,
    provider_settings,
    save_provider,
    toggle_provider,
)
from .sharing import (
    OwnerResult,
    accounts_by_owner,
    disconnect_all,
    owner_label,
    resolve_sender,
    scope_owners,
)

__all__ = [
    "EDITABLE",
    "OwnerResult",
    "AccountCard",
    "account_cards",
    "account_limit",
    "accounts_by_owner",
    "accounts_for",
    "check_limit",
    "connect_manual",
    "connect_oauth",
    "count_accounts",
    "create_handover",
    "default_account",
    "delete_provider",
    "disconnect",
    "disconnect_all",
    "may_consent_for",
    "on_behalf",
    "owner_label",
    "provider_account_counts",
    "provider_settings",
    "reconnect_manual",
    "reconnect_oauth",
    "require",
    "resolve_sender",
    "run_oauth_test",
    "save_provider",
    "scope_owners",
    "set_active",
    "test_for_owner",
    "toggle_provider",
    "update_account",
]
