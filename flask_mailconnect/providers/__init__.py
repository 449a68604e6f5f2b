"""Email providers: one :class:`Provider` type, built-in modules, the app's catalogue, detection."""

from .catalog import (
    Catalog,
    build_catalog,
    check_config,
    current_catalog,
    forget_catalog,
    with_hints,
)
from .detect import detect_provider, lookup_mx
from .model import OTHER, IdentityRules, Provider, Server

__all__ = [
    "OTHER",
    "Catalog",
    "IdentityRules",
    "Provider",
    "Server",
    "build_catalog",
    "check_config",
    "current_catalog",
    "detect_provider",
    "forget_catalog",
    "lookup_mx",
    "with_hints",
]
