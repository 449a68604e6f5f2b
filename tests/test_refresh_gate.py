"""The in-process queue of callers waiting for one account's token refresh (oauth/gate.py).

Sleepers are woken as a chain (each wakes the next), so one sleeper that gives up at its
deadline must not strand the ones behind it, and a looker's hand-over reaches everyone who was
asleep, each seeing the row it shared. No timing is asserted; the deadlines only bound a hang.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask_mailconnect.oauth.gate import Gate, joined

CROWD = 40


def _sleepers(gate: Gate[str], count: int, deadline: float, results: list[object]) -> list[Any]:
    started = threading.Semaphore(0)

    def sleeper() -> None:
        seen = gate.latest[0]
        started.release()
        woken = gate.wait(seen, deadline)
        results.append(gate.found(seen, lambda row: row == "fresh") if woken else "gave up")

    threads = [threading.Thread(target=sleeper) for _ in range(count)]
    for thread in threads:
        thread.start()
    for _ in threads:
        started.acquire()
    return threads


def _asleep(gate: Gate[str], count: int) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with gate._mutex:
            if len(gate._sleepers) == count:
                return True
        time.sleep(0.005)
    return False


def test_a_hand_over_wakes_every_sleeper_with_the_shared_row() -> None:
    gate: Gate[str] = Gate()
    assert gate.lock.acquire(blocking=False)  # a looker is at work
    results: list[object] = []
    threads = _sleepers(gate, CROWD, time.monotonic() + 60, results)
    assert _asleep(gate, CROWD)
    assert results == []  # nobody woke before the hand-over
    gate.hand_over("fresh")
    for thread in threads:
        thread.join(timeout=60)
    assert results == ["fresh"] * CROWD
    assert not gate.lock.locked()


def test_one_sleeper_giving_up_does_not_strand_the_others() -> None:
    gate: Gate[str] = Gate()
    assert gate.lock.acquire(blocking=False)
    impatient: list[object] = []
    patient: list[object] = []
    early = _sleepers(gate, 1, time.monotonic() + 0.2, impatient)
    assert _asleep(gate, 1)  # first in the queue
    late = _sleepers(gate, CROWD, time.monotonic() + 60, patient)
    for thread in early:
        thread.join(timeout=60)
    assert impatient == ["gave up"]
    assert _asleep(gate, CROWD)
    gate.hand_over("fresh")
    for thread in late:
        thread.join(timeout=60)
    assert patient == ["fresh"] * CROWD


def test_a_looker_with_nothing_to_share_frees_the_lock_for_the_next() -> None:
    gate: Gate[str] = Gate()
    assert gate.lock.acquire(blocking=False)
    results: list[object] = []
    threads = _sleepers(gate, 3, time.monotonic() + 60, results)
    assert _asleep(gate, 3)
    gate.hand_over(None)  # nothing to share (an unexpected error): look yourselves
    for thread in threads:
        thread.join(timeout=60)
    assert results == [None] * 3  # woken, nothing usable: each goes for the lock itself
    assert gate.lock.acquire(blocking=False)


def test_the_gate_is_forgotten_when_its_last_caller_leaves() -> None:
    gates: dict[int, Gate[str]] = {}
    lock = threading.Lock()
    with joined(gates, lock, 7) as first, joined(gates, lock, 7) as second:
        assert first is second and first.users == 2
    assert gates == {}


def test_a_sleeper_whose_wake_comes_as_it_gives_up_passes_the_wake_on() -> None:
    """The wake reached it (it is off the queue) just as its deadline passed: the next one
    must still be woken, or the chain would stop there."""
    gate: Gate[str] = Gate()
    assert gate.lock.acquire(blocking=False)
    first: list[object] = []
    second: list[object] = []
    threads = _sleepers(gate, 1, time.monotonic() + 0.2, first)
    assert _asleep(gate, 1)
    threads += _sleepers(gate, 1, time.monotonic() + 60, second)
    assert _asleep(gate, 2)
    with gate._mutex:
        gate._sleepers.popleft()  # a waker took it off the queue and has not released it yet
    threads[0].join(timeout=60)
    threads[1].join(timeout=60)
    assert not threads[1].is_alive()  # woken by the first, long before its own deadline
    assert first == [None] and second == [None]  # nothing handed over: look yourselves
