"""Signals the extension sends (blinker). Sender is the Flask app; receivers get ``**extra``.

Payloads carry objects (``account``, ``actor``) and never a secret. Return values of receivers
are ignored: signals inform, they do not decide.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A new account was connected. Extra: ``account``, ``actor``.
account_connected = _signals.signal("mailconnect.account-connected")
#: An account's settings changed or it was signed in again. Extra: ``account``, ``actor``,
#: ``changes`` (names of changed fields).
account_updated = _signals.signal("mailconnect.account-updated")
#: An account was disconnected and its secrets wiped. Extra: ``account`` (detached, already
#: deleted: read its attributes, do not reload it), ``actor``.
account_disconnected = _signals.signal("mailconnect.account-disconnected")

__all__ = [
    "account_connected",
    "account_disconnected",
    "account_updated",
]
