"""Sending mail through an account: one message, or many over one connection.

:class:`Sender` holds one authenticated SMTP connection (or nothing, for Graph accounts) and
sends messages prepared by compose.py. ``MailConnect.send`` uses a Sender for one message;
``MailConnect.sending`` hands one to the host for many. Rules:

* An inactive, awaiting-authorization or needs-reconnect account is refused before any
  connection is made.
* Refused logins mark the account (accounts.status.record_failure: needs_reconnect for credentials,
  error for network trouble; the signal fires once). Replies about one message (4xx, 5xx to
  MAIL, RCPT, DATA) are the message's outcome and leave the account's status alone.
* A message is sent again automatically only when the server provably never saw all of it:
  the connection closed (or answered 421) at MAIL FROM on a connection that had already sent
  earlier messages. Once the final "." has gone out without an answer, the error is
  :class:`~flask_mailconnect.exceptions.DeliveryUnknownError` and nothing is retried.
* OAuth: the connection is renewed before the access token's expiry (within ``min_validity``).
* The Sent copy (IMAP APPEND with ``\\Seen``) is made only where the provider does not keep one
  itself; a failed copy is logged and reported in the result, never a failed send.

Like accounts.py, nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import email.errors
import logging
import smtplib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import Message
from types import TracebackType
from typing import Any

from . import codes as errors
from . import credentials, signals
from .accounts import require
from .accounts.status import RECONNECT_CODES, record_failure, record_success
from .codes import message_for
from .compose import Prepared, prepare
from .exceptions import (
    AccountNeedsReconnectError,
    AccountNotConnectedError,
    ConnectionFailed,
    CredentialsUnavailable,
    DeliveryUnknownError,
    EncryptionKeyError,
    GraphNotGranted,
    InactiveAccountError,
    InternationalAddressUnsupported,
    InvalidMessage,
    MessageTooLarge,
    NeedsReconnect,
    PermanentSendError,
    SendError,
    TokenError,
    TokenRefreshUnavailable,
    TransientSendError,
)
from .models import AccountStatus, MailAccount, utcnow
from .oauth.refresh import fresh_access_token, fresh_graph_token
from .owners import Actor
from .providers import current_catalog
from .runtime import Runtime
from .transport.graph import GraphOutcomeUnknown, send_via_graph
from .transport.settings import ServerSettings
from .transport.smtp import open_smtp
from .transport.submit import SentCopy, SubmitFailed, quit_quietly, submit

log = logging.getLogger("flask_mailconnect.sending")

#: Renew the connection (and the token) when the access token has less than this left.
TOKEN_MARGIN = timedelta(minutes=5)

UNKNOWN_MESSAGE = (
    "Delivery unknown: may have been sent. The connection broke after the whole message went "
    "out, before the server confirmed it. It was not sent again; check the recipient's inbox "
    "or the Sent folder before sending it once more."
)


@dataclass(frozen=True)
class SendResult:
    """A message the server accepted.

    ``accepted``: recipients the server took (all of them for Graph, which does not say);
    ``refused``: recipients refused while others were accepted, mapped to ``(code, reply)``;
    ``sent_copy``: the IMAP folder a copy was appended to (``None``: not made here, e.g. the
    provider keeps one, or it failed: then ``sent_copy_error`` holds a stable code).
    """

    message_id: str
    accepted: list[str]
    refused: dict[str, tuple[int, str]]
    account_id: int
    via: str
    sent_at: datetime
    sent_copy: str | None = None
    sent_copy_error: str | None = None


@dataclass(frozen=True)
class MessageOutcome:
    """One message of a bulk session: its position, and the result or the error."""

    index: int
    message_id: str | None
    result: SendResult | None = None
    error: SendError | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None


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


def _graph_url(account: MailAccount) -> str:
    provider = current_catalog().for_account(account)
    if not provider.graph_url:
        raise PermanentSendError(
            f"{account.email} is set to send through Microsoft Graph, but its provider has no "
            "Graph endpoint.",
            code="graph_unavailable",
        )
    return provider.graph_url


def _credential_failure(exc: TokenError | EncryptionKeyError) -> SendError:
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


class Sender:
    """Sends messages from one account over one connection (reconnecting when needed).

    Use as a context manager (``with mailconnect.sending(account) as conn``); ``send`` returns a
    :class:`SendResult` or raises a :class:`SendError`; ``results`` lists every message's
    outcome in order. Not thread-safe: one Sender per thread.
    """

    def __init__(
        self, state: Runtime, account: MailAccount, *, actor: Actor | None = None, bulk: bool
    ) -> None:
        if actor is not None:
            require(state, actor, "use", account.owner)
        check_usable(account)
        self.state = state
        self.account = account
        self.actor = actor
        self.results: list[MessageOutcome] = []
        #: Connections opened (1 plus reconnects): for logs and tests.
        self.connections = 0
        self._bulk = bulk
        self._options = state.transport_options()
        self._client: smtplib.SMTP | None = None
        self._settings: ServerSettings | None = None
        self._sent_on_client = 0
        self._copy: SentCopy | None = None
        self._keeps_copy: bool | None = None
        self._last_sent: datetime | None = None
        #: A (re)connection of this session was refused: its recorded failure must stand.
        self._login_failed = False
        self._closed = False

    # -- context manager ----------------------------------------------------------------

    def __enter__(self) -> Sender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()

    def close(self) -> None:
        """QUIT, close the Sent-folder connection, record the last send on the account."""
        if self._closed:
            return
        self._closed = True
        quit_quietly(self._client)
        self._client = None
        if self._copy is not None:
            self._copy.close()
        self._bookkeep()

    def _bookkeep(self) -> None:
        if self._last_sent is not None:
            self.account.last_sent_at = self._last_sent
            if not self._login_failed:  # never wipe a later login failure of this session
                record_success(self.account)
            self._last_sent = None

    # -- sending ------------------------------------------------------------------------

    def send(self, message: Message) -> SendResult:
        """Send one message; see the module doc for what is retried (only what is safe)."""
        if self._closed:
            raise RuntimeError("this sending connection is closed")
        index = len(self.results)
        prepared: Prepared | None = None
        try:
            check_usable(self.account)
            try:
                prepared = prepare(
                    message,
                    account_email=self.account.email,
                    display_name=self.account.display_name or "",
                    signature_html=self.account.signature_html or "",
                    signature_text=self.account.signature_text or "",
                )
            except (ValueError, LookupError, TypeError, email.errors.MessageError) as exc:
                # UnicodeEncodeError (a lone surrogate), a malformed header the policy refuses.
                raise InvalidMessage(
                    f"The message cannot be sent as it is ({type(exc).__name__})."
                ) from exc
            try:
                if self.account.send_via == "graph":
                    result = self._send_graph(prepared)
                else:
                    result = self._send_smtp(prepared)
            except SendError:
                raise
            except UnicodeError as exc:
                self._drop()
                raise InvalidMessage(
                    f"The message cannot be sent as it is ({type(exc).__name__})."
                ) from exc
            except smtplib.SMTPNotSupportedError as exc:  # refused before MAIL FROM
                self._drop()
                raise PermanentSendError(
                    "The server does not support what this message needs (e.g. international "
                    "addresses).", code="smtp_not_supported",
                ) from exc  # fmt: skip
            except Exception as exc:
                # Unexpected: the data may have gone out. Never report it as retryable.
                self._drop()
                log.exception("Account %s: sending failed unexpectedly", self.account.id)
                raise DeliveryUnknownError(UNKNOWN_MESSAGE, code="delivery_unknown") from exc
        except SendError as exc:
            if prepared is not None and exc.message_id is None:
                exc.message_id = prepared.message_id
            self.results.append(MessageOutcome(index, exc.message_id, error=exc))
            log.info(
                "Account %s: message not sent (%s, retryable=%s)",
                self.account.id, exc.code, exc.retryable,
            )  # fmt: skip
            raise
        self.results.append(MessageOutcome(index, result.message_id, result=result))
        self._last_sent = result.sent_at
        if not self._bulk:
            self._bookkeep()
        signals.announce(signals.message_sent, self.actor, account=self.account, result=result)
        return result

    def _send_smtp(self, prepared: Prepared) -> SendResult:
        for attempt in (1, 2):
            reused = self._client is not None and self._sent_on_client > 0
            client = self._connection()
            try:
                outcome = submit(
                    client, prepared.envelope_from, prepared.recipients, prepared.smtp_bytes,
                    smtputf8=prepared.smtputf8,
                )  # fmt: skip
            except SubmitFailed as exc:
                if not exc.connection_usable:
                    self._drop()
                closed_between = (
                    exc.stage == "mail"
                    and exc.kind == "transient"
                    and (exc.smtp_code in (None, 421))
                )
                if closed_between and reused and attempt == 1:
                    log.info(
                        "Account %s: server closed the connection; reconnecting", self.account.id
                    )
                    self._drop()
                    continue  # MAIL FROM never got an answer: nothing of this message was seen
                raise self._submit_error(exc, prepared) from None
            self._sent_on_client += 1
            return self._finish(prepared, "smtp", outcome.accepted, outcome.refused)
        raise AssertionError("unreachable")  # pragma: no cover

    def _submit_error(self, exc: SubmitFailed, prepared: Prepared) -> SendError:
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

    def _token_expiring(self) -> bool:
        expires = self.account.token_expires_at if self.account.auth_method == "oauth2" else None
        return expires is not None and expires - TOKEN_MARGIN <= utcnow()

    def _connection(self) -> smtplib.SMTP:
        if self._client is not None and self._token_expiring():
            log.info("Account %s: access token nearly expired; reconnecting", self.account.id)
            self._drop()
        if self._client is None:
            self._client = self._open()
            self._sent_on_client = 0
            self.connections += 1
        return self._client

    def _drop(self) -> None:
        quit_quietly(self._client)
        self._client = None

    def _server_settings(self, *, force: bool = False) -> ServerSettings:
        if force or self._settings is None or self.account.auth_method == "oauth2":
            try:
                if force:
                    token = fresh_access_token(self.state, self.account, force=True)
                    base = self._settings or credentials.server_settings(self.state, self.account)
                    self._settings = replace(base, oauth_token=token)
                else:
                    self._settings = credentials.server_settings(
                        self.state, self.account, min_validity=TOKEN_MARGIN
                    )
            except (TokenError, EncryptionKeyError) as exc:
                raise _credential_failure(exc) from None
        return self._settings

    def _open(self) -> smtplib.SMTP:
        settings = self._server_settings()
        try:
            return open_smtp(settings, self._options)
        except ConnectionFailed as exc:
            if exc.code == errors.TOKEN_REJECTED:
                # The stored token looked valid but the server refused it: refresh once (the
                # grant may still be good), else the refresh marks the account.
                settings = self._server_settings(force=True)
                try:
                    return open_smtp(settings, self._options)
                except ConnectionFailed as again:
                    exc = again
            raise self._login_error(exc) from None

    def _login_error(self, exc: ConnectionFailed) -> SendError:
        self._login_failed = True
        record_failure(self.state, self.account, exc.code)
        text = exc.message
        if exc.code in RECONNECT_CODES:
            return AccountNeedsReconnectError(text, code=exc.code)
        if exc.retryable:
            return TransientSendError(text, code=exc.code, retry_after=exc.retry_after)
        return PermanentSendError(text, code=exc.code)

    def _send_graph(self, prepared: Prepared) -> SendResult:

        url = _graph_url(self.account)
        for attempt in (1, 2):
            token = self._graph_token(force=attempt == 2)
            try:
                send_via_graph(
                    prepared.full_bytes, access_token=token, graph_url=url,
                    timeout=self._options.timeout, ca_file=self._options.ca_file,
                    allow_private_hosts=self._options.allow_private_hosts,
                )  # fmt: skip
            except ConnectionFailed as exc:
                if exc.code == errors.TOKEN_REJECTED and attempt == 1:
                    continue  # 401: Graph did not take the message; refresh and try once more
                raise self._graph_error(exc, prepared) from None
            return self._finish(prepared, "graph", prepared.recipients, {})
        raise AssertionError("unreachable")  # pragma: no cover

    def _graph_token(self, *, force: bool) -> str:
        """A Graph-audience token (Microsoft issues one token per resource: the SMTP/IMAP token
        is refused by Graph), from the account's one refresh token under the row lock."""

        try:
            return fresh_graph_token(
                self.state, self.account, min_validity=TOKEN_MARGIN, force=force
            )
        except GraphNotGranted as exc:
            raise PermanentSendError(str(exc), code=errors.GRAPH_SEND_DENIED) from None
        except (TokenError, EncryptionKeyError) as exc:
            raise _credential_failure(exc) from None

    def _graph_error(self, exc: ConnectionFailed, prepared: Prepared) -> SendError:

        details: dict[str, Any] = {"code": exc.code, "message_id": prepared.message_id}
        if isinstance(exc, GraphOutcomeUnknown):
            # The POST went out (read timeout, connection lost, 500/502/504): Graph may have
            # sent the message. Checked first: never retryable.
            return DeliveryUnknownError(UNKNOWN_MESSAGE, **details)
        if exc.code in (errors.TOKEN_REJECTED, errors.GRAPH_SEND_DENIED):
            return self._login_error(exc)
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

    def _finish(
        self, prepared: Prepared, via: str, accepted: list[str],
        refused: dict[str, tuple[int, str]],
    ) -> SendResult:  # fmt: skip
        sent_at = utcnow()
        folder, copy_error = None, None
        if via == "smtp" and self.account.imap_host and not self._provider_keeps_copy():
            folder, copy_error = self._save_copy(prepared, sent_at)
        return SendResult(
            message_id=prepared.message_id, accepted=list(accepted), refused=dict(refused),
            account_id=self.account.id, via=via, sent_at=sent_at, sent_copy=folder,
            sent_copy_error=copy_error,
        )  # fmt: skip

    def _provider_keeps_copy(self) -> bool:
        if self._keeps_copy is None:
            self._keeps_copy = keeps_sent_copy(self.account)
        return self._keeps_copy

    def _save_copy(self, prepared: Prepared, when: datetime) -> tuple[str | None, str | None]:
        if self._copy is None:
            assert self._settings is not None
            self._copy = SentCopy(self._settings, self._options, self.account.folder_sent)
        error = self._copy.save(prepared.full_bytes, when)
        if error is not None:
            log.warning(
                "Account %s: sent message %s, but its copy was not saved to the Sent folder (%s)",
                self.account.id, prepared.message_id, error,
            )  # fmt: skip
            return None, error
        return self._copy.folder, None


def send(
    state: Runtime, account: MailAccount, message: Message, *, actor: Actor | None = None
) -> SendResult:
    """Send one message from ``account`` (see :class:`Sender`)."""
    with Sender(state, account, actor=actor, bulk=False) as sender:
        return sender.send(message)


__all__ = [
    "InvalidMessage",
    "MessageOutcome",
    "SendResult",
    "Sender",
    "check_usable",
    "keeps_sent_copy",
    "send",
]
