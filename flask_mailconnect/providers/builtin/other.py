"""Any other server: the person types host names, ports and security by hand."""

from __future__ import annotations

from ..model import OTHER

PROVIDER = OTHER
