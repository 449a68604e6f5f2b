"""New-mail notifications in the example host: how a host turns ``new_mail`` into pop-ups.

ELMA365 shows a pop-up per new message with its author and subject; clicking it opens the
message. Here a receiver of :data:`flask_mailconnect.new_mail` stores one row per message for
the account's owner (only when the owner has notifications on), the layout shows the unseen ones
as toasts, and opening one (a POST: it marks the toast seen) goes to the message page the
signal's ``url`` names. "Do not notify on my phone" is honoured the way a web app can: the toast
is hidden on narrow screens (a host with push notifications would skip the phone instead).

The receiver runs inside the sync, before its commit: the rows are part of the same transaction
(in a SAVEPOINT the library opens for the announcement, so an error here loses only these rows).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import Blueprint, Flask, abort, redirect, request, url_for
from flask_login import current_user, login_required
from flask_wtf.csrf import ValidationError, generate_csrf, validate_csrf
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flask_mailconnect import MailAccount, NewMessage, NotificationSettings, new_mail
from flask_mailconnect.oauth.client import safe_next

from .models import db, parse_id

#: Toasts shown at once (the newest).
SHOWN = 3

bp = Blueprint("notifications", __name__)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Notification(db.Model):  # type: ignore[name-defined,misc]
    """One new message for one person, until they open or dismiss it."""

    __tablename__ = "demo_notification"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(index=True)
    account_email: Mapped[str] = mapped_column(String(320))
    author: Mapped[str] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(String(2000))
    url: Mapped[str] = mapped_column(String(2000))
    on_phone: Mapped[bool] = mapped_column(default=True)
    seen: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=_now)


def on_new_mail(
    app: Flask,
    *,
    account: MailAccount,
    messages: list[NewMessage],
    settings: NotificationSettings,
    **extra: Any,
) -> None:
    """The ``new_mail`` receiver: a toast per message for the owner of a personal account."""
    if not settings.enabled or account.owner_kind != "user":
        return
    user_id = parse_id(account.owner_id)
    if user_id is None:
        return
    for message in messages:
        # Cut to the columns (the library caps them too): a value too long for the column
        # fails the sync's commit on PostgreSQL and MariaDB.
        db.session.add(
            Notification(
                user_id=user_id,
                account_email=account.email[:320],
                author=(message.sender or "(no sender)")[:998],
                subject=(message.subject or "(no subject)")[:2000],
                url=message.url,
                on_phone=settings.push_to_mobile,
            )
        )


def unseen() -> list[Notification]:
    """For the layout: the signed-in person's newest unseen notifications."""
    if not current_user.is_authenticated:
        return []
    query = (
        db.select(Notification)
        .where(Notification.user_id == current_user.id, Notification.seen.is_(False))
        .order_by(Notification.id.desc())
        .limit(SHOWN)
    )
    return list(db.session.scalars(query))


def _mine(notification_id: int) -> Notification:
    """The signed-in person's notification (404 otherwise), after checking the POST's CSRF."""
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        abort(400, description="The form expired: reload the page and try again.")
    found = db.session.get(Notification, notification_id)
    if found is None or found.user_id != current_user.id:
        abort(404)
    return found


def _same_site(url: str) -> str:
    """The message page's path (the signal's URL is absolute when the host configured
    MAILCONNECT_EXTERNAL_URL): only ever a path on this site."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_next(path) or url_for("demo.home")


@bp.post("/notifications/<int:notification_id>/open")
@login_required
def open_notification(notification_id: int) -> Any:
    """Clicking a toast: it is seen now, and the message opens."""
    notification = _mine(notification_id)
    notification.seen = True
    db.session.commit()
    return redirect(_same_site(notification.url))


@bp.post("/notifications/<int:notification_id>/dismiss")
@login_required
def dismiss(notification_id: int) -> Any:
    _mine(notification_id).seen = True
    db.session.commit()
    # Only a path on this site: "/\\evil.example" is "//evil.example" to a browser.
    return redirect(safe_next(request.form.get("next")) or "/")


def install(app: Flask) -> None:
    """Subscribe to ``new_mail`` for ``app`` and add the toasts' routes and layout helper."""
    new_mail.connect(on_new_mail, app, weak=False)
    app.register_blueprint(bp)
    app.add_template_global(unseen, "new_mail_notifications")
    app.add_template_global(generate_csrf, "notification_csrf")


__all__ = ["Notification", "install", "on_new_mail", "unseen"]
