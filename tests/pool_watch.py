"""Counting an engine's pool checkouts: for the refresh tests and benchmarks/bench_refresh.py."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa


class PoolWatch:
    """Connections checked out of an engine's pool right now, and the most at once (pool
    events: what the pool itself counts)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.lock = threading.Lock()
        self.out = self.peak = self.checkouts = 0
        sa.event.listen(engine, "checkout", self._checkout)
        sa.event.listen(engine, "checkin", self._checkin)

    def _checkout(self, *_: Any) -> None:
        with self.lock:
            self.out += 1
            self.checkouts += 1
            self.peak = max(self.peak, self.out)

    def _checkin(self, *_: Any) -> None:
        with self.lock:
            self.out -= 1

    def restart_peak(self) -> None:
        with self.lock:
            self.peak = self.out
