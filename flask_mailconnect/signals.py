"""Signals the extension sends (blinker). Sender is the Flask app; receivers get ``**extra``.

Payloads carry objects (``account``, ``actor``) and never a secret. Return values of receivers
are ignored: signals inform, they do not decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
#: Messages arrived in INBOX that were not there at the previous sync (UID at or above the
#: UIDNEXT that sync recorded). Sent once per account and sync by the worker that advanced the
#: account's UIDNEXT, so two workers syncing one account never announce a message twice.
#: Never sent by an account's first sync or by a resync after UIDVALIDITY changed: those
#: messages were already in the mailbox (no flood when an account is connected). Sent
#: whatever the person's settings say, so that counters stay right; hosts push only when
#: ``settings.enabled`` (and to phones only when ``settings.push_to_mobile``). Extra:
#: ``account``, ``actor`` (``None`` for jobs), ``messages`` (a list of :class:`NewMessage`,
#: newest first, at most the sync's ``limit``), ``settings`` (:class:`NotificationSettings`).
#: Receivers run inside the sync's transaction, each in a SAVEPOINT of its own: one that
#: raises has its writes rolled back and is logged, and the sync goes on (arrivals.py).
new_mail = _signals.signal("mailconnect.new-mail")
#: A message was accepted for delivery (SMTP 250 after DATA, or Graph 202). Extra: ``account``,
#: ``actor`` (the host's user, or ``None``), ``result`` (a
#: :class:`~flask_mailconnect.sending.SendResult`: message id, accepted and refused recipients).
message_sent = _signals.signal("mailconnect.message-sent")


#: Longest ``sender`` and ``subject`` a :class:`NewMessage` carries (RFC 5322's line limit);
#: longer ones are cut, so a receiver storing them in a ``String(998)`` column cannot fail.
NEW_MESSAGE_TEXT_MAX = 998


@dataclass(frozen=True)
class NewMessage:
    """One new message as :data:`new_mail` carries it: what a notification shows.

    ``sender`` and ``subject`` hold at most :data:`NEW_MESSAGE_TEXT_MAX` characters.
    """

    account_id: int
    folder: str
    uid: int
    sender: str  #: ``Name <address>``, decoded
    subject: str
    received_at: datetime | None  #: when the server received it (INTERNALDATE), UTC
    sent_at: datetime | None  #: its Date header (else the arrival date), UTC
    snippet: str
    #: The message page (``mailconnect.message``): absolute when ``MAILCONNECT_EXTERNAL_URL``
    #: or ``SERVER_NAME`` is set, else a path on the host (``/email/accounts/3/messages/...``).
    url: str

    def __post_init__(self) -> None:
        # Cut here, whoever builds one: receivers copy these into columns of their own.
        for name in ("sender", "subject"):
            value = getattr(self, name)
            if len(value) > NEW_MESSAGE_TEXT_MAX:
                object.__setattr__(self, name, value[:NEW_MESSAGE_TEXT_MAX])


@dataclass(frozen=True)
class NotificationSettings:
    """An account's new-mail notification settings (the account page's "New mail" section).

    Separate from health alerts (``MailAccount.notify_email``: "email me when this account
    needs attention").
    """

    enabled: bool  #: "Notify me about new mail"
    mobile: bool  #: False: "Do not notify on my phone"

    @property
    def push_to_mobile(self) -> bool:
        """Notify on the person's phone: notifications on and not muted there."""
        return self.enabled and self.mobile


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
    "NEW_MESSAGE_TEXT_MAX",
    "NewMessage",
    "NotificationSettings",
    "message_sent",
    "messages_synced",
    "new_mail",
    "token_refreshed",
]
