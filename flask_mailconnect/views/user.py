"""The signed-in person's pages: their accounts, connect, settings, reconnect, disconnect.

Thin on purpose: forms parse, :mod:`flask_mailconnect.accounts` decides, audits and signals;
views commit, flash and redirect. No sockets and no queries beyond loading through the service.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from sqlalchemy.orm import load_only

from .. import accounts
from ..exceptions import ConnectionTestFailed, InvalidSettings, TooManyTests
from ..forms import (
    AccountSettingsForm,
    ConfirmForm,
    ConnectForm,
    ReconnectForm,
)
from ..i18n import gettext
from ..models import MailAccount
from ..providers import current_catalog
from ..signatures import sanitize_signature
from .common import actor, by_id, load_account, ports, provider_labels, safe_back, state
from .connect import ConnectPage, json_test, page_test, render_connect, wizard, wizard_test
from .links import account_links, link_pattern
from .messages import after_save
from .oauth import disconnect_hint, signs_in


def index() -> Any:
    who, runtime = actor(), state()
    owner = who.owner
    mine = accounts.account_cards(runtime, owner)  # the columns the cards show
    limit = accounts.account_limit(owner)
    catalog = current_catalog()  # once for the page: each look-up re-checks the configuration
    found = {key: catalog.get(key) for key in {a.provider for a in mine}}
    return render_template(
        "mailconnect/index.html",
        accounts=mine,
        limit=limit,
        at_limit=limit is not None and len(mine) >= limit,
        can_connect=runtime.policy.can(who, "manage", owner),
        # Once per page, not per card (the card template's cost was per account).
        account_url=link_pattern("mailconnect.account", "account_id"),
        # What oauth_provider() and the mailconnect_provider filter answer, per provider key.
        oauth_providers={k: signs_in(p) for k, p in found.items()},
        provider_labels=provider_labels(found),
    )


def _own_page() -> ConnectPage:
    """The wizard for the signed-in person's own account; done, it shows the new account."""
    home = url_for(".index")
    return ConnectPage(
        owner=actor().owner,
        test_url=url_for(".test_connection"),
        back_url=home,
        crumbs=((gettext("Email accounts"), home),),
        done_url=lambda account: url_for(".account", account_id=account.id),
    )


def connect() -> Any:
    return wizard(_own_page())


def test_connection() -> Any:
    # CSRF comes in the X-CSRFToken header here, checked before the view (common._require_csrf).
    return wizard_test(_own_page())


def _account_form_data(account: MailAccount) -> dict[str, Any]:
    return {
        "display_name": account.display_name,
        "signature_html": account.signature_html,
        "notify_email": account.notify_email,
        "mute_mobile": not account.notify_mobile,
        "is_default": account.is_default,
    }


#: Columns the account page never shows (token times, folders, sync positions, bookkeeping):
#: a third of the row, left out of its GET (a POST saves: it loads the whole account).
_NOT_SHOWN = frozenset({
    "token_expires_at", "token_refreshed_at", "token_scopes", "graph_token_expires_at",
    "oauth_issuer", "oauth_subject", "folder_inbox", "folder_sent", "folder_archive",
    "folder_trash", "sync_uidvalidity", "sync_uidnext", "last_sent_at", "last_checked_at",
    "connected_by", "created_at", "updated_at",
})  # fmt: skip


@functools.cache
def _page_query() -> sa.Select[MailAccount]:
    """The account page's load: what it shows (built on first use: inspecting the columns
    configures the mappers). Any other attribute a host's own account.html reads is loaded on
    first use (one more query), so it still reads right. Deferred columns, the secrets, stay
    deferred: they are never loaded for a page."""
    shown = (
        getattr(MailAccount, column.key)
        for column in sa.inspect(MailAccount).column_attrs
        if column.key not in _NOT_SHOWN and not column.deferred
    )
    return by_id().options(load_only(*shown))


