"""Signals the extension sends (blinker). Sender is the Flask app; receivers get ``**extra``.

Payloads carry objects (``account``, ``actor``) and never a secret. Return values of receivers
are ignored: signals inform, they do not decide.
"""

from __future__ import annotations

from typing import Any

from blinker import NamedSignal, Namespace
from flask import current_app

from .owners import Actor

_signals = Namespace()

#: A new account was connected. Extra: ``account``, ``actor``.
account_connected = _signals.signal("mailconnect.account-connected")
#: An account's settings changed or it was signed in again. Extra: ``account``, ``actor``,
#: ``changes`` (names of changed fields).
account_updated = _signals.signal("mailconnect.account-updated")
#: An account was disconnected and its secrets wiped. Extra: ``account`` (detached, already
#: deleted: read its attributes, do not reload it), ``actor``.
account_disconnected = _signals.signal("mailconnect.account-disconnected")
#: The provider refused an OAuth account's grant (``invalid_grant``: revoked, expired, password
#: changed) or it has no refresh token: the account is now ``needs_reconnect`` and its owner must
#: sign in again. Sent once per transition, not on every later attempt. Extra: ``account``,
#: ``reason`` (the stable code also stored in ``last_error_code``: ``token_revoked`` or
#: ``no_refresh_token``), ``actor`` (``None``: nobody did it).
account_needs_reconnect = _signals.signal("mailconnect.account-needs-reconnect")
#: An OAuth account's access token was refreshed (and the new tokens committed). Extra:
#: ``account``. Never the token: call ``fresh_access_token`` if you need it.
token_refreshed = _signals.signal("mailconnect.token-refreshed")
#: New INBOX messages were stored by ``sync_recent``. Extra: ``account``, ``count`` (rows this
#: sync inserted; 0 when nothing was new), ``actor`` (``None`` for jobs).
messages_synced = _signals.signal("mailconnect.messages-synced")
#: A message was accepted for delivery (SMTP 250 after DATA, or Graph 202). Extra: ``account``,
#: ``actor`` (the host's user, or ``None``), ``result`` (a
#: :class:`~flask_mailconnect.sending.SendResult`: message id, accepted and refused recipients).
message_sent = _signals.signal("mailconnect.message-sent")


def announce(signal: NamedSignal, actor: Actor | None, **extra: Any) -> None:
    """Send ``signal`` from the current app with ``actor`` as the host's user object (or None).

    The one place our code sends signals, so every payload has the same shape.
    """
    signal.send(
        current_app._get_current_object(),  # type: ignore[attr-defined]
        actor=actor.user if actor is not None else None,
        **extra,
    )


__all__ = [
    "account_connected",
    "account_disconnected",
    "account_needs_reconnect",
    "account_updated",
    "message_sent",
    "messages_synced",
    "token_refreshed",
]
