"""Sent copies of a bulk session, appended in batches on a thread of their own.

One APPEND per message made a bulk send with copies 2.4 times slower than without (issue 13).
Here copies are queued; a full batch (or one that has waited long enough, or a smaller one when
the thread is idle) is handed to one background thread that appends it (one MULTIAPPEND where
the server has it, see :meth:`~flask_mailconnect.transport.submit.SentCopy.save_many`) while
the session goes on sending. The thread only talks IMAP: no Flask, no database; outcomes come
back to the Sender's own thread through :meth:`CopyQueue.finished`, which the Sender applies to
its results and logs.
At most :data:`MAX_BATCHES_IN_FLIGHT` batches wait for the thread, so memory stays bounded when
the IMAP server is slower than the SMTP server.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from ..transport.settings import ServerSettings, TransportOptions
from ..transport.submit import SentCopy

log = logging.getLogger("flask_mailconnect.sending")

#: Copies per batch ...
COPY_BATCH = 100
#: ... or bytes per batch ...
COPY_BATCH_BYTES = 4 * 1024 * 1024
#: ... or seconds the oldest queued copy may wait (checked at the next send and on close).
COPY_DELAY = 5.0
#: Batches handed to the thread and not yet saved; a further batch waits for the oldest.
MAX_BATCHES_IN_FLIGHT = 2
#: Copies handed over early when the thread has nothing to do: it stays busy while the
#: session sends, so the copies left to append when the session closes are few.
IDLE_BATCH = 20

#: One queued copy: session index, Message-ID, bytes, when it was sent.
Queued = tuple[int, str, bytes, datetime]
#: One saved (or failed) copy: session index, Message-ID, folder or None, error code or None.
Outcome = tuple[int, str, str | None, str | None]


class CopyQueue:
    """Sent copies waiting for their batch, and batches being appended."""

    def __init__(
        self, settings: ServerSettings, options: TransportOptions, mapped: str | None
    ) -> None:
        self._copy = SentCopy(settings, options, mapped)
        # Read here, not bound as defaults: tests and hosts may change the module's values.
        self._batch_size, self._batch_bytes = COPY_BATCH, COPY_BATCH_BYTES
        self._delay = COPY_DELAY
        self._waiting: list[Queued] = []
        self._waiting_bytes = 0
        self._since = 0.0
        self._pool: ThreadPoolExecutor | None = None
        self._in_flight: list[tuple[list[Queued], Future[list[str | None]]]] = []

    def add(self, index: int, message_id: str, data: bytes, when: datetime) -> None:
        if not self._waiting:
            self._since = time.monotonic()
        self._waiting.append((index, message_id, data, when))
        self._waiting_bytes += len(data)
        waiting = len(self._waiting)
        if (
            waiting >= self._batch_size
            or self._waiting_bytes >= self._batch_bytes
            or (waiting >= IDLE_BATCH and self._idle())
        ):
            self._hand_over()

    def _idle(self) -> bool:
        """The thread has appended every batch handed to it (one thread: the last is the
        newest)."""
        return not self._in_flight or self._in_flight[-1][1].done()

    def due(self) -> None:
        """Hand over the waiting copies if the oldest has waited long enough."""
        if self._waiting and time.monotonic() - self._since >= self._delay:
            self._hand_over()

    def _hand_over(self) -> None:
        batch, self._waiting, self._waiting_bytes = self._waiting, [], 0
        if not batch:
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="mailconnect-sent-copy")
        if len(self._in_flight) >= MAX_BATCHES_IN_FLIGHT:
            self._in_flight[0][1].result()  # back-pressure: wait for the oldest batch
        future = self._pool.submit(self._copy.save_many, [(d, w) for _, _, d, w in batch])
        self._in_flight.append((batch, future))

    def finished(self, *, wait: bool = False) -> list[Outcome]:
        """Outcomes of the batches saved so far (all of them with ``wait``), in order."""
        out: list[Outcome] = []
        while self._in_flight and (wait or self._in_flight[0][1].done()):
            batch, future = self._in_flight.pop(0)
            try:
                errors = future.result()  # save_many returns codes; a bug must not fail sends
            except Exception as exc:
                log.warning("Sent copies failed unexpectedly: %s", type(exc).__name__)
                errors = ["append_failed"] * len(batch)
            folder = self._copy.folder
            out.extend(
                (index, message_id, None if error else folder, error)
                for (index, message_id, _, _), error in zip(batch, errors, strict=True)
            )
        return out

    def close(self) -> list[Outcome]:
        """Append what is still waiting, wait for every batch, close the IMAP connection."""
        self._hand_over()
        try:
            return self.finished(wait=True)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self._copy.close()


__all__ = ["COPY_BATCH", "COPY_BATCH_BYTES", "COPY_DELAY", "CopyQueue"]
