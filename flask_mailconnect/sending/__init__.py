"""Sending mail through an account: one message, or many over one connection.

:class:`Sender` holds one authenticated SMTP connection (or nothing, for Graph accounts) and
sends messages prepared by compose.py (a Draft: compose_draft.py). ``MailConnect.send`` uses a
Sender for one message; ``MailConnect.sending`` hands one to the host for many. Rules:

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
  itself; a failed copy is logged and reported in the result, never a failed send. A single
  send appends its copy before returning; a bulk session queues copies and a thread of its own
  appends them in batches (sending/copies.py: one MULTIAPPEND where the server has it) while
  the session goes on sending: its results say ``sent_copy_pending`` and ``Sender.results`` is
  updated once the batch is saved (at the latest when the session closes).
* ``Sender.results`` is a :class:`~flask_mailconnect.sending.outcomes.SendLog`: every message
  counted, the most recent :data:`~flask_mailconnect.sending.outcomes.RESULTS_KEPT` outcomes
  kept, so a session's memory does not grow with the number of messages.

Like accounts.py, nothing here commits: the caller owns the transaction.
"""

from __future__ import annotations

import email.errors
import logging
import smtplib
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import Message
from types import TracebackType

from .. import codes as errors
from .. import credentials, signals
from ..accounts import require
from ..accounts.status import RECONNECT_CODES, record_failure, record_success
from ..compose import Prepared
from ..compose_draft import prepare_message
from ..drafts import Draft
from ..exceptions import (
    AccountNeedsReconnectError,
    ConnectionFailed,
    DeliveryUnknownError,
    EncryptionKeyError,
    GraphNotGranted,
    InvalidMessage,
    PermanentSendError,
    SendError,
    TokenError,
    TransientSendError,
)
from ..models import MailAccount, utcnow
from ..oauth.refresh import fresh_access_token, fresh_graph_token
from ..owners import Actor
from ..runtime import Runtime
from ..transport.graph import send_via_graph
from ..transport.settings import ServerSettings
from ..transport.smtp import open_smtp
from ..transport.submit import SentCopy, SubmitFailed, quit_quietly, submit
from .copies import COPY_BATCH, CopyQueue, Outcome
from .failures import (
    UNKNOWN_MESSAGE,
    check_usable,
    credential_failure,
    graph_error,
    graph_url,
    keeps_sent_copy,
    submit_error,
)
from .outcomes import RESULTS_KEPT, MessageOutcome, SendLog, SendResult

log = logging.getLogger("flask_mailconnect.sending")

#: Renew the connection (and the token) when the access token has less than this left.
TOKEN_MARGIN = timedelta(minutes=5)


class Sender:
    """Sends messages from one account over one connection (reconnecting when needed).

    Use as a context manager (``with mailconnect.sending(account) as conn``); ``send`` returns a
    :class:`SendResult` or raises a :class:`SendError`; ``results`` (a :class:`SendLog`) counts
    every message and keeps the most recent outcomes in order. Not thread-safe: one Sender per
    thread.
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
        #: Every message counted, the most recent outcomes kept (see SendLog).
        self.results = SendLog(RESULTS_KEPT)
        #: Connections opened (1 plus reconnects): for logs and tests.
        self.connections = 0
        self._bulk = bulk
        self._options = state.transport_options()
        self._client: smtplib.SMTP | None = None
        self._settings: ServerSettings | None = None
        self._sent_on_client = 0
        self._copy: SentCopy | None = None
        #: Bulk: Sent copies queued and appended in batches on their own thread.
        self._copies: CopyQueue | None = None
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
        if self._copies is not None:
            self._record_copies(self._copies.close())
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

    def send(self, message: Message | Draft) -> SendResult:
        """Send one message (an :class:`~email.message.EmailMessage` or a
        :class:`~flask_mailconnect.Draft`); see the module doc for what is retried (only what
        is safe)."""
        if self._closed:
            raise RuntimeError("this sending connection is closed")
        if self._copies is not None:
            self._copies.due()
            self._record_copies(self._copies.finished())
        index = self.results.total
        prepared: Prepared | None = None
        try:
            check_usable(self.account)
            try:
                prepared = prepare_message(
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
                raise submit_error(exc, prepared) from None
            self._sent_on_client += 1
            return self._finish(prepared, "smtp", outcome.accepted, outcome.refused)
        raise AssertionError("unreachable")  # pragma: no cover

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
                raise credential_failure(exc) from None
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

        url = graph_url(self.account)
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
            raise credential_failure(exc) from None

    def _graph_error(self, exc: ConnectionFailed, prepared: Prepared) -> SendError:
        mapped = graph_error(exc, prepared)
        return mapped if mapped is not None else self._login_error(exc)

    def _finish(
        self, prepared: Prepared, via: str, accepted: list[str],
        refused: dict[str, tuple[int, str]],
    ) -> SendResult:  # fmt: skip
        sent_at = utcnow()
        folder, copy_error, pending = None, None, False
        if via == "smtp" and self.account.imap_host and not self._provider_keeps_copy():
            if self._bulk:
                self._queue_copy(prepared, sent_at)
                pending = True
            else:
                folder, copy_error = self._save_copy(prepared, sent_at)
        return SendResult(
            message_id=prepared.message_id, accepted=list(accepted), refused=dict(refused),
            account_id=self.account.id, via=via, sent_at=sent_at, sent_copy=folder,
            sent_copy_error=copy_error, sent_copy_pending=pending,
        )  # fmt: skip

    def _provider_keeps_copy(self) -> bool:
        if self._keeps_copy is None:
            self._keeps_copy = keeps_sent_copy(self.account)
        return self._keeps_copy

    def _copier(self) -> SentCopy:
        if self._copy is None:
            assert self._settings is not None
            self._copy = SentCopy(self._settings, self._options, self.account.folder_sent)
        return self._copy

    def _save_copy(self, prepared: Prepared, when: datetime) -> tuple[str | None, str | None]:
        error = self._copier().save(prepared.full_bytes, when)
        if error is not None:
            self._copy_failed(prepared.message_id, error)
            return None, error
        return self._copier().folder, None

    def _copy_failed(self, message_id: str, error: str) -> None:
        log.warning(
            "Account %s: sent message %s, but its copy was not saved to the Sent folder (%s)",
            self.account.id, message_id, error,
        )  # fmt: skip

    def _queue_copy(self, prepared: Prepared, when: datetime) -> None:
        if self._copies is None:
            assert self._settings is not None
            self._copies = CopyQueue(self._settings, self._options, self.account.folder_sent)
        index = self.results.total  # this message's outcome is appended right after
        self._copies.add(index, prepared.message_id, prepared.full_bytes, when)

    def _record_copies(self, outcomes: list[Outcome]) -> None:
        """Apply saved batches to ``results``; log each copy that could not be saved."""
        for index, message_id, folder, error in outcomes:
            if error is not None:
                self._copy_failed(message_id, error)
            self.results.copy_saved(index, folder, error)


def send(
    state: Runtime, account: MailAccount, message: Message | Draft, *, actor: Actor | None = None
) -> SendResult:
    """Send one message from ``account`` (see :class:`Sender`)."""
    with Sender(state, account, actor=actor, bulk=False) as sender:
        return sender.send(message)


__all__ = [
    "COPY_BATCH",
    "InvalidMessage",
    "MessageOutcome",
    "SendLog",
    "SendResult",
    "Sender",
    "check_usable",
    "keeps_sent_copy",
    "send",
]
