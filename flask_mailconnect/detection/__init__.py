"""Server detection: which servers an address uses, found without its password.

:func:`detect` asks, under one deadline, the provider catalogue, Mozilla's ISP database, the
domain's own ``autoconfig`` files, DNS SRV records, the MX host and Microsoft's Autodiscover;
:class:`Detection` is its answer. See ``docs/detection.rst``.
"""

from .model import DetectedServer, Detection, SourceAttempt
from .run import detect

__all__ = ["DetectedServer", "Detection", "SourceAttempt", "detect"]
