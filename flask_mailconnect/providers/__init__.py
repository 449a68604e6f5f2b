"""Provider presets and detection of a provider from an address."""

from .detect import detect_provider
from .presets import PRESETS, Preset, ServerPreset, get_preset

__all__ = ["PRESETS", "Preset", "ServerPreset", "detect_provider", "get_preset"]
