"""Checks on server settings shared by the forms and the Python API."""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata

from .exceptions import InvalidSettings
from .i18n import gettext
from .transport.settings import SECURITY_CHOICES, SECURITY_LABELS, ServerSettings

# RFC 1123 host names; IP literals also match and the network guard judges them.
_HOST = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$")  # fmt: skip


#: The largest id a URL, query string or form may name. Our tables' primary keys are INTEGER
#: columns: 32-bit signed on PostgreSQL and MariaDB (SQLite's hold 64 bits). Larger values are
#: refused before any query: SQLite raises OverflowError past 2**63-1, PostgreSQL "integer out
#: of range" past 2**31-1.
MAX_ID = 2**31 - 1
#: The largest IMAP UID (RFC 3501: a 32-bit unsigned number); UIDs are not our primary keys.
MAX_UID = 2**32 - 1
#: Longest text a search box passes on (our LIKE filters, the host's ``@user_search``).
SEARCH_MAX = 200
_DIGITS = re.compile(r"[0-9]{1,32}")


def parse_int(value: object, lo: int, hi: int) -> int | None:
    """``value`` as an int in ``lo .. hi``, or ``None``.

    Only ASCII digits count: ``str.isdigit`` is true for "²" and "٣", which ``int`` refuses or
    reads as another number. Anything longer than 32 digits is refused before ``int`` runs
    (Python refuses more than 4,300 digits with an error of its own). Surrounding spaces are
    allowed, as browsers and people type them.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if not _DIGITS.fullmatch(text):
            return None
        number = int(text)
    else:
        return None
    return number if lo <= number <= hi else None


def parse_id(value: object) -> int | None:
    """A primary key from a query string or form: ASCII digits, 1 .. :data:`MAX_ID`."""
    return parse_int(value, 1, MAX_ID)


def parse_uid(value: object) -> int | None:
    """An IMAP UID: ASCII digits, 1 .. :data:`MAX_UID`."""
    return parse_int(value, 1, MAX_UID)


def control_chars(text: str, *, allow: str = "") -> bool:
    """Whether ``text`` holds NUL, CR, LF or any other control character not in ``allow``.

    Unicode's "Cc" category plus the line and paragraph separators (U+2028, U+2029), which
    some mail clients and browsers treat as line breaks.
    """
    return any(
        ch not in allow and (unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029")
        for ch in text
    )


def is_host(value: str) -> bool:
    """A host name (RFC 1123) or an IP address (IPv4, or IPv6 without brackets)."""
    if not value or len(value) > 253:
        return False
    if _HOST.fullmatch(value):
        return True
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def normalize_email(value: str) -> str:
    """The address in canonical form, or :class:`ValueError` with a sentence for people."""
    if "\r" in value or "\n" in value:
        raise ValueError(gettext("An email address cannot contain line breaks."))
    # Imported here, not at the top: email-validator pulls in dnspython and idna, which
    # `import flask_mailconnect` should not pay for (issue 13). It is imported once.
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


#: An ASCII dot-atom local part (RFC 5322 atext, no leading, trailing or double dot): a subset
#: of what email-validator accepts, and left as it is by its normalisation.
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@functools.lru_cache(maxsize=1024)
def _domain_verdict(domain: str) -> str | None:
    """The domain as email-validator normalises it, or None when it refuses it (the full
    check then runs on the whole address, for its message)."""
    from email_validator import EmailNotValidError, validate_email  # see normalize_email

    try:
        return validate_email(
            f"a@{domain}", check_deliverability=False, allow_smtputf8=True
        ).normalized.partition("@")[2]
    except EmailNotValidError:
        return None


def normalize_address(address: str) -> str:
    """A message recipient in canonical form (a non-ASCII local part allowed: SMTPUTF8), or
    :class:`ValueError` saying why not. Strict, as :func:`normalize_email`.

    email-validator's checks of the domain do not depend on the local part, so a plain ASCII
    local part (:data:`_PLAIN_LOCAL`, at most 64 characters, 254 in all) is joined to the
    domain's cached verdict: a bulk send to one domain checks that domain once (21 us per
    recipient otherwise, issue 13). Anything else is checked whole."""
    local, _, domain = address.rpartition("@")
    if (
        local and domain.isascii() and len(local) <= 64 and len(address) <= 254
        and _PLAIN_LOCAL.fullmatch(local)
    ):  # fmt: skip
        normalized_domain = _domain_verdict(domain)
        if normalized_domain is not None:
            return f"{local}@{normalized_domain}"
    from email_validator import EmailNotValidError, validate_email  # see normalize_email

    try:
        return validate_email(address, check_deliverability=False, allow_smtputf8=True).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def clean_display_name(value: object) -> str:
    """A display name safe to put in a From header, or :class:`InvalidSettings`."""
    text = str(value or "").strip()
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        message = gettext("Line breaks and control characters are not allowed in a display name.")
        raise InvalidSettings({"display_name": message})
    if len(text) > 200:
        raise InvalidSettings({"display_name": gettext("Use at most 200 characters.")})
    return text


def _ports_text(ports: tuple[int, ...]) -> str:
    return ", ".join(str(p) for p in ports)


def check_port(port: object, allowed: tuple[int, ...] | None) -> str | None:
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        return gettext("Enter a port number between 1 and 65535.")
    if allowed is not None and port not in allowed:
        return gettext(
            "Port %(port)s is not allowed here. Use one of: %(ports)s.",
            port=port,
            ports=_ports_text(allowed),
        )
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
            errors[name] = gettext("This field is required.")
        elif control_chars(value):
            errors[name] = gettext("Line breaks and control characters are not allowed here.")
    protocols = [("smtp", smtp_ports)]
    if settings.receives:
        protocols.append(("imap", imap_ports))
    for proto, allowed in protocols:
        host = getattr(settings, f"{proto}_host") or ""
        if not is_host(host):
            errors[f"{proto}_host"] = gettext("Enter a server name such as mail.example.com.")
        problem = check_port(getattr(settings, f"{proto}_port"), allowed)
        if problem:
            errors[f"{proto}_port"] = problem
        if getattr(settings, f"{proto}_security") not in SECURITY_CHOICES:
            choices = ", ".join(SECURITY_LABELS.values())
            errors[f"{proto}_security"] = gettext("Choose one of: %(choices)s.", choices=choices)
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
