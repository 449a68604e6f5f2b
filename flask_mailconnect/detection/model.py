"""What detection answers: plain data, no Flask, no network.

A source produces a :class:`Finding` (servers with their login template, or only a provider);
:func:`~flask_mailconnect.detection.run.detect` turns the winning one into a :class:`Detection`
for one address, with every :class:`SourceAttempt` made on the way. Findings are what the cache
stores (per domain: the login template is filled per address, so one entry serves a domain).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from ..i18n import gettext
from ..providers.model import Provider
from ..transport.settings import SECURITY_CHOICES, Security

#: Sources in the order that decides which answer wins.
SOURCES = ("catalogue", "ispdb", "autoconfig", "well-known", "srv", "mx", "autodiscover")
Auth = Literal["password", "oauth2"]
#: What happened to one source: it answered with servers (``found``), answered without
#: (``nothing``), answered nonsense or too much (``invalid``), was refused by the network
#: guard (``blocked``), could not be reached (``failed``), gave no answer before the deadline
#: (``timeout``) or was not asked (``skipped``).
Outcome = Literal["found", "nothing", "invalid", "blocked", "failed", "timeout", "skipped"]

#: The address placeholders of Thunderbird's clientConfig format, by name.
PLACEHOLDERS = ("EMAILADDRESS", "EMAILLOCALPART", "EMAILDOMAIN")
_PLACEHOLDER = re.compile(r"%([A-Z][A-Z0-9_]*)%")
#: Why a detection asked no network source although the domain could be looked up:
#: ``busy`` (too many detections running in this process), ``limit`` (the person's look-ups
#: per minute are used up).
NotAsked = Literal["", "busy", "limit"]


@dataclass(frozen=True)
class DetectedServer:
    host: str
    port: int
    security: Security

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "security": self.security}

    @classmethod
    def from_dict(cls, data: Any) -> DetectedServer | None:
        if not isinstance(data, dict):
            return None
        security = data.get("security")
        if security not in SECURITY_CHOICES:
            return None
        return cls(str(data.get("host", "")), int(data.get("port", 0)), security)


@dataclass(frozen=True)
class SourceAttempt:
    """One source asked: its outcome, the seconds it took (``None`` when it gave no answer in
    time or was not asked) and a short technical detail for admins (never a secret)."""

    source: str
    outcome: Outcome
    seconds: float | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "outcome": self.outcome,
            "seconds": self.seconds,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Finding:
    """What one source knows about a domain. ``username`` may hold clientConfig placeholders
    (``%EMAILLOCALPART%``...), filled per address by :func:`fill`; ``None``: the source says
    nothing about the login (the address is the usual one). ``provider``: a catalogue key."""

    source: str
    smtp: DetectedServer | None = None
    imap: DetectedServer | None = None
    username: str | None = None
    auth: tuple[Auth, ...] = ("password",)
    provider: str | None = None
    display_name: str = ""
    #: The incoming server the source offers is POP3 only (not supported: no IMAP filled in).
    pop3_only: bool = False
    #: The domain whose answer it is (``published by example.org``; the MX host's domain).
    origin: str = ""

    @property
    def useful(self) -> bool:
        return bool(self.smtp or self.imap or self.provider)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "smtp": self.smtp.as_dict() if self.smtp else None,
            "imap": self.imap.as_dict() if self.imap else None,
            "username": self.username,
            "auth": list(self.auth),
            "provider": self.provider,
            "display_name": self.display_name,
            "pop3_only": self.pop3_only,
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        auth = tuple(a for a in data.get("auth") or () if a in ("password", "oauth2"))
        return cls(
            source=str(data.get("source", "")),
            smtp=DetectedServer.from_dict(data.get("smtp")),
            imap=DetectedServer.from_dict(data.get("imap")),
            username=data.get("username"),
            auth=auth or ("password",),
            provider=data.get("provider"),
            display_name=str(data.get("display_name") or ""),
            pop3_only=bool(data.get("pop3_only")),
            origin=str(data.get("origin") or ""),
        )


def fill(template: str, email: str, *, allowed: Collection[str] = PLACEHOLDERS) -> str | None:
    """``template`` with the address placeholders filled, in one pass (a value is never read
    again for placeholders: an address may hold ``%``); ``None`` when the template holds any
    other ``%NAME%`` (``%REALNAME%``...: the login is then the person's to type), or one not
    in ``allowed`` (a host name may use only ``EMAILDOMAIN``: the local part is the person's)."""
    if any(name not in allowed for name in _PLACEHOLDER.findall(template)):
        return None
    local, _, domain = email.rpartition("@")
    values = dict(zip(PLACEHOLDERS, (email, local, domain), strict=True))
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def personal(template: str | None) -> bool:
    """A login given as it is, without placeholders: it may be one person's, answered for
    their address (an ``autoconfig`` host is told the address), so it is not kept as the
    answer for the whole domain."""
    return bool(template) and not _PLACEHOLDER.search(template or "")


@dataclass(frozen=True)
class Detection:
    """Servers for one address and where they came from.

    ``provider``: the catalogue provider when one matches (its servers, login format and,
    when configured, its "Connect with ..." button), else ``None``. ``smtp`` / ``imap``: the
    servers a source gave (``None`` when nothing knew). ``username``: the login the source
    says to use, placeholders filled. ``auth``: ``password``, ``oauth2`` or both. ``source``:
    which source answered (``None``: none did). ``tried``: each source with its outcome and
    time. ``cached``: the answer came from the detection cache (``tried`` is then the
    attempts that made it). ``seconds``: how long this call took. ``login``: the template
    ``username`` was filled from (``%EMAILLOCALPART%``...; ``None`` when the source gave
    none). ``not_asked``: why no network source was asked (``busy``: too many detections
    running at once, try again shortly; ``limit``: the person's look-ups per minute are used
    up; ``""``: they were, or needed not be).
    """

    email: str
    domain: str
    provider: Provider | None = None
    smtp: DetectedServer | None = None
    imap: DetectedServer | None = None
    username: str | None = None
    auth: tuple[Auth, ...] = ()
    source: str | None = None
    tried: tuple[SourceAttempt, ...] = ()
    display_name: str = ""
    pop3_only: bool = False
    origin: str = ""
    cached: bool = False
    seconds: float = 0.0
    login: str | None = None
    not_asked: NotAsked = ""

    @property
    def found(self) -> bool:
        """Some source knew servers or a provider for the address."""
        return self.source is not None

    @property
    def offers_oauth(self) -> bool:
        """The matched provider's "Connect with ..." flow is set up and enabled."""
        return bool(self.provider and self.provider.offers_oauth and self.provider.enabled)

    @property
    def source_label(self) -> str:
        """Where the servers came from, in words for the person ("" when nothing knew)."""
        return source_label(self.source, self.domain, self.origin)

    def as_dict(self) -> dict[str, Any]:
        """For the connect page's script and the CLI's JSON output (never a secret)."""
        provider = self.provider
        return {
            "email": self.email,
            "domain": self.domain,
            "found": self.found,
            "provider": provider.key if provider else None,
            "name": provider.title if provider else None,
            "oauth": self.offers_oauth,
            "smtp": self.smtp.as_dict() if self.smtp else None,
            "imap": self.imap.as_dict() if self.imap else None,
            "username": self.username,
            "auth": list(self.auth),
            "source": self.source,
            "source_label": self.source_label,
            "display_name": self.display_name,
            "pop3_only": self.pop3_only,
            "cached": self.cached,
            "login": self.login,
            "not_asked": self.not_asked,
            "tried": [t.as_dict() for t in self.tried],
        }


def source_label(source: str | None, domain: str, origin: str = "") -> str:
    """Where servers from ``source`` came from, in words; ``origin``: the domain that
    published them when it is not ``domain`` (the MX host's). Translated for the page (the
    CLI, outside a request, prints the English)."""
    if source == "catalogue":
        # TRANSLATORS: these "from ..." phrases end "Servers for example.org found ...".
        return gettext("from the list of known providers")
    if source == "ispdb":
        return gettext("from Mozilla's ISP database")
    if source in ("autoconfig", "well-known"):
        return gettext("published by %(domain)s", domain=origin or domain)
    if source == "mx" and origin and origin != domain:
        return gettext(
            "from DNS records (mail for %(domain)s is handled by %(origin)s)",
            domain=domain,
            origin=origin,
        )
    if source in ("mx", "srv"):
        return gettext("from DNS records")
    if source == "autodiscover":
        return gettext("from Microsoft's Autodiscover service")
    return ""
