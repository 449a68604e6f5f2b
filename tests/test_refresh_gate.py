"""The in-process queue of callers waiting for one account's token refresh (oauth/gate.py).

Sleepers are woken as a chain (each wakes the next), so one sleeper that gives up at its
deadline must not strand the ones behind it, and a looker's hand-over reaches everyone who was
asleep, each seeing the row it shared. No timing is asserted; the deadlines only bound a hang.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask_mailconnect.exceptions import TokenRefreshUnavailable
from flask_mailconnect.oauth.gate import Gate, joined

CROWD = 40


def _sleepers(
    gate: Gate[str], count: int, deadline: float, results: list[object], kind: str = "mail"
) -> list[Any]:
    """``count`` sleepers for a ``kind`` of token; each records what it was handed (the row,
    else the error of a token request for its kind, else None) or "gave up"."""
    started = threading.Semaphore(0)

    def sleeper() -> None:
        seen = gate.latest[0]
        started.release()
        if not gate.wait(seen, deadline):
            results.append("gave up")
            return
        results.append(gate.found(seen, lambda row: row == "fresh") or gate.failed(seen, kind))

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


# A refresh that fails reaches the callers that waited for it, and only them: everyone asleep
# behind the looker sees its typed error instead of asking the provider again in turn.


def test_the_sleepers_get_the_failure_of_the_refresh_they_waited_for() -> None:
    gate: Gate[str] = Gate()
    assert gate.lock.acquire(blocking=False)  # a looker is at work
    results: list[object] = []
    threads = _sleepers(gate, CROWD, time.monotonic() + 60, results)
    assert _asleep(gate, CROWD)
    failure = TokenRefreshUnavailable("The provider is down.", error="server_error")
    gate.hand_over(None, ("mail", failure))
    for thread in threads:
        thread.join(timeout=60)
    assert results == [failure] * CROWD
    assert not gate.lock.locked()
    # Arriving now, after the failure: nothing handed over to this caller, it tries itself.
    arrived = gate.latest[0]
    assert gate.failed(arrived, "mail") is None
    assert gate.found(arrived, lambda row: True) is None
    assert gate.lock.acquire(blocking=False)


def test_a_row_handed_over_after_a_failure_wins_over_it() -> None:
    """Asleep through a failed refresh and a good one after it: the row, not the error."""
    gate: Gate[str] = Gate()
    arrived = gate.latest[0]
    assert gate.lock.acquire(blocking=False)
    gate.hand_over(None, ("mail", TokenRefreshUnavailable("down")))
    assert gate.lock.acquire(blocking=False)
    gate.hand_over("fresh")
    assert gate.found(arrived, lambda row: row == "fresh") == "fresh"


def test_a_failure_for_the_graph_token_is_not_the_mail_tokens() -> None:
    """Callers for the mail token asleep behind a Graph token request that failed: they get
    no error (a refused Graph scope says nothing about the mail token) and look themselves."""
    gate: Gate[str] = Gate()
    assert gate.lock.acquire(blocking=False)
    mail: list[object] = []
    graph: list[object] = []
    soon = time.monotonic() + 60
    threads = _sleepers(gate, 3, soon, mail) + _sleepers(gate, 3, soon, graph, kind="graph")
    assert _asleep(gate, 6)
    refused = TokenRefreshUnavailable("Graph is down.", error="server_error")
    gate.hand_over(None, ("graph", refused))
    for thread in threads:
        thread.join(timeout=60)
    assert mail == [None] * 3
    assert graph == [refused] * 3
