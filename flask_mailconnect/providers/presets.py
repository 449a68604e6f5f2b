"""Built-in providers: where their servers are and what to tell users when a login fails.

Pure data; no Flask. Server names and ports are the ones each provider documents for mail
clients. ``hints`` add provider-specific advice to an error code's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from ..transport.settings import Security

LoginFormat = Literal["email", "local_part", "manual"]


@dataclass(frozen=True)
class ServerPreset:
    host: str
    port: int
    security: Security


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    domains: tuple[str, ...]
    smtp: ServerPreset | None
    imap: ServerPreset | None
    login_format: LoginFormat = "email"
    hints: dict[str, str] = field(default_factory=dict)
    help_url: str | None = None
    #: The provider files a copy of sent mail itself (Gmail, Microsoft): no IMAP APPEND to Sent.
    keeps_sent_copy: bool = False

    def login_for(self, email: str) -> str:
        if self.login_format == "local_part":
            return email.split("@", 1)[0]
        if self.login_format == "manual":
            return ""
        return email

    def as_dict(self) -> dict[str, object]:
        def server(s: ServerPreset | None) -> dict[str, object] | None:
            return None if s is None else {"host": s.host, "port": s.port, "security": s.security}

        return {
            "key": self.key,
            "name": self.name,
            "smtp": server(self.smtp),
            "imap": server(self.imap),
            "login_format": self.login_format,
            "help_url": self.help_url,
        }


_APP_PASSWORD = (
    "{name} needs an app password here, not your normal password: create one at {url} "
    "and paste it instead."
)


def _app_password_hint(name: str, url: str) -> dict[str, str]:
    return {"auth_failed": _APP_PASSWORD.format(name=name, url=url)}


# Read-only: presets are shared by every app in the process.
PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        p.key: p
        for p in (
            Preset(
                key="gmail",
                keeps_sent_copy=True,
                name="Gmail / Google Workspace",
                domains=("gmail.com", "googlemail.com"),
                smtp=ServerPreset("smtp.gmail.com", 587, "starttls"),
                imap=ServerPreset("imap.gmail.com", 993, "ssl"),
                hints=_app_password_hint("Google", "https://myaccount.google.com/apppasswords"),
                help_url="https://support.google.com/mail/answer/185833",
            ),
            Preset(
                key="microsoft365",
                keeps_sent_copy=True,
                name="Microsoft 365",
                domains=(),
                smtp=ServerPreset("smtp.office365.com", 587, "starttls"),
                imap=ServerPreset("outlook.office365.com", 993, "ssl"),
                hints={
                    "auth_failed": (
                        "If your organisation uses multi-factor sign-in, passwords do not work "
                        "for mail clients: connect with Microsoft instead."
                    ),
                },
                help_url="https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
            ),
            Preset(
                key="outlook",
                keeps_sent_copy=True,
                name="Outlook.com / Hotmail",
                domains=("outlook.com", "hotmail.com", "live.com", "msn.com"),
                smtp=ServerPreset("smtp-mail.outlook.com", 587, "starttls"),
                imap=ServerPreset("outlook.office365.com", 993, "ssl"),
                hints={
                    "auth_failed": (
                        "Outlook.com no longer accepts passwords from mail apps: "
                        "connect with Microsoft instead."
                    ),
                },
            ),
            Preset(
                key="yahoo",
                name="Yahoo Mail",
                domains=("yahoo.com", "ymail.com", "rocketmail.com"),
                smtp=ServerPreset("smtp.mail.yahoo.com", 465, "ssl"),
                imap=ServerPreset("imap.mail.yahoo.com", 993, "ssl"),
                hints=_app_password_hint(
                    "Yahoo", "https://login.yahoo.com/account/security/app-passwords"
                ),
            ),
            Preset(
                key="icloud",
                name="iCloud Mail",
                domains=("icloud.com", "me.com", "mac.com"),
                smtp=ServerPreset("smtp.mail.me.com", 587, "starttls"),
                imap=ServerPreset("imap.mail.me.com", 993, "ssl"),
                hints=_app_password_hint(
                    "Apple", "https://account.apple.com (Sign-In and Security)"
                ),
            ),
            Preset(
                key="other",
                name="Other (IMAP / SMTP)",
                domains=(),
                smtp=None,
                imap=None,
            ),
        )
    }
)


def get_preset(key: str | None) -> Preset:
    return PRESETS.get(key or "other", PRESETS["other"])


def hint_for(provider: str | None, code: str) -> str:
    preset = PRESETS.get(provider or "")
    return preset.hints.get(code, "") if preset else ""
