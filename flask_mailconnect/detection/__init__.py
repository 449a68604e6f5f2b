"""Server detection: which servers an address uses, found without its password.

:func:`detect` asks, under one deadline, the provider catalogue, Mozilla's ISP database, the
domain's own ``autoconfig`` files, DNS SRV records, the MX host and Microsoft's Autodiscover;
:class:`Detection` is its answer. See ``docs/detection.rst``.

Importing the package loads the answer's types only: the sources, the cache and the worker
pool (:mod:`.run` and what it imports) load with the first detection, not at a host's
start-up (issue 13).
"""

from __future__ import annotations

from collections.abc import Callable

from .model import DetectedServer, Detection, SourceAttempt


def detect(
    email: str,
    *,
    network: bool | Callable[[], bool] = True,
    fresh: bool = False,
    wait_all: bool = False,
) -> Detection:
    """Servers for ``email`` and where they came from (:func:`.run.detect`).

    ``network=False``: the catalogue and the cache only; a callable is asked only when the
    network is needed (``/detect`` spends one of the person's look-ups per minute there).
    ``fresh``: ignore the cached answer (a new one is stored). ``wait_all``: learn every
    source's outcome (up to the deadline) even after the winner is known.
    """
    from .run import detect as run_detect

    return run_detect(email, network=network, fresh=fresh, wait_all=wait_all)


__all__ = ["DetectedServer", "Detection", "SourceAttempt", "detect"]
