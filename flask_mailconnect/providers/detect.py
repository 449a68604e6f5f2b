"""Pick a provider preset from an email address's domain."""

from __future__ import annotations

from .presets import PRESETS, Preset


def detect_provider(email: str) -> Preset:
    """The preset whose domains include the address's domain, else "Other".

    Matching is on the exact domain, case-insensitive, so ``mail.gmail.com.evil.test`` does not
    pass for Gmail.
    """
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    for preset in PRESETS.values():
        if domain in preset.domains:
            return preset
    return PRESETS["other"]
