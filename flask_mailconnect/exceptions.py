"""Typed exceptions of the Python API. Every one derives from :class:`MailConnectError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .crypto import EncryptionKeyError
from .transport.errors import ConnectionFailed, MailConnectError

if TYPE_CHECKING:
    from .transport.settings import ConnectionReport


class PermissionDenied(MailConnectError):
    """The actor may not do this to this account or owner."""


class InvalidSettings(MailConnectError):
    """Server settings that cannot work; ``errors`` maps field names to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class TooManyTests(MailConnectError):
    """The actor ran more connection tests than ``MAILCONNECT_TESTS_PER_HOUR`` allows."""


class AccountLimitReached(MailConnectError):
    """The owner already has as many accounts as ``MAILCONNECT_MAX_ACCOUNTS`` allows."""

    def __init__(self, owner: tuple[str, str], limit: int) -> None:
        plural = "account" if limit == 1 else "accounts"
        super().__init__(
            f"This {owner[0]} already has {limit} email {plural}, the most allowed. "
            "Disconnect one to connect another."
        )
        self.owner = owner
        self.limit = limit


class NoSenderAccount(MailConnectError):
    """``resolve_sender`` found no active, connected account the actor may send from.

    ``tried`` lists each place looked at with why it did not apply.
    """

    def __init__(self, tried: list[str]) -> None:
        super().__init__(
            "No account to send from. Tried: "
            + ("; ".join(tried) if tried else "nothing")
            + ". Connect an account, or pass account= explicitly."
        )
        self.tried = tried


class ConnectionTestFailed(MailConnectError):
    """Saving was refused because Test connection did not pass; ``report`` says why."""

    def __init__(self, report: ConnectionReport) -> None:
        failed = [r for r in report.results if not r.ok]
        super().__init__(" ".join(f"{r.protocol.value.upper()}: {r.message}" for r in failed))
        self.report = report


class SendError(MailConnectError):
    """A message was not sent (or may not have been). Base of the sending errors.

    ``retryable`` says whether sending the same message again later can help; ``code`` is a
    stable code (``smtp_transient``, ``smtp_rejected``, ``recipients_refused``,
    ``delivery_unknown``, ``invalid_message``, ``inactive``, ``not_connected`` or a transport
    code such as ``timeout``, ``auth_failed``, ``token_rejected``); ``smtp_code`` the server's
    reply code when there was one; ``refused`` maps refused recipients to ``(code, text)``.
    The message is for people and never holds a secret.
    """

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str,
        smtp_code: int | None = None,
        refused: dict[str, tuple[int, str]] | None = None,
        retry_after: float | None = None,
        message_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.smtp_code = smtp_code
        self.refused = dict(refused or {})
        #: Seconds the server asked us to wait (Graph throttling), when it said.
        self.retry_after = retry_after
        #: The Message-ID the message had (so a caller can log or look it up).
        self.message_id = message_id


class TransientSendError(SendError):
    """Not sent, and trying again later may work: a 4xx reply, a timeout, or the connection
    lost before the message's data was complete. Nothing was delivered."""

    retryable = True


class PermanentSendError(SendError):
    """Not sent, and sending the same message again will fail the same way (a 5xx reply,
    every recipient refused, the server refusing our security or address)."""


class DeliveryUnknownError(SendError):
    """Delivery unknown: may have been sent. The connection broke (or timed out) after the
    message's data was complete, before the server's answer arrived. Never retried by the
    extension: sending again could deliver it twice. ``retryable`` is False."""


class AccountNeedsReconnectError(SendError):
    """The account's credentials were refused (authentication failed, token revoked): it is
    now ``needs_reconnect`` and its owner must sign in again."""


class InactiveAccountError(SendError):
    """The account is deactivated ("Active: no"); nothing was sent and no server contacted."""


class AccountNotConnectedError(SendError):
    """The account has no working credentials yet (awaiting authorization)."""


class InvalidMessage(SendError):
    """The message cannot be sent as it is: a header with a line break, a malformed or missing
    recipient, a From that is not the account's address. ``field`` names the header."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message, code="invalid_message")
        self.field = field


class SyncError(MailConnectError):
    """Recent mail or the folder list could not be read from the account's IMAP server.

    ``code`` is a stable code (a transport code such as ``auth_failed``, ``timeout``,
    ``connection_lost``, ``mailbox_unavailable``; or ``token_revoked``, ``token_unavailable``,
    ``needs_reconnect``, ``not_receiving``, ``inactive``); ``message`` says what to do, for
    people; ``retryable`` whether trying again later, unchanged, may work. The failure is
    already recorded on the account (status, last error) when a server was involved.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        from .transport.errors import RETRYABLE_CODES

        return self.code in RETRYABLE_CODES or self.code == "token_unavailable"


__all__ = [
    "AccountLimitReached",
    "AccountNeedsReconnectError",
    "AccountNotConnectedError",
    "ConnectionFailed",
    "ConnectionTestFailed",
    "DeliveryUnknownError",
    "EncryptionKeyError",
    "InactiveAccountError",
    "InvalidMessage",
    "InvalidSettings",
    "MailConnectError",
    "NoSenderAccount",
    "PermanentSendError",
    "PermissionDenied",
    "SendError",
    "SyncError",
    "TooManyTests",
    "TransientSendError",
]
