"""Recent mail (refresh button) and "Edit folders" for one account.

The folder page talks to the mailbox (through :mod:`flask_mailconnect.sync`, never a socket
here): when the account's settings are broken (login refused, server down, needs reconnect) it
says so in words, with the remedy and a link to reconnect, instead of failing.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from .. import sync
from ..exceptions import InvalidSettings, SyncError
from ..i18n import gettext, lazy_gettext, ngettext
from ..models import MailAccount, SyncedMessage
from ..transport.mailbox import ROLES
from .common import actor, load_account, localize, state

ROLE_LABELS = {
    "inbox": (lazy_gettext("Inbox"), lazy_gettext("Where new mail arrives.")),
    "sent": (lazy_gettext("Sent"), lazy_gettext("Where copies of sent mail are kept.")),
    "archive": (lazy_gettext("Archive"), lazy_gettext("Where archived mail goes.")),
    "trash": (lazy_gettext("Trash"), lazy_gettext("Where deleted mail goes.")),
}


def folders(account_id: int) -> Any:
    acct = load_account(account_id, "manage")
    listing = None
    problem: SyncError | None = None
    errors: dict[str, str] = {}
    try:
        listing = sync.list_folders(state(), acct, actor=actor())
    except SyncError as exc:
        problem = exc
    state().session.commit()  # keep what the attempt recorded (health, needs_reconnect)
    chosen = listing.initial if listing is not None else sync.current_mapping(acct)
    if request.method == "POST" and listing is not None:
        posted = {role: request.form.get(role, "") for role in ROLES}
        try:
            changed = sync.update_folders(
                state(), acct, posted, actor=actor(), folders=listing.names
            )
        except InvalidSettings as exc:
            state().session.rollback()
            errors = exc.errors
            chosen = {role: posted[role] or None for role in ROLES}
        else:
            state().session.commit()
            flash(
                gettext("Folders saved.") if changed else gettext("No changes to save."), "success"
            )
            return redirect(url_for(".account", account_id=acct.id))
    status = 422 if errors else (409 if request.method == "POST" and problem else 200)
    return render_template(
        "mailconnect/folders.html",
        account=acct,
        listing=listing,
        problem=problem,
        chosen=chosen,
        errors=errors,
        roles=[(role, *ROLE_LABELS[role]) for role in ROLES],
        stored=sync.current_mapping(acct),
    ), status


def sync_now(account_id: int) -> Any:
    """The "Refresh" button of the recent-mail list (POST, CSRF checked by common.py)."""
    acct = load_account(account_id, "read")  # reading mail: not an admin on someone's behalf
    try:
        result = sync.sync_recent(state(), acct, actor=actor())
    except SyncError as exc:
        state().session.commit()  # keep the recorded failure
        flash(
            gettext(
                "Could not refresh recent mail: %(reason)s", reason=localize(exc.code, exc.message)
            ),
            "error",
        )
    else:
        state().session.commit()
        count = result.new
        if count:
            flash(ngettext("%(num)d new message.", "%(num)d new messages.", count), "success")
        else:
            flash(gettext("No new mail."), "success")
    return redirect(url_for(".account", account_id=acct.id) + "#mc-recent-heading")


def recent_for(account: MailAccount, limit: int = 50) -> list[SyncedMessage]:
    """For templates: the account's synced messages, newest first (one query; none for an
    account that never synced).

    A sync stores its rows and ``last_synced_at`` in one flush (sync.py), so an account
    without ``last_synced_at`` has no rows to find: its page (the list then says "Not synced
    yet") runs no query for them.
    """
    if account.last_synced_at is None:
        return []
    return sync.recent_messages(state(), account, limit)
