"""iCloud Mail: app-specific passwords only."""

from __future__ import annotations

from ..model import Provider, Server, app_password_hint

PROVIDER = Provider(
    key="icloud",
    name="iCloud Mail",
    domains=("icloud.com", "me.com", "mac.com"),
    mx_suffixes=("icloud.com", "me.com"),
    smtp=Server("smtp.mail.me.com", 587, "starttls"),
    imap=Server("imap.mail.me.com", 993, "ssl"),
    hints=app_password_hint("Apple", "https://account.apple.com (Sign-In and Security)"),
)
