"""The names detection accepts: the address's domain, the host names and the logins sources
give. Everything here comes from someone else (the person typing an address, a web server, a
DNS answer), so each is checked before it is looked up, cached or shown in the form.

* A domain is looked up, cached and compared in its ASCII form: an internationalised name
  (``bücher.de``, ``пример.рф``) becomes its IDNA A-label form (``xn--bcher-kva.de``) through
  the ``idna`` package (IDNA 2008 with the UTS 46 mapping, as browsers and mail clients do).
* A host name has at least two labels of letters, digits and hyphens, and a last label (the
  top-level domain) that starts with a letter: no ``localhost``, no single-label name, and no
  IP address in any notation (``127.0.0.1``, ``127.1``, ``2130706433``, ``0x7f.1``).
* A login is at most :data:`MAX_LOGIN` characters and holds no control or format character.
"""

from __future__ import annotations

import re
import unicodedata

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = r"(?:[a-z][a-z0-9-]{0,61}[a-z0-9])"
#: A DNS host name in ASCII (see the module docstring), 253 characters at most.
HOST = re.compile(rf"^(?=.{{4,253}}$)(?:{_LABEL}\.)+{_TLD}$")
#: The longest login kept from a source (an address is at most 320 characters).
MAX_LOGIN = 320


def is_host(name: str) -> bool:
    """``name`` (any case, a final dot allowed) is a host name detection may offer."""
    return bool(HOST.match(name.lower().removesuffix(".")))


def ascii_domain(domain: str) -> str | None:
    """``domain`` in its lower-case ASCII form (A-labels for an internationalised name), or
    ``None`` when it is no valid host name."""
    domain = domain.strip().lower().removesuffix(".")
    if not domain.isascii():
        import idna  # loaded for the first internationalised name only (start-up time)

        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    return domain if HOST.match(domain) else None


def clean_login(login: str | None) -> str | None:
    """``login`` when it can be put in the form as it is, else ``None`` (the person types it)."""
    if not login or len(login) > MAX_LOGIN:
        return None
    for char in login:
        if unicodedata.category(char)[0] == "C" or char in "\u2028\u2029":
            return None  # control, format (bidi overrides...), surrogate, unassigned; newlines
    return login
