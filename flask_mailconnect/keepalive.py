"""Token keep-alive: a refresh token that is never used dies (Microsoft: 90 days; Google: 6
months, or 7 days for apps in testing mode). A login with the access token does not count as
use, so an account whose ``token_refreshed_at`` is older than ``MAILCONNECT_KEEPALIVE_DAYS`` for
its provider gets a forced refresh well ahead of that. Used by :mod:`.health` (checks and the
keep-alive job); its names stay importable from there.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app

from .models import MailAccount, utcnow
from .oauth.refresh import fresh_access_token
from .providers import current_catalog
from .runtime import Runtime


def keepalive_days(account: MailAccount) -> float | None:
    """Days the account's refresh token may stay unused: ``MAILCONNECT_KEEPALIVE_DAYS`` for
    its provider's key (else its ``"*"``), else the provider's own rule."""
    provider = current_catalog().for_account(account)
    table = current_app.config["MAILCONNECT_KEEPALIVE_DAYS"] or {}
    days = table.get(provider.key, table.get("*", provider.keepalive_days))
    return None if days is None else float(days)


def keepalive_due(account: MailAccount, now: datetime | None = None) -> bool:
    """Has this OAuth account's refresh token gone unused for its provider's keep-alive age?"""
    if account.auth_method != "oauth2":
        return False
    days = keepalive_days(account)
    if days is None:
        return False
    last = account.token_refreshed_at or account.created_at
    if last is None:
        return True
    return (now or utcnow()) - last >= timedelta(days=days)


def keep_alive(state: Runtime, account: MailAccount) -> bool:
    """Refresh the token now if it is due by inactivity; True when a refresh happened here.

    Raises what :func:`~flask_mailconnect.oauth.refresh.fresh_access_token` raises.
    """
    if not keepalive_due(account):
        return False

    before = account.token_refreshed_at
    fresh_access_token(state, account, force=True)
    return account.token_refreshed_at != before
