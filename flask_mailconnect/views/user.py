"""The signed-in person's pages: their accounts, connect, settings, reconnect, disconnect.

Thin on purpose: forms parse, :mod:`flask_mailconnect.accounts` decides, audits and signals;
views commit, flash and redirect. No sockets and no queries beyond loading through the service.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for

from .. import accounts
from ..exceptions import ConnectionTestFailed, InvalidSettings, TooManyTests
from ..forms import AccountSettingsForm, ConfirmForm, ConnectForm, ReconnectForm
from ..i18n import gettext
from ..models import MailAccount
from ..providers import current_catalog
from ..signatures import sanitize_signature
from .admin.lists import link_pattern
from .common import actor, load_account, ports, safe_back, state
from .connect import ConnectPage, json_test, page_test, render_connect, wizard, wizard_test
from .messages import after_save
from .oauth import disconnect_hint, oauth_provider


def index() -> Any:
    owner = actor().owner
    mine = accounts.accounts_for(state(), owner)
    limit = accounts.account_limit(owner)
    return render_template(
        "mailconnect/index.html",
        accounts=mine,
        limit=limit,
        at_limit=limit is not None and len(mine) >= limit,
        can_connect=state().policy.can(actor(), "manage", owner),
        # Once per page, not per card (the card template's cost was per account).
        account_url=link_pattern("mailconnect.account", "account_id"),
        oauth_providers={a.provider: oauth_provider(a.provider) for a in mine},
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


def account(account_id: int) -> Any:
    acct = load_account(account_id, "manage" if request.method == "POST" else "view")
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
        form=form,
        # The editor shows what would be stored: never the raw text someone posted.
        editor_html=sanitize_signature(form.signature_html.data or ""),
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


def install(bp: Blueprint) -> None:
    bp.add_url_rule("/", "index", index)
    bp.add_url_rule("/connect", "connect", connect, methods=["GET", "POST"])
    bp.add_url_rule("/connect/test", "test_connection", test_connection, methods=["POST"])
    bp.add_url_rule("/accounts/<mc_id:account_id>", "account", account, methods=["GET", "POST"])
    rule = "/accounts/<mc_id:account_id>/"
    bp.add_url_rule(rule + "reconnect", "reconnect", reconnect, methods=["GET", "POST"])
    bp.add_url_rule(rule + "reconnect/test", "reconnect_test", reconnect_test, methods=["POST"])
    bp.add_url_rule(rule + "disconnect", "disconnect", disconnect, methods=["GET", "POST"])
