"""What a send reports: :class:`SendResult` per accepted message, :class:`MessageOutcome` per
message of a session, and :class:`SendLog`, the session's bounded record of them.

A bulk session may send millions of messages; keeping every outcome for the session's life cost
730 bytes a message (issue 13). :class:`SendLog` counts every message and keeps only the most
recent outcomes, so a session's memory does not grow with the number of messages. Every outcome
still reaches the host as it happens: ``send`` returns the result or raises the error, and
``message_sent`` fires for each accepted message.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import overload

from ..exceptions import SendError

#: How many outcomes a session keeps (the most recent); counts cover every message.
RESULTS_KEPT = 1000


@dataclass(frozen=True)
class SendResult:
    """A message the server accepted.

    ``accepted``: recipients the server took (all of them for Graph, which does not say);
    ``refused``: recipients refused while others were accepted, mapped to ``(code, reply)``;
    ``sent_copy``: the IMAP folder a copy was appended to (``None``: not made here, e.g. the
    provider keeps one, or it failed: then ``sent_copy_error`` holds a stable code);
    ``sent_copy_pending``: in a bulk session the copy is queued and appended with others in
    one batch (see :class:`~flask_mailconnect.sending.Sender`); the outcome kept in
    ``Sender.results`` is updated once the batch is saved.
    """

    message_id: str
    accepted: list[str]
    refused: dict[str, tuple[int, str]]
    account_id: int
    via: str
    sent_at: datetime
    sent_copy: str | None = None
    sent_copy_error: str | None = None
    sent_copy_pending: bool = False


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


class SendLog:
    """The outcomes of a sending session, in order: every message counted, the most recent
    ``keep`` (:data:`RESULTS_KEPT`) kept.

    Iterating, ``len()`` and indexing see the kept outcomes (all of them while a session has
    sent at most ``keep`` messages: then it reads like the list it used to be); ``total``,
    ``sent``, ``failed`` and ``copies_failed`` count the whole session. ``MessageOutcome.index``
    is the message's position in the whole session.
    """

    def __init__(self, keep: int = RESULTS_KEPT) -> None:
        self.keep = keep
        self._recent: deque[MessageOutcome] = deque(maxlen=keep)
        #: Messages handed to ``send`` (accepted or not).
        self.total = 0
        #: Messages the server accepted.
        self.sent = 0
        #: Messages refused or failed.
        self.failed = 0
        #: Accepted messages whose Sent copy could not be saved.
        self.copies_failed = 0

    def append(self, outcome: MessageOutcome) -> None:
        self._recent.append(outcome)
        self.total += 1
        if outcome.ok:
            self.sent += 1
        else:
            self.failed += 1

    def copy_saved(self, index: int, folder: str | None, error: str | None) -> None:
        """Record the Sent copy of message ``index`` (queued earlier) as saved or failed."""
        if error is not None:
            self.copies_failed += 1
        first = self.total - len(self._recent)  # session index of the oldest outcome kept
        at = index - first
        if 0 <= at < len(self._recent):
            outcome = self._recent[at]
            if outcome.result is not None:
                result = replace(
                    outcome.result, sent_copy=folder, sent_copy_error=error,
                    sent_copy_pending=False,
                )  # fmt: skip
                self._recent[at] = replace(outcome, result=result)

    @property
    def dropped(self) -> int:
        """Outcomes no longer kept (the session sent more than ``keep`` messages)."""
        return self.total - len(self._recent)

    def __iter__(self) -> Iterator[MessageOutcome]:
        return iter(self._recent)

    def __len__(self) -> int:
        return len(self._recent)

    @overload
    def __getitem__(self, position: int) -> MessageOutcome: ...

    @overload
    def __getitem__(self, position: slice) -> list[MessageOutcome]: ...

    def __getitem__(self, position: int | slice) -> MessageOutcome | list[MessageOutcome]:
        if isinstance(position, slice):  # as the list it used to be: conn.results[-10:]
            return list(self._recent)[position]
        return self._recent[position]

    def __bool__(self) -> bool:
        return bool(self._recent)

    def __repr__(self) -> str:
        return (
            f"<SendLog total={self.total} sent={self.sent} failed={self.failed} "
            f"kept={len(self._recent)}>"
        )


__all__ = ["RESULTS_KEPT", "MessageOutcome", "SendLog", "SendResult"]
