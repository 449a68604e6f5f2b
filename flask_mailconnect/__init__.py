"""Flask-MailConnect: let your users, projects and organisation connect their email accounts."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .exceptions import (
    AccountLimitReached,
    AccountNeedsReconnectError,
    AccountNotConnectedError,
    ConfigurationError,
    ConnectionFailed,
    ConnectionTestFailed,
    CredentialsUnavailable,
    DeliveryUnknownError,
    EncryptionKeyError,
    GraphNotGranted,
    InactiveAccountError,
    InternationalAddressUnsupported,
    InvalidMessage,
    InvalidSettings,
    MailConnectError,
    MessageTooLarge,
    MigrationError,
    MissingUserHook,
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
    TokenSaveFailed,
    TooManyTests,
    TransientSendError,
    UnknownOwner,
)

if TYPE_CHECKING:  # what __getattr__ below imports on first use, spelt out for type checkers
    from .detection import Detection
    from .drafts import Attachment, Draft
    from .extension import MailConnect
    from .health import CheckResult
    from .migrations import include_object
    from .models import AccountStatus, AuditEvent, MailAccount, SyncedMessage, metadata
    from .owners import Actor, Scope
    from .providers import Provider
    from .scopes import Policy
    from .sending import MessageOutcome, Sender, SendResult
    from .signals import (
        NewMessage,
        NotificationSettings,
        account_connected,
        account_disconnected,
        account_needs_reconnect,
        account_updated,
        message_sent,
        messages_synced,
        new_mail,
        token_refreshed,
    )
    from .sync import FolderListing, SyncResult
    from .sync_on_save import SaveSync
    from .transport.settings import ConnectionReport, ProtocolResult, ServerSettings

#: Public name -> the module that defines it, imported on first access (PEP 562). Importing
#: ``flask_mailconnect`` alone then costs the exceptions module only; ``MailConnect`` brings in
#: the rest when the host first touches it.
_LAZY = {
    "Detection": ".detection",
    "Attachment": ".drafts",
    "Draft": ".drafts",
    "MailConnect": ".extension",
    "CheckResult": ".health",
    "include_object": ".migrations",
    "AccountStatus": ".models",
    "AuditEvent": ".models",
    "MailAccount": ".models",
    "SyncedMessage": ".models",
    "metadata": ".models",
    "Actor": ".owners",
    "Scope": ".owners",
    "Provider": ".providers",
    "Policy": ".scopes",
    "MessageOutcome": ".sending",
    "Sender": ".sending",
    "SendResult": ".sending",
    "NewMessage": ".signals",
    "NotificationSettings": ".signals",
    "account_connected": ".signals",
    "account_disconnected": ".signals",
    "account_needs_reconnect": ".signals",
    "account_updated": ".signals",
    "message_sent": ".signals",
    "messages_synced": ".signals",
    "new_mail": ".signals",
    "token_refreshed": ".signals",
    "FolderListing": ".sync",
    "SyncResult": ".sync",
    "SaveSync": ".sync_on_save",
    "ConnectionReport": ".transport.settings",
    "ProtocolResult": ".transport.settings",
    "ServerSettings": ".transport.settings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # once per name: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0.dev0"

__all__ = [
    "AccountLimitReached",
    "AccountNeedsReconnectError",
    "AccountNotConnectedError",
    "AccountStatus",
    "Actor",
    "Attachment",
    "AuditEvent",
    "CheckResult",
    "ConfigurationError",
    "ConnectionFailed",
    "ConnectionReport",
    "ConnectionTestFailed",
    "CredentialsUnavailable",
    "DeliveryUnknownError",
    "Detection",
    "Draft",
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
    "MigrationError",
    "MissingUserHook",
    "NeedsReconnect",
    "NoSenderAccount",
    "OAuthConfigError",
    "NewMessage",
    "NotificationSettings",
    "OAuthFlowError",
    "PermanentSendError",
    "PermissionDenied",
    "Policy",
    "ProtocolResult",
    "Provider",
    "ProviderConfigError",
    "SaveSync",
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
    "TokenSaveFailed",
    "TooManyTests",
    "TransientSendError",
    "UnknownOwner",
    "account_connected",
    "account_disconnected",
    "account_needs_reconnect",
    "account_updated",
    "include_object",
    "message_sent",
    "messages_synced",
    "metadata",
    "new_mail",
    "token_refreshed",
]
