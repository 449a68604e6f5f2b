"""Typed exceptions of the Python API. Every one derives from :class:`MailConnectError`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from .codes import MESSAGE_TOO_LARGE, RETRYABLE_CODES, SMTPUTF8_UNSUPPORTED


class MailConnectError(Exception):
    """Base of every exception the package raises."""


class EncryptionKeyError(MailConnectError, RuntimeError):
    """The keys are missing or malformed, or a stored value matches none of them."""


class ConfigurationError(MailConnectError, ValueError):
    """A configuration value cannot work; the message names the key and why."""


class MissingUserHook(ConfigurationError):
    """The host's user object lacks what a default hook reads (no ``id`` for ``user_id``):
    the message names the hook to add (``@mailconnect.user_id``)."""


class MigrationError(MailConnectError, RuntimeError):
    """The database cannot be migrated as asked (e.g. our tables exist but were not created by
    our migrations); the message says which command fixes it."""


class ProviderConfigError(ConfigurationError):
    """``MAILCONNECT_PROVIDERS`` holds an entry that cannot work; the message says which."""


class OAuthConfigError(ProviderConfigError):
    """An OAuth entry (``MAILCONNECT_PROVIDERS`` or an admin-entered provider) cannot work."""


class ConnectionFailed(MailConnectError):
    """A server could not be reached or refused the login; ``code`` is a stable error code."""

    def __init__(
        self, code: str, message: str, *, detail: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        #: Seconds the server asked us to wait before trying again (HTTP Retry-After).
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES


class GraphOutcomeUnknown(ConnectionFailed):
    """The request went out (read timeout, connection lost after sending, a 5xx other than a
    throttling answer): Graph may have acted on it. A send must not be repeated."""


class TokenError(MailConnectError):
    """A token could not be obtained. Base class; also raised as itself for provider answers
    that neither reconnecting nor retrying will fix (``invalid_client``, a misconfigured token
    endpoint): ``error`` holds the OAuth error code when there is one."""

    def __init__(self, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


class NeedsReconnect(TokenError):
    """The provider refused the grant (``invalid_grant``: revoked, expired, password changed) or
    there is no refresh token: the account is now ``needs_reconnect`` and its owner must sign in
    again."""


class TokenSaveFailed(NeedsReconnect):
    """The provider answered a refresh with a new (rotated) refresh token and the database
    refused every attempt to store it (``error`` is ``token_save_failed``): the old token is
    spent and the new one lost, so the account is marked ``needs_reconnect`` with
    ``last_error_code`` ``token_save_failed`` and its owner must sign in again. Not retryable;
    an administrator should find out why the database refused the writes (logged)."""


class GraphNotGranted(TokenError):
    """The provider gives no Microsoft Graph token with ``Mail.Send`` for this account (not
    consented, or the answer's scope lacks it). The account itself is unaffected."""


class TokenRefreshUnavailable(TokenError):
    """The token endpoint could not be reached, timed out, answered 5xx or 429, or the account's
    row could not be locked in time. Nothing changed: try again later."""


class OAuthFlowError(MailConnectError):
    """The consent flow ended without a usable grant; ``code`` names why (the error page words
    it).

    Codes: ``access_denied``, ``state``, ``provider_error``, ``unreachable``, ``id_token``,
    ``no_email``, ``unverified_email``, ``no_refresh_token``, ``already_connected``,
    ``different_email``, ``different_identity``, ``config``, ``on_behalf_off``
    (an admin's consent for someone else, turned off), ``own_address`` (an admin consenting
    for someone else signed in as themselves), ``handover_pending`` (an admin consenting for
    an address handed over to its owner, who alone completes it).
    ``detail`` is a short technical note (the provider's error code), never a token.
    ``provider``: the provider the flow was for, when known.
    """

    def __init__(self, code: str, detail: str = "", *, provider: Any = None) -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail
        self.provider = provider


class PermissionDenied(MailConnectError):
    """The actor may not do this to this account or owner."""


class UnknownOwner(MailConnectError, ValueError):
    """An owner no account may belong to: a kind nobody declared (neither ``user``,
    ``organization`` nor a ``register_scope`` kind; a typo such as ``"projct"`` would leave
    orphan accounts), or an id that cannot be stored (empty, over 64 characters, control
    characters)."""

    def __init__(self, owner: object, reason: str = "") -> None:
        super().__init__(reason or f"no such owner kind: {owner!r}")
        self.owner = owner


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

    # ``report`` is a transport ConnectionReport; typed loosely because this leaf module
    # imports nothing above it (the layers contract in pyproject.toml).
    def __init__(self, report: Any) -> None:
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


class CredentialsUnavailable(TransientSendError):
    """The account's stored password or token cannot be decrypted (the encryption key is
    missing or was changed): no connection was opened and nothing was sent. Retrying helps once
    an administrator restores the key; the account itself is unchanged."""


class PermanentSendError(SendError):
    """Not sent, and sending the same message again will fail the same way (a 5xx reply,
    every recipient refused, the server refusing our security or address)."""


class InternationalAddressUnsupported(PermanentSendError):
    """The message needs SMTPUTF8 (RFC 6531: an address with a non-ASCII local part, such as
    ``ünïcode@example.org``) and the account's SMTP server does not offer it. ``addresses``
    names those addresses. Refused before MAIL FROM, once the server's EHLO showed no
    SMTPUTF8: nothing was sent and the connection stays usable for the next message."""

    def __init__(self, addresses: Iterable[str], **details: Any) -> None:
        self.addresses = [a for a in addresses if not a.isascii()]
        details.setdefault("code", SMTPUTF8_UNSUPPORTED)
        named = ", ".join(self.addresses) or "an address"
        super().__init__(
            f"The server does not accept international addresses (SMTPUTF8), so {named} "
            "cannot be sent to or from it. Nothing was sent.", **details,
        )  # fmt: skip


class MessageTooLarge(PermanentSendError):
    """The message is larger than the server's advertised ``SIZE`` (RFC 1870): refused before
    MAIL FROM, so none of it was transmitted; or the server answered 552 for its size.
    ``size`` and ``limit`` are in bytes (``limit`` is None when the server did not say)."""

    def __init__(self, *, size: int | None, limit: int | None, **details: Any) -> None:
        self.size = size
        self.limit = limit
        details.setdefault("code", MESSAGE_TOO_LARGE)
        said = f"at most {limit:,} bytes" if limit else "less"
        text = f"The message is {size:,} bytes; the server accepts {said}." if size else ""
        super().__init__(
            f"{text or 'The message is larger than the server accepts.'} Nothing was sent; "
            "send smaller attachments or a link.", **details,
        )  # fmt: skip


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


#: ``transient``: not accepted, trying again may work; ``permanent``: not accepted, will fail
#: again; ``unknown``: the data was complete, the answer never came (may have been accepted).
SubmitKind = Literal["transient", "permanent", "unknown"]
#: Where it failed: ``mail``, ``rcpt``, ``data`` (the DATA command or writing the message) or
#: ``end`` (waiting for the answer after the final ".").
SubmitStage = Literal["mail", "rcpt", "data", "end"]


class SubmitFailed(MailConnectError):
    """The message was not (or may not have been) accepted (:data:`SubmitKind`, at
    :data:`SubmitStage`).

    ``connection_usable`` is True when the conversation is still in a known state (after a
    refusal and RSET) so the next message may use the same connection.
    """

    def __init__(
        self,
        kind: SubmitKind,
        stage: SubmitStage,
        *,
        code: str,
        smtp_code: int | None = None,
        reply: str = "",
        refused: dict[str, tuple[int, str]] | None = None,
        connection_usable: bool = False,
        size: int | None = None,
        size_limit: int | None = None,
    ) -> None:
        super().__init__(f"{kind} at {stage}: {code} {smtp_code or ''}".strip())
        #: The message's size and the server's SIZE limit, for ``message_too_large``.
        self.size = size
        self.size_limit = size_limit
        self.kind = kind
        self.stage = stage
        self.code = code
        self.smtp_code = smtp_code
        self.reply = reply
        self.refused = dict(refused or {})
        self.connection_usable = connection_usable


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
        return self.code in RETRYABLE_CODES or self.code == "token_unavailable"


__all__ = [
    "AccountLimitReached",
    "AccountNeedsReconnectError",
    "AccountNotConnectedError",
    "ConfigurationError",
    "ConnectionFailed",
    "ConnectionTestFailed",
    "CredentialsUnavailable",
    "DeliveryUnknownError",
    "EncryptionKeyError",
    "GraphNotGranted",
    "GraphOutcomeUnknown",
    "InactiveAccountError",
    "InternationalAddressUnsupported",
    "InvalidMessage",
    "InvalidSettings",
    "MailConnectError",
    "MessageTooLarge",
    "NeedsReconnect",
    "NoSenderAccount",
    "OAuthConfigError",
    "OAuthFlowError",
    "PermanentSendError",
    "PermissionDenied",
    "ProviderConfigError",
    "SendError",
    "SubmitFailed",
    "SyncError",
    "TokenError",
    "TokenRefreshUnavailable",
    "TokenSaveFailed",
    "TooManyTests",
    "TransientSendError",
]
