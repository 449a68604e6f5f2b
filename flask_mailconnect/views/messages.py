"""One message, opened from the recent-mail list or a new-mail notification; the account's
new-mail notification settings; and :func:`after_save`, the newest mail loaded when a view has
saved an account (connect, reconnect, OAuth), see :mod:`flask_mailconnect.sync_on_save`.

The page fetches the message over IMAP on demand (:mod:`flask_mailconnect.reading`) and shows
it inside the host's layout: headers, the body (HTML sanitised, remote images blocked unless
the person asks for them with the page's "Show images" link, which only lasts for that
request), and the attachments by name and size. It answers with a Content-Security-Policy that
refuses remote images unless they were asked for, audio and video, plugins, frames, framing
by other sites, and forms posting elsewhere, and ``Referrer-Policy: no-referrer`` so links in
a message do not reveal its URL.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from .. import accounts, reading, sync_on_save
from ..exceptions import SyncError
from ..forms import NewMailSettingsForm
from ..i18n import gettext
from ..models import MailAccount
from .common import actor, load_account, localize, state

#: Images the message page may load: our own (the host's layout) and inline data. Remote
#: sources are added only for the request that asked to show them.
IMG_SOURCES = "'self' data:"


def _policy(show_images: bool) -> str:
    images = IMG_SOURCES + (" https: http:" if show_images else "")
    # No default-src: the page sits in the host's layout, whose scripts, styles, fonts and
    # requests (CDNs, inline code) we cannot know; each directive below names only what a
    # message body could use. A host that sends its own CSP header replaces this one.
    return (
        f"img-src {images}; media-src 'none'; object-src 'none'; frame-src 'none'; "
        "frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
    )


def message(account_id: int, folder: str, uid: int) -> Any:
    acct = load_account(account_id, "read")  # reading mail: the owner, not an admin for them
    show_images = request.args.get("images") == "1"
    problem: SyncError | None = None
    view = None
    try:
        view = reading.read_message(
            state(), acct, folder, uid, actor=actor(), show_images=show_images
        )
    except SyncError as exc:
        problem = exc
    state().session.commit()  # keep what the attempt recorded (health, needs_reconnect)
    if problem is None and view is None:  # no such folder or UID: a 404 that says so
        page = render_template(
            "mailconnect/message_missing.html", account=acct, folder=folder, uid=uid
        )
        return page, 404, {"Content-Security-Policy": _policy(False)}
    page = render_template(
        "mailconnect/message.html",
        account=acct,
        view=view,
        folder=folder,
        uid=uid,
        problem=problem,
        show_images=show_images,
        images_url=url_for(".message", account_id=acct.id, folder=folder, uid=uid, images=1),
        hide_images_url=url_for(".message", account_id=acct.id, folder=folder, uid=uid),
    )
    return page, 200, {"Content-Security-Policy": _policy(show_images),
                       "Referrer-Policy": "no-referrer"}  # fmt: skip


def new_mail_form(account: MailAccount) -> NewMailSettingsForm:
    """For the account page: the notification form filled with the account's settings. No
    CSRF field of its own: the page writes the request's one (``mailconnect_csrf_input``), and
    the POST is checked before any view runs (``common._require_csrf``) and by the form there."""
    return NewMailSettingsForm(
        formdata=None,
        meta={"csrf": False},
        data={
            "notify_new_mail": account.notify_new_mail,
            "mute_new_mail_mobile": not account.notify_new_mail_mobile,
        },
    )


def notifications(account_id: int) -> Any:
    """Save the new-mail notification settings (POST; CSRF checked by common.py)."""
    acct = load_account(account_id, "manage")
    form = NewMailSettingsForm()
    if form.validate_on_submit():
        changed = accounts.update_account(state(), acct, actor=actor(), **form.changes())
        state().session.commit()
        saved = gettext("Notification settings saved.")
        flash(saved if changed else gettext("No changes to save."), "success")
    else:
        flash(
            gettext("The notification settings could not be saved: reload the page and try again."),
            "error",
        )
    return redirect(url_for(".account", account_id=acct.id) + "#mc-notify-heading")


def after_save(account: MailAccount) -> sync_on_save.SaveSync:
    """Load the newest mail of an account the view just saved and committed (manual connect,
    reconnect, OAuth connect or sign-in again); says so when it could not, never fails."""
    done = sync_on_save.load_on_save(state(), account)
    if done.outcome == "timeout":
        flash(
            gettext("Recent mail is still on its way: press Refresh in a moment to see it."), "info"
        )
    elif done.outcome == "failed":
        flash(
            gettext(
                "Recent mail could not be loaded yet. %(reason)s",
                reason=localize(done.code, done.message),
            ),
            "info",
        )
    return done
