"""Pick a provider from an email address's domain."""

from __future__ import annotations

from collections.abc import Mapping

from .presets import PRESETS, Preset


def detect_provider(email: str, presets: Mapping[str, Preset] | None = None) -> Preset:
    """The first provider whose domains include the address's domain, else "Other".

    ``presets`` defaults to the built-in ones; pass ``current_presets()`` to include the app's
    declared providers. Matching is on the exact domain, case-insensitive, so
    ``gmail.com.evil.test`` does not pass for Gmail.
    """
    candidates = PRESETS if presets is None else presets
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    for preset in candidates.values():
        if domain and domain in preset.domains:
            return preset
    return candidates.get("other", PRESETS["other"])
