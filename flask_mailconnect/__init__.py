"""Flask-MailConnect: let your users, projects and organisation connect their email accounts."""

from __future__ import annotations

from .exceptions import (
    AccountLimitReached,
    AccountNeedsReconnectError,
    AccountNotConnectedError,
    ConfigurationError,
    ConnectionFailed,
    ConnectionTestFailed,
    DeliveryUnknownError,
    EncryptionKeyError,
    GraphNotGranted,
    InactiveAccountError,
    InternationalAddressUnsupported,
    InvalidMessage,
    InvalidSettings,
    MailConnectError,
    MessageTooLarge,
    NeedsReconnect,
    NoSenderAccount,
    OAuthConfigError,
    OAuthFlowError,
    PermanentSendError,
    PermissionDenied,
    ProviderConfigError,
    SendError,
    SyncError,
    TokenError,
    TokenRefreshUnavailable,
    TooManyTests,
    TransientSendError,
    UnknownOwner,
)
from .extension import MailConnect
from .health import CheckResult
from .models import AccountStatus, AuditEvent, MailAccount, SyncedMessage, metadata
from .owners import Actor, Scope
from .providers import Provider
from .scopes import Policy
from .sending import MessageOutcome, Sender, SendResult
from .signals import (
    account_connected,
    account_disconnected,
    account_needs_reconnect,
    account_updated,
    message_sent,
    messages_synced,
    token_refreshed,
)
from .sync import FolderListing, SyncResult
from .transport.settings import ConnectionReport, ProtocolResult, ServerSettings

__version__ = "0.1.0.dev0"

__all__ = [
    "AccountLimitReached",
    "AccountNeedsReconnectError",
    "AccountNotConnectedError",
    "AccountStatus",
    "Actor",
    "AuditEvent",
    "CheckResult",
    "ConfigurationError",
    "ConnectionFailed",
    "ConnectionReport",
    "ConnectionTestFailed",
    "DeliveryUnknownError",
    "EncryptionKeyError",
    "FolderListing",
    "GraphNotGranted",
    "InactiveAccountError",
    "InternationalAddressUnsupported",
    "InvalidMessage",
    "InvalidSettings",
    "MailAccount",
    "MailConnect",
    "MailConnectError",
    "MessageOutcome",
    "MessageTooLarge",
    "NeedsReconnect",
    "NoSenderAccount",
    "OAuthConfigError",
    "OAuthFlowError",
    "PermanentSendError",
    "PermissionDenied",
    "Policy",
    "ProtocolResult",
    "Provider",
    "ProviderConfigError",
    "Scope",
    "SendError",
    "SendResult",
    "Sender",
    "ServerSettings",
    "SyncError",
    "SyncResult",
    "SyncedMessage",
    "TokenError",
    "TokenRefreshUnavailable",
    "TooManyTests",
    "TransientSendError",
    "UnknownOwner",
    "account_connected",
    "account_disconnected",
    "account_needs_reconnect",
    "account_updated",
    "message_sent",
    "messages_synced",
    "metadata",
    "token_refreshed",
]
