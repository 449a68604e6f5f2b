"""Checks on server settings shared by the forms and the Python API."""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from .exceptions import InvalidSettings
from .transport.settings import SECURITY_CHOICES, SECURITY_LABELS, ServerSettings

# RFC 1123 host names; IP literals also match and the network guard judges them.
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")  # fmt: skip


def normalize_email(value: str) -> str:
    """The address in canonical form, or :class:`ValueError` with a sentence for people."""
    if "\r" in value or "\n" in value:
        raise ValueError("An email address cannot contain line breaks.")
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def clean_display_name(value: object) -> str:
    """A display name safe to put in a From header, or :class:`InvalidSettings`."""
    text = str(value or "").strip()
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        message = "Line breaks and control characters are not allowed in a display name."
        raise InvalidSettings({"display_name": message})
    if len(text) > 200:
        raise InvalidSettings({"display_name": "Use at most 200 characters."})
    return text


def _ports_text(ports: tuple[int, ...]) -> str:
    return ", ".join(str(p) for p in ports)


def check_port(port: object, allowed: tuple[int, ...] | None) -> str | None:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        return "Enter a port number between 1 and 65535."
    if allowed is not None and port not in allowed:
        return f"Port {port} is not allowed here. Use one of: {_ports_text(allowed)}."
    return None


def settings_errors(
    settings: ServerSettings,
    *,
    smtp_ports: tuple[int, ...] | None,
    imap_ports: tuple[int, ...] | None,
) -> dict[str, str]:
    """Every problem found, by field name; empty when the settings are worth testing."""
    errors: dict[str, str] = {}
    try:
        normalize_email(settings.email)
    except ValueError as exc:
        errors["email"] = str(exc)
    secrets = ("username",) if settings.uses_oauth else ("username", "password")
    for name in secrets:
        value = getattr(settings, name)
        if not value:
            errors[name] = "This field is required."
        elif "\r" in value or "\n" in value or "\x00" in value:
            errors[name] = "Line breaks are not allowed here."
    protocols = [("smtp", smtp_ports)]
    if settings.receives:
        protocols.append(("imap", imap_ports))
    for proto, allowed in protocols:
        host = getattr(settings, f"{proto}_host") or ""
        if not _HOST.fullmatch(host):
            errors[f"{proto}_host"] = "Enter a server name such as mail.example.com."
        problem = check_port(getattr(settings, f"{proto}_port"), allowed)
        if problem:
            errors[f"{proto}_port"] = problem
        if getattr(settings, f"{proto}_security") not in SECURITY_CHOICES:
            choices = ", ".join(SECURITY_LABELS.values())
            errors[f"{proto}_security"] = f"Choose one of: {choices}."
    return errors


def validate_settings(
    settings: ServerSettings,
    *,
    smtp_ports: tuple[int, ...] | None,
    imap_ports: tuple[int, ...] | None,
) -> None:
    errors = settings_errors(settings, smtp_ports=smtp_ports, imap_ports=imap_ports)
    if errors:
        raise InvalidSettings(errors)