def account(account_id: int) -> Any:
    if request.method == "POST":
        acct = load_account(account_id, "manage")
    else:
        acct = load_account(account_id, "view", query=_page_query())
    form = AccountSettingsForm(data=_account_form_data(acct))
    if form.validate_on_submit():
        try:
            accounts.update_account(state(), acct, actor=actor(), **form.changes())
        except InvalidSettings as exc:
            state().session.rollback()  # nothing of this request is saved
            form.add_errors(exc.errors)
        else:
            state().session.commit()
            flash(gettext("Saved."), "success")
            return redirect(url_for(".account", account_id=acct.id))
    return render_template(
        "mailconnect/account.html",
        account=acct,
        account_links=account_links(acct.id),
        form=form,
        # The editor shows what would be stored: never the raw text someone posted.
        # (Nothing to clean in an empty signature: the cleaner's set-up is the costly part.)
        editor_html=sanitize_signature(form.signature_html.data)
        if form.signature_html.data
        else "",
        can_manage=state().policy.can(actor(), "manage", acct.owner),
        can_read=state().policy.can(actor(), "read", acct.owner),
    ), (422 if form.errors else 200)


def _render_reconnect(form: ConnectForm, acct: MailAccount, **kw: Any) -> Any:
    test_url = url_for(".reconnect_test", account_id=acct.id)
    return render_connect(form, test_url=test_url, account=acct, **kw)


def _reconnect_form(acct: MailAccount) -> ReconnectForm:
    form = ReconnectForm(ports=ports())
    if request.method == "GET":
        form.provider.data = current_catalog().for_account(acct).key  # older keys: aliases
        form.username.data = acct.username
        form.smtp_host.data, form.smtp_port.data = acct.smtp_host, acct.smtp_port
        form.smtp_security.data = acct.smtp_security
        form.receives.data = acct.receives
        if acct.receives:
            form.imap_host.data, form.imap_port.data = acct.imap_host, acct.imap_port
            form.imap_security.data = acct.imap_security
    form.email.data = acct.email  # the address is the account's identity: not editable here
    return form


def reconnect(account_id: int) -> Any:
    acct = load_account(account_id, "manage")
    form = _reconnect_form(acct)
    if request.method == "GET":
        return _render_reconnect(form, acct)
    if form.action == "test":
        return page_test(form, acct.owner, lambda f, **kw: _render_reconnect(f, acct, **kw))
    if not form.validate():
        return _render_reconnect(form, acct, status=422)
    try:
        accounts.reconnect_manual(state(), acct, settings=form.to_settings(), actor=actor())
    except InvalidSettings as exc:
        form.add_errors(exc.errors)
        return _render_reconnect(form, acct, status=422)
    except TooManyTests as exc:
        return _render_reconnect(form, acct, status=429, notice=str(exc))
    except ConnectionTestFailed as exc:
        state().session.commit()
        return _render_reconnect(form, acct, report=exc.report, status=422)
    state().session.commit()
    flash(gettext("Reconnected %(email)s.", email=acct.email), "success")
    after_save(acct)  # mail that arrived while it was disconnected, at once
    return redirect(url_for(".account", account_id=acct.id))


def reconnect_test(account_id: int) -> Any:
    acct = load_account(account_id, "manage")
    form = ReconnectForm(ports=ports(), meta={"csrf": False})
    form.email.data = acct.email
    return json_test(form, acct.owner)


def disconnect(account_id: int) -> Any:
    acct = load_account(account_id, "manage")
    form = ConfirmForm()
    if form.validate_on_submit():
        email, hint = acct.email, disconnect_hint(acct)  # OAuth: where to remove access
        # What was stored, said as it was: an OAuth account never had a password here.
        oauth = acct.auth_method == "oauth2"
        accounts.disconnect(state(), acct, actor=actor())
        state().session.commit()
        if oauth:
            done = gettext(
                "Disconnected %(email)s. Its sign-in tokens and synced mail were deleted.",
                email=email,
            )
        else:
            done = gettext(
                "Disconnected %(email)s. Its saved password and synced mail were deleted.",
                email=email,
            )
        flash(done, "success")
        if hint:
            flash(hint, "info")
        back = safe_back()  # where the disconnect started (the admin list), same-site only
        if back:
            return redirect(back)
        if acct.owner_kind != "user":  # a shared account: back to its scope's page
            return redirect(url_for(".scope", kind=acct.owner_kind))
        return redirect(url_for(".index"))
    return render_template("mailconnect/disconnect.html", account=acct, form=form, back=safe_back())
