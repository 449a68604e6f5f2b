"""The ``new_mail`` signal: what a sync found that was not there before, ready to push.

(Not named ``new_mail.py``: the package's public ``new_mail`` is the signal, and importing a
submodule of that name would rebind ``flask_mailconnect.new_mail`` to the module.)

:func:`~flask_mailconnect.sync.sync_recent` decides which messages are new (UID at or above the
UIDNEXT the previous sync recorded, announced by the one worker that advanced it); this module
turns them into :class:`~flask_mailconnect.signals.NewMessage` values with a link to the
message page and sends the signal with the account's
:class:`~flask_mailconnect.signals.NotificationSettings`.

Receivers run inside the sync's transaction (their rows commit with it), each in a SAVEPOINT
of its own: a receiver that raises (a bug, a value too long for its column) has its writes
rolled back alone and is logged; the other receivers still run and the sync still advances,
so the same failure cannot make every later sync roll back and repeat.

Links are built without a request too (jobs): from ``MAILCONNECT_EXTERNAL_URL`` when set (an
absolute URL), else from ``SERVER_NAME`` (absolute), else a path on the host.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from flask import current_app, has_request_context, url_for
from sqlalchemy.orm import object_session

from . import signals
from .models import MailAccount
from .owners import Actor
from .signals import NewMessage, NotificationSettings
from .transport.mailbox import MessageSummary

#: The message page's endpoint (views/messages.py).
ENDPOINT = "mailconnect.message"

log = logging.getLogger(__name__)


def message_url(account_id: int, folder: str, uid: int) -> str:
    """The message page of one message, for links that leave the request (notifications)."""
    values: dict[str, Any] = {"account_id": account_id, "folder": folder, "uid": uid}
    config = current_app.config
    if has_request_context() and not config.get("MAILCONNECT_EXTERNAL_URL"):
        return url_for(ENDPOINT, **values, _external=bool(config.get("SERVER_NAME")))
    adapter = current_app.url_map.bind(
        config.get("SERVER_NAME") or "localhost",
        script_name=config.get("APPLICATION_ROOT") or "/",
        url_scheme=config.get("PREFERRED_URL_SCHEME") or "https",
    )
    path = adapter.build(ENDPOINT, values)
    external = config.get("MAILCONNECT_EXTERNAL_URL")
    if external:
        return str(external).rstrip("/") + path
    if config.get("SERVER_NAME"):
        return adapter.build(ENDPOINT, values, force_external=True)
    return path


def settings_of(account: MailAccount) -> NotificationSettings:
    """The account's new-mail notification settings."""
    return NotificationSettings(
        enabled=bool(account.notify_new_mail), mobile=bool(account.notify_new_mail_mobile)
    )


def announce(
    account: MailAccount, found: Iterable[MessageSummary], actor: Actor | None, folder: str
) -> list[NewMessage]:
    """Send ``new_mail`` for ``found`` (newest first); nothing when it is empty."""
    messages = [
        NewMessage(
            account_id=account.id,
            folder=folder,
            uid=m.uid,
            sender=m.sender,
            subject=m.subject,
            received_at=m.arrived,
            sent_at=m.date,
            snippet=m.snippet,
            url=message_url(account.id, folder, m.uid),
        )
        for m in sorted(found, key=lambda m: m.uid, reverse=True)
    ]
    if messages:
        _send_isolated(account, actor, messages)
    return messages


def _send_isolated(account: MailAccount, actor: Actor | None, messages: list[NewMessage]) -> None:
    """Send ``new_mail`` to each receiver in a SAVEPOINT of its own (see the module doc)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    session = object_session(account)
    settings = settings_of(account)
    user = actor.user if actor is not None else None
    for receiver in list(signals.new_mail.receivers_for(app)):
        try:
            if session is None:
                receiver(app, account=account, actor=user, messages=messages, settings=settings)
                continue
            with session.begin_nested():  # flushes the receiver's rows before RELEASE
                receiver(app, account=account, actor=user, messages=messages, settings=settings)
        except Exception:
            log.exception(
                "account %s: a new_mail receiver failed; its changes were rolled back and the "
                "sync goes on", account.id,
            )  # fmt: skip


__all__ = ["announce", "message_url", "settings_of"]
