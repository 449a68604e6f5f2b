"""Plain data passed to and returned by the transport layer (no Flask, no SQLAlchemy)."""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

Security = Literal["ssl", "starttls", "none"]
SECURITY_CHOICES: tuple[Security, ...] = ("ssl", "starttls", "none")
SECURITY_LABELS: dict[str, str] = {"ssl": "SSL/TLS", "starttls": "STARTTLS", "none": "None"}


@dataclass(frozen=True)
class ServerSettings:
    """What a user types into the manual form, or what a preset fills in.

    ``imap_host`` may be ``None`` for a send-only account. ``provider`` is the preset or provider
    key (``"google"``, ``"other"``...); its advice per error code travels in ``hints``.
    """

    email: str
    username: str
    password: str = field(repr=False)
    smtp_host: str
    smtp_port: int
    smtp_security: Security
    imap_host: str | None = None
    imap_port: int | None = None
    imap_security: Security | None = None
    provider: str | None = None
    #: An OAuth 2.0 access token: when set, SMTP and IMAP log in with XOAUTH2 (as ``username``)
    #: and ``password`` is not used.
    oauth_token: str | None = field(default=None, repr=False)
    #: The provider's advice per error code (``Provider.hints``), appended to messages; the
    #: transport words nothing provider-specific itself. Filled in by the extension.
    hints: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def receives(self) -> bool:
        return bool(self.imap_host)

    @property
    def uses_oauth(self) -> bool:
        return self.oauth_token is not None


@dataclass(frozen=True)
class TransportOptions:
    """The policy every outbound connection obeys; built from app config by the extension."""

    timeout: float = 10.0
    allow_private_hosts: bool = False
    allow_plaintext_auth: bool = False
    smtp_ports: tuple[int, ...] | None = (25, 465, 587, 2525)
    imap_ports: tuple[int, ...] | None = (143, 993)
    ca_file: str | None = None
    local_hostname: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """Verified TLS: system trust store (honours ``SSL_CERT_FILE``) plus ``ca_file``."""
        mtime = os.stat(self.ca_file).st_mtime_ns if self.ca_file else None
        return _verified_context(self.ca_file, mtime, os.environ.get("SSL_CERT_FILE"))


@functools.lru_cache(maxsize=8)
def _verified_context(
    ca_file: str | None, ca_mtime: int | None, cert_file_env: str | None
) -> ssl.SSLContext:
    """Loading the trust store costs ~15 ms of CPU under the GIL: build each context once.

    Contexts are safe to share between threads; the key includes the CA file's mtime and
    SSL_CERT_FILE so a replaced bundle is picked up.
    """
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


class Protocol(str, Enum):
    SMTP = "smtp"
    IMAP = "imap"


@dataclass(frozen=True)
class ProtocolResult:
    """Outcome of checking one protocol: ``ok`` or a stable ``code`` and a message for people.

    ``message`` never contains raw server text; ``detail`` is a short technical note for logs and
    the audit trail (the reply code, the TLS error name), never a credential.
    """

    protocol: Protocol
    ok: bool
    code: str
    message: str
    detail: str = ""
    elapsed: float = 0.0

    @property
    def retryable(self) -> bool:
        from ..codes import RETRYABLE_CODES

        return self.code in RETRYABLE_CODES


@dataclass(frozen=True)
class ConnectionReport:
    """The result of :func:`test_connection`: SMTP always, IMAP when the account receives."""

    smtp: ProtocolResult
    imap: ProtocolResult | None = None

    @property
    def ok(self) -> bool:
        return self.smtp.ok and (self.imap is None or self.imap.ok)

    @property
    def results(self) -> list[ProtocolResult]:
        return [r for r in (self.smtp, self.imap) if r is not None]

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "results": [
                {"protocol": r.protocol.value, "ok": r.ok, "code": r.code, "message": r.message}
                for r in self.results
            ],
        }
