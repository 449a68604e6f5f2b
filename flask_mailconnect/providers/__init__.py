"""Provider presets, host-declared providers and detection of a provider from an address."""

from ..exceptions import ProviderConfigError
from .detect import detect_provider
from .presets import PRESETS, Preset, ServerPreset, get_preset
from .registry import available_presets, current_presets, parse_providers

__all__ = [
    "PRESETS",
    "Preset",
    "ProviderConfigError",
    "ServerPreset",
    "available_presets",
    "current_presets",
    "detect_provider",
    "get_preset",
    "parse_providers",
]
