"""The callers in one process that need one account's token at once (see :mod:`.locks`).

One of them, the looker (holding :attr:`Gate.lock`), looks at the database and perhaps
refreshes; the others sleep without a database connection until it hands over the row it saw
(or the typed error its refresh raised), then each checks that row against its own need.

Waking is a chain, not a broadcast: the looker wakes the first sleeper, each sleeper wakes the
next as it wakes. Under the GIL only one of them runs at a time anyway; a broadcast
(``Condition.notify_all``) makes 200 threads runnable at once, all fighting over the GIL and
the condition's lock (measured on 2 cores: the last of 200 bare threads up in ~8 ms instead of
~11-14; ~10 % sooner with a caller's own work after waking). Nobody polls: 200 threads polling
would starve the looker, who needs the GIL back after each of its database round trips.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

R = TypeVar("R")


class Gate(Generic[R]):
    """One account's queue (rows of type ``R``)."""

    def __init__(self) -> None:
        #: Held by the looker.
        self.lock = threading.Lock()
        #: Guards ``latest`` and ``sleepers`` (held for a few bytecodes at a time).
        self._mutex = threading.Lock()
        #: Callers inside :func:`joined` (the entry is forgotten at 0).
        self.users = 0
        #: (version, row, failure): what the last looker handed over (a row, or the token kind
        #: it asked for with the typed error its token request raised), read and replaced as
        #: one value.
        self.latest: tuple[int, R | None, tuple[str, BaseException] | None] = (0, None, None)
        #: The sleepers waiting for the current looker, each a held lock that wakes it.
        self._sleepers: deque[threading.Lock] = deque()
        #: How long its callers wait at most (seconds), set by the first that needs it.
        self.patience: float | None = None

    def hand_over(self, row: R | None, failure: tuple[str, BaseException] | None = None) -> None:
        """The looker is done: share ``row`` or the ``failure`` of its refresh (neither:
        nothing to share, look yourselves), let go of :attr:`lock` and wake the sleepers. One
        step under the mutex, so that no sleeper finds the lock free before the row is there,
        and none falls asleep after the wake."""
        with self._mutex:
            if row is not None or failure is not None:
                self.latest = (self.latest[0] + 1, row, failure)
            self.lock.release()
            sleepers, self._sleepers = self._sleepers, deque()
        self._wake_next(sleepers)

    def wait(self, seen: int, deadline: float) -> bool:
        """Sleep until a looker hands over (after version ``seen``; at once if one has).
        False when ``deadline`` (``time.monotonic()``) passed first."""
        me = threading.Lock()
        me.acquire()
        with self._mutex:
            if self.latest[0] != seen or not self.lock.locked():
                return True
            queue = self._sleepers
            queue.append(me)
        woken = me.acquire(timeout=max(0.0, deadline - time.monotonic()))
        if not woken:
            with self._mutex:
                if me in queue:  # nobody is coming for us: give up
                    queue.remove(me)
                    return False
            # Taken off the queue just now: the wake is ours, so is passing it on.
        self._wake_next(queue)
        return True

    def _wake_next(self, queue: deque[threading.Lock]) -> None:
        with self._mutex:
            sleeper = queue.popleft() if queue else None
        if sleeper is not None:
            sleeper.release()

    def found(self, arrived: int, settled: Callable[[R], bool]) -> R | None:
        """The row a caller before us found or stored since we arrived, if it will do."""
        version, row, _ = self.latest
        if version != arrived and row is not None and settled(row):
            return row
        return None

    def failed(self, arrived: int, kind: str) -> BaseException | None:
        """The error of the token request a caller waited for: one for the same kind of token
        (a refused Graph token says nothing about the mail token), made since it arrived."""
        version, _, failure = self.latest
        if version == arrived or failure is None or failure[0] != kind:
            return None
        return failure[1]


@contextmanager
def joined(gates: dict[int, Gate[R]], gates_lock: threading.Lock, key: int) -> Iterator[Gate[R]]:
    """The gate for ``key`` in ``gates`` (made on first use), while the caller needs it."""
    with gates_lock:
        gate = gates.get(key)
        if gate is None:
            gate = gates[key] = Gate()
        gate.users += 1
    try:
        yield gate
    finally:
        with gates_lock:
            gate.users -= 1
            if not gate.users:  # nobody waits: forget it (and the tokens on its row)
                del gates[key]
