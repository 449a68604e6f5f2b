"""Flask-MailConnect: let your users, projects and organisation connect their email accounts."""

from __future__ import annotations

from .exceptions import (
    AccountLimitReached,
    ConnectionFailed,
    ConnectionTestFailed,
    EncryptionKeyError,
    InvalidSettings,
    MailConnectError,
    NoSenderAccount,
    PermissionDenied,
    TooManyTests,
)
from .extension import MailConnect
from .models import AccountStatus, AuditEvent, MailAccount, SyncedMessage, metadata
from .oauth.tokens import NeedsReconnect, TokenError, TokenRefreshUnavailable
from .scopes import Actor, Policy, Scope
from .signals import (
    account_connected,
    account_disconnected,
    account_needs_reconnect,
    account_updated,
    token_refreshed,
)
from .transport.settings import ConnectionReport, ProtocolResult, ServerSettings

__version__ = "0.1.0.dev0"

__all__ = [
    "AccountLimitReached",
    "AccountStatus",
    "Actor",
    "AuditEvent",
    "ConnectionFailed",
    "ConnectionReport",
    "ConnectionTestFailed",
    "EncryptionKeyError",
    "InvalidSettings",
    "MailAccount",
    "MailConnect",
    "MailConnectError",
    "NeedsReconnect",
    "NoSenderAccount",
    "PermissionDenied",
    "Policy",
    "ProtocolResult",
    "Scope",
    "ServerSettings",
    "SyncedMessage",
    "TokenError",
    "TokenRefreshUnavailable",
    "TooManyTests",
    "account_connected",
    "account_disconnected",
    "account_needs_reconnect",
    "account_updated",
    "metadata",
    "token_refreshed",
]
