"""Server detection: which servers an address uses, found without its password.

:func:`detect` asks, under one deadline, the provider catalogue, Mozilla's ISP database, the
domain's own ``autoconfig`` files, DNS SRV records, the MX host and Microsoft's Autodiscover;
:class:`Detection` is its answer. See ``docs/detection.rst``.

Importing the package loads the answer's types only: the sources, the cache and the worker
pool (:mod:`.run` and what it imports) load with the first detection, not at a host's
start-up (issue 13).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import DetectedServer, Detection, SourceAttempt

if TYPE_CHECKING:
    from .run import detect


def __getattr__(name: str) -> Any:
    # PEP 562: ``detect`` (and with it the sources, the cache and the pool) on first use.
    if name == "detect":
        from .run import detect

        return detect
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DetectedServer", "Detection", "SourceAttempt", "detect"]
