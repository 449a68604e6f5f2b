"""Errors of a send: refusing an account that cannot send, and turning what the transport
reports (SMTP replies, lost connections, Graph answers, credentials that cannot be had) into
the typed errors of flask_mailconnect.exceptions. Nothing here opens a connection."""

from __future__ import annotations

from typing import Any

from .. import codes as errors
from ..codes import message_for
from ..compose import Prepared
from ..exceptions import (
    AccountNeedsReconnectError,
    AccountNotConnectedError,
    ConnectionFailed,
    CredentialsUnavailable,
    DeliveryUnknownError,
    EncryptionKeyError,
    InactiveAccountError,
    InternationalAddressUnsupported,
    MessageTooLarge,
    NeedsReconnect,
    PermanentSendError,
    SendError,
    SubmitFailed,
    TokenError,
    TokenRefreshUnavailable,
    TransientSendError,
)
from ..models import AccountStatus, MailAccount
from ..providers import current_catalog
from ..transport.graph import GraphOutcomeUnknown

UNKNOWN_MESSAGE = (
    "Delivery unknown: may have been sent. The connection broke after the whole message went "
    "out, before the server confirmed it. It was not sent again; check the recipient's inbox "
    "or the Sent folder before sending it once more."
)


def check_usable(account: MailAccount) -> None:
    """Refuse, before any connection, an account that must not or cannot send."""
    if not account.active:
        raise InactiveAccountError(
            f"{account.email} is deactivated (Active: no); an administrator can reactivate it.",
            code="inactive",
        )
    if account.status == AccountStatus.PENDING_AUTHORIZATION:
        raise AccountNotConnectedError(
            f"{account.email} is awaiting authorization: its owner must complete the sign-in.",
            code="not_connected",
        )
    if account.status == AccountStatus.NEEDS_RECONNECT:
        raise AccountNeedsReconnectError(
            account.last_error_message
            or f"{account.email} needs to be signed in again before it can send.",
            code=account.last_error_code or "needs_reconnect",
        )


def keeps_sent_copy(account: MailAccount) -> bool:
    """Does the provider file sent mail itself (Gmail, Microsoft)? Then no IMAP copy."""
    return current_catalog().for_account(account).keeps_sent_copy


def graph_url(account: MailAccount) -> str:
    """The provider's Graph endpoint for an account set to send through Graph."""
    provider = current_catalog().for_account(account)
    if not provider.graph_url:
        raise PermanentSendError(
            f"{account.email} is set to send through Microsoft Graph, but its provider has no "
            "Graph endpoint.",
            code="graph_unavailable",
        )
    return provider.graph_url


def credential_failure(exc: TokenError | EncryptionKeyError) -> SendError:
    """The send error for a credential that could not be had; nothing was sent."""
    if isinstance(exc, NeedsReconnect):  # the refresh marked the account and fired the signal
        return AccountNeedsReconnectError(str(exc), code=exc.error or "token_revoked")
    if isinstance(exc, TokenRefreshUnavailable):
        return TransientSendError(str(exc), code="token_refresh_unavailable")
    if isinstance(exc, EncryptionKeyError):  # no connection opened: retry once the key is back
        return CredentialsUnavailable(
            message_for(errors.KEY_UNAVAILABLE), code=errors.KEY_UNAVAILABLE
        )
    return PermanentSendError(str(exc), code="token_error")


def submit_error(exc: SubmitFailed, prepared: Prepared) -> SendError:
    """The send error for a failed SMTP transaction (see transport/submit.py)."""
    details: dict[str, Any] = {
        "code": exc.code, "smtp_code": exc.smtp_code, "refused": exc.refused,
        "message_id": prepared.message_id,
    }  # fmt: skip
    if exc.kind == "unknown":
        return DeliveryUnknownError(UNKNOWN_MESSAGE, **details)
    where = {"mail": "the sender", "rcpt": "the recipients", "data": "the message",
             "end": "the message"}[exc.stage]  # fmt: skip
    if exc.code == errors.SMTPUTF8_UNSUPPORTED:  # before MAIL FROM, connection kept
        return InternationalAddressUnsupported(
            [prepared.envelope_from, *prepared.recipients], **details
        )
    if exc.code == errors.MESSAGE_TOO_LARGE:  # before MAIL FROM when the server said SIZE
        return MessageTooLarge(size=exc.size, limit=exc.size_limit, **details)
    if exc.kind == "transient":
        if exc.smtp_code is None:
            text = "The connection to the server was lost before the message was complete."
            if exc.code == errors.TIMEOUT:
                text = "The server did not answer in time; the message was not sent."
        else:
            text = f"The server refused {where} for now ({exc.smtp_code}); try again later."
        return TransientSendError(text + " Nothing was delivered.", **details)
    return PermanentSendError(f"The server refused {where} ({exc.smtp_code}).", **details)


def graph_error(exc: ConnectionFailed, prepared: Prepared) -> SendError | None:
    """The send error for a failed Graph request; ``None`` for a refused token or grant,
    which the Sender records as a login failure."""
    details: dict[str, Any] = {"code": exc.code, "message_id": prepared.message_id}
    if isinstance(exc, GraphOutcomeUnknown):
        # The POST went out (read timeout, connection lost, 500/502/504): Graph may have
        # sent the message. Checked first: never retryable.
        return DeliveryUnknownError(UNKNOWN_MESSAGE, **details)
    if exc.code in (errors.TOKEN_REJECTED, errors.GRAPH_SEND_DENIED):
        return None
    if exc.code == errors.GRAPH_REJECTED:
        return PermanentSendError(exc.message, **details)
    if exc.code == errors.GRAPH_THROTTLED:
        return TransientSendError(exc.message, retry_after=exc.retry_after, **details)
    if exc.code in (
        errors.REFUSED, errors.HOST_NOT_FOUND, errors.BLOCKED_ADDRESS, errors.TIMEOUT,
        errors.NETWORK_ERROR,
    ):  # fmt: skip
        # Before the request was sent (connect timeout, refused, no such host).
        return TransientSendError(exc.message + " Nothing was sent.", **details)
    return PermanentSendError(exc.message, **details)


__all__ = [
    "UNKNOWN_MESSAGE",
    "check_usable",
    "credential_failure",
    "graph_error",
    "graph_url",
    "keeps_sent_copy",
    "submit_error",
]
