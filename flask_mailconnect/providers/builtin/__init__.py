"""Built-in providers: one module each, found by name (adding one is adding a module).

Each module defines ``PROVIDER`` (a :class:`~flask_mailconnect.providers.model.Provider`) and may
define ``configure(provider, entry) -> Provider`` for what its ``MAILCONNECT_PROVIDERS`` entry
changes beyond plain overrides (Microsoft: the tenant in its URLs). Modules starting with ``_``
are not providers.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from functools import cache
from types import ModuleType
from typing import Any

from ..model import Provider

Configure = Callable[[Provider, Mapping[str, Any]], Provider]


def _modules() -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


@cache
def builtin_providers() -> tuple[tuple[Provider, Configure | None], ...]:
    """Every built-in provider with its ``configure`` hook, "other" last (read once)."""
    found = [(m.PROVIDER, getattr(m, "configure", None)) for m in _modules()]
    found.sort(key=lambda item: item[0].key == "other")
    return tuple(found)


__all__ = ["Configure", "builtin_providers"]
