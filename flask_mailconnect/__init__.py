"""Flask-MailConnect: let your users, projects and organisation connect their email accounts."""

from __future__ import annotations

from .exceptions import (
    AccountLimitReached,
    AccountNeedsReconnectError,
    AccountNotConnectedError,
    ConnectionFailed,
    ConnectionTestFailed,
    DeliveryUnknownError,
    EncryptionKeyError,
    InactiveAccountError,
    InvalidMessage,
    InvalidSettings,
    MailConnectError,
    NoSenderAccount,
    PermanentSendError,
    PermissionDenied,
    SendError,
    TooManyTests,
    TransientSendError,
)
from .extension import MailConnect
from .models import AccountStatus, AuditEvent, MailAccount, SyncedMessage, metadata
from .oauth.tokens import NeedsReconnect, TokenError, TokenRefreshUnavailable
from .scopes import Actor, Policy, Scope
from .sending import MessageOutcome, Sender, SendResult
from .signals import (
    account_connected,
    account_disconnected,
    account_needs_reconnect,
    account_updated,
    message_sent,
    token_refreshed,
)
from .transport.settings import ConnectionReport, ProtocolResult, ServerSettings

__version__ = "0.1.0.dev0"

__all__ = [
    "AccountLimitReached",
    "AccountNeedsReconnectError",
    "AccountNotConnectedError",
    "AccountStatus",
    "Actor",
    "AuditEvent",
    "ConnectionFailed",
    "ConnectionReport",
    "ConnectionTestFailed",
    "DeliveryUnknownError",
    "EncryptionKeyError",
    "InactiveAccountError",
    "InvalidMessage",
    "InvalidSettings",
    "MailAccount",
    "MailConnect",
    "MailConnectError",
    "MessageOutcome",
    "NeedsReconnect",
    "NoSenderAccount",
    "PermanentSendError",
    "PermissionDenied",
    "Policy",
    "ProtocolResult",
    "Scope",
    "SendError",
    "SendResult",
    "Sender",
    "ServerSettings",
    "SyncedMessage",
    "TokenError",
    "TokenRefreshUnavailable",
    "TooManyTests",
    "TransientSendError",
    "account_connected",
    "account_disconnected",
    "account_needs_reconnect",
    "account_updated",
    "message_sent",
    "metadata",
    "token_refreshed",
]
