"""Yahoo Mail: app passwords only."""

from __future__ import annotations

from ..model import Provider, Server, app_password_hint

PROVIDER = Provider(
    key="yahoo",
    name="Yahoo Mail",
    domains=("yahoo.com", "ymail.com", "rocketmail.com"),
    mx_suffixes=("yahoodns.net",),
    smtp=Server("smtp.mail.yahoo.com", 465, "ssl"),
    imap=Server("imap.mail.yahoo.com", 993, "ssl"),
    hints=app_password_hint("Yahoo", "https://login.yahoo.com/account/security/app-passwords"),
)
