"""Google: Gmail and Google Workspace.

Passwords work only as app passwords; OAuth needs ``access_type=offline`` and
``prompt=consent`` or a repeated consent returns no refresh token. Refresh tokens die after six
months unused (seven days for apps in testing mode: set ``MAILCONNECT_KEEPALIVE_DAYS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..model import IdentityRules, Provider, Server, app_password_hint

AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"

PROVIDER = Provider(
    key="google",
    aliases=("gmail",),
    name="Google",
    long_name="Gmail / Google Workspace",
    icon="google",
    domains=("gmail.com", "googlemail.com"),
    mx_suffixes=("google.com", "googlemail.com"),
    smtp=Server("smtp.gmail.com", 587, "starttls"),
    imap=Server("imap.gmail.com", 993, "ssl"),
    hints=app_password_hint("Google", "https://myaccount.google.com/apppasswords"),
    help_url="https://support.google.com/mail/answer/185833",
    keeps_sent_copy=True,
    authorize_url=AUTHORIZE_URL,
    token_url="https://oauth2.googleapis.com/token",
    revoke_url="https://oauth2.googleapis.com/revoke",
    userinfo_url="https://openidconnect.googleapis.com/v1/userinfo",
    issuer="https://accounts.google.com",
    jwks_uri="https://www.googleapis.com/oauth2/v3/certs",
    scopes=("openid", "email", "https://mail.google.com/"),
    authorize_params={"access_type": "offline", "prompt": "consent"},
    access_settings_url="https://myaccount.google.com/connections",
    identity=IdentityRules(verified_claim="email_verified"),
    keepalive_days=150,
)


def configure(provider: Provider, entry: Mapping[str, Any]) -> Provider:
    # Google's issuer and keys belong to Google's endpoints: pointed elsewhere (a test
    # server, a proxy), the ID token is checked against that server's own metadata.
    if provider.authorize_url != AUTHORIZE_URL:
        return provider.with_changes(
            issuer=entry.get("issuer") or None, jwks_uri=entry.get("jwks_uri") or None
        )
    return provider
