"""The threads detection's sources run on: one bounded pool per process, shared by every app
and request, and a cap on detections running at once.

A detection asks its network sources at once, each in a thread, and answers by its deadline
without waiting for the slow ones; those end soon after it (every request and DNS query they
make ends by the same deadline). The domain comes from whoever types an address, so nothing
here may grow with what they type: at most :data:`MAX_DETECTIONS` detections run at once in a
process, each holding its place until its last source has ended (not only until it answered),
and the pool never has more than :data:`MAX_DETECTIONS` x :data:`PER_DETECTION` threads. A
detection that finds every place taken is not started: it answers "busy" at once.

The threads are daemon threads: a worker still waiting on a server never keeps the process
(``flask mailconnect detect``, a web worker being stopped) from exiting. A forked child (a
pre-forking server started after a detection) starts with an empty pool of its own.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

#: Detections one process runs at once; one more answers "busy".
MAX_DETECTIONS = 8
#: Sources one detection asks at once (ISP database, autoconfig, .well-known, SRV, MX,
#: Autodiscover): with :data:`MAX_DETECTIONS`, the pool's size, so no source ever queues.
PER_DETECTION = 6

_Task = tuple["Future[Any]", Callable[[], Any]]


class Busy(Exception):
    """Every detection place of this process is taken: nothing was started."""


class Workers:
    """A fixed-size pool of daemon threads, started as they are needed, and the places of
    the detections using it."""

    def __init__(self, places: int = MAX_DETECTIONS, per_place: int = PER_DETECTION) -> None:
        self.size = places * per_place
        self.per_place = per_place
        self._places = threading.BoundedSemaphore(places)
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._pending = 0  # tasks queued or running: the threads needed
        #: Tasks running now (for the tests, and for an admin wondering).
        self.running = 0

    def start(self, calls: Sequence[Callable[[], T]]) -> list[Future[T]]:
        """Start one detection's ``calls`` (at most :attr:`per_place`) in a place of its own,
        given back once every one of them has ended (or was cancelled before it started).
        Raises :class:`Busy`, at once, when every place is taken."""
        if len(calls) > self.per_place:
            raise ValueError(f"at most {self.per_place} sources per detection")
        if not self._places.acquire(blocking=False):
            raise Busy()
        futures: list[Future[T]] = [Future() for _ in calls]
        left = [len(futures)]
        lock = threading.Lock()

        def ended(_future: Future[T]) -> None:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                self._places.release()

        for future, call in zip(futures, calls, strict=True):
            future.add_done_callback(ended)
            self._submit(future, call)
        if not futures:
            self._places.release()
        return futures

    def _submit(self, future: Future[Any], call: Callable[[], Any]) -> None:
        with self._lock:
            self._pending += 1
            if len(self._threads) < min(self._pending, self.size):
                thread = threading.Thread(
                    target=self._work, name=f"mailconnect-detect-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._tasks.put((future, call))

    def _work(self) -> None:
        while True:
            future, call = self._tasks.get()
            if future.set_running_or_notify_cancel():  # False: cancelled while queued
                with self._lock:
                    self.running += 1
                try:
                    future.set_result(call())
                except BaseException as exc:  # the future carries it to the detection
                    future.set_exception(exc)
                with self._lock:
                    self.running -= 1
            with self._lock:
                self._pending -= 1

    @property
    def threads(self) -> int:
        """Threads started so far (never more than :attr:`size`)."""
        with self._lock:
            return len(self._threads)


_workers = Workers()


def workers() -> Workers:
    """This process's pool."""
    return _workers


def _after_fork() -> None:
    global _workers
    _workers = Workers()  # the parent's threads do not exist in the child


os.register_at_fork(after_in_child=_after_fork)
