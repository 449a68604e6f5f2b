"""A refresh that fails reaches the callers that waited for it (oauth/gate.py), and only them.

The looker hands over the typed error its refresh raised: everyone asleep behind it sees that
error instead of asking the provider again in turn; a caller arriving after the hand-over tries
again itself. No timing is asserted; the deadlines only bound a hang.
"""

from __future__ import annotations

import threading
import time

from flask_mailconnect.exceptions import TokenRefreshUnavailable
from flask_mailconnect.oauth.gate import Gate

CROWD = 20


def _sleepers(
    gate: Gate[str], count: int, results: list[object], kind: str = "mail"
) -> list[threading.Thread]:
    started = threading.Semaphore(0)

    def sleeper() -> None:
        arrived = gate.latest[0]
        started.release()
        assert gate.wait(arrived, time.monotonic() + 60)
        results.append(gate.found(arrived, lambda row: True) or gate.failed(arrived, kind))

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


def test_the_sleepers_get_the_failure_of_the_refresh_they_waited_for() -> None:
    gate: Gate[str] = Gate()
    assert gate.lock.acquire(blocking=False)  # a looker is at work
    results: list[object] = []
    threads = _sleepers(gate, CROWD, results)
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
    threads = _sleepers(gate, 3, mail) + _sleepers(gate, 3, graph, kind="graph")
    assert _asleep(gate, 6)
    refused = TokenRefreshUnavailable("Graph is down.", error="server_error")
    gate.hand_over(None, ("graph", refused))
    for thread in threads:
        thread.join(timeout=60)
    assert mail == [None] * 3
    assert graph == [refused] * 3
