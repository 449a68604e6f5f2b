"""Outlook.com (Hotmail, Live, MSN): personal Microsoft mailboxes.

They no longer accept passwords from mail apps; people connect with Microsoft instead.
"""

from __future__ import annotations

from types import MappingProxyType

from ...i18n import N_
from ..model import Provider, Server

PROVIDER = Provider(
    key="outlook",
    name="Outlook.com / Hotmail",
    domains=("outlook.com", "hotmail.com", "live.com", "msn.com"),
    smtp=Server("smtp-mail.outlook.com", 587, "starttls"),
    imap=Server("outlook.office365.com", 993, "ssl"),
    keeps_sent_copy=True,
    hints=MappingProxyType(
        {
            "auth_failed": N_(
                "Outlook.com no longer accepts passwords from mail apps: "
                "connect with Microsoft instead."
            ),
        }
    ),
)
