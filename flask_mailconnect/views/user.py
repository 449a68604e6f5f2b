"""The signed-in person's pages: their accounts, connect, settings, reconnect, disconnect.

Thin on purpose: forms parse, :mod:`flask_mailconnect.accounts` decides, audits and signals;
views commit, flash and redirect. No sockets and no queries beyond loading through the service.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for

from .. import accounts
from ..exceptions import AccountLimitReached, ConnectionTestFailed, InvalidSettings, TooManyTests
from ..forms import AccountSettingsForm, ConfirmForm, ConnectForm, ReconnectForm
from ..models import MailAccount
from ..owners import Owner
from ..providers import current_presets
from ..signatures import sanitize_signature
from ..transport.settings import ConnectionReport
from .common import actor, load_account, ports, safe_back, state
from .oauth import disconnect_hint


def _presets() -> dict[str, Any]:
    """Preset data for the page's script: servers, login format and the domains to detect."""
    presets = current_presets()
    return {key: {**p.as_dict(), "domains": list(p.domains)} for key, p in presets.items()}


def _render_connect(
    form: ConnectForm,
    *,
    report: ConnectionReport | None = None,
    step: str = "details",
    account: MailAccount | None = None,
    status: int = 200,
    notice: str | None = None,
) -> Any:
    if account is None:
        test_url = url_for(".test_connection")
    else:
        test_url = url_for(".reconnect_test", account_id=account.id)
    page = render_template(
        "mailconnect/connect.html",
        form=form,
        report=report,
        step=step,
        account=account,
        presets=_presets(),
        test_url=test_url,
        notice=notice,
    )
    return page, status


def _test(form: ConnectForm, owner: Owner) -> ConnectionReport | None:
    """Run Test connection for the form (audited); ``None`` when the form has errors.

    Raises :class:`TooManyTests` when the person used up their tests for the hour.
    """
    if not form.validate():
        return None
    try:
        report = accounts.test_for_owner(
            state(), owner=owner, settings=form.to_settings(), actor=actor()
        )
    except InvalidSettings as exc:
        form.add_errors(exc.errors)
        return None
    state().session.commit()  # keep the audit row of the test
    return report


def _page_test(form: ConnectForm, owner: Owner, account: MailAccount | None = None) -> Any:
    """The no-JS "Test connection" button: the same result, rendered in the page."""
    try:
        report = _test(form, owner)
    except TooManyTests as exc:
        return _render_connect(form, account=account, status=429, notice=str(exc))
    return _render_connect(form, report=report, account=account, status=200 if report else 422)


def _json_test(form: ConnectForm, owner: Owner) -> Any:
    try:
        report = _test(form, owner)
    except TooManyTests as exc:
        return jsonify(ok=False, error="rate_limited", message=str(exc)), 429
    if report is None:
        errors = {f.name: f.errors[0] for f in form if f.errors}
        return jsonify(ok=False, errors=errors), 422
    html = render_template("mailconnect/_test_result.html", report=report)
    return jsonify(**report.as_dict(), html=html)


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
    )


def connect() -> Any:
    form = ConnectForm(ports=ports())
    if request.method == "GET" or form.action != "test":
        try:  # MAILCONNECT_MAX_ACCOUNTS: the index page says why Connect is not offered
            accounts.check_limit(state(), actor().owner)
        except AccountLimitReached as exc:
            flash(str(exc), "error")
            return redirect(url_for(".index"))
    if request.method == "GET":
        # ?email= lets a host link straight to the details step, pre-filled.
        form.email.data = request.args.get("email", "").strip()
        if not form.email.data:
            return _render_connect(form, step="address")
        form.prefill()
        return _render_connect(form)
    owner = actor().owner
    if form.action == "continue":
        if not form.check_email():
            return _render_connect(form, step="address", status=422)
        form.prefill()
        return _render_connect(form)
    if form.action == "test":
        return _page_test(form, owner)
    if not form.validate():
        return _render_connect(form, status=422)
    try:
        account = accounts.connect_manual(
            state(),
            owner=owner,
            settings=form.to_settings(),
            actor=actor(),
            display_name=form.display_name.data,
        )
    except InvalidSettings as exc:
        form.add_errors(exc.errors)
        return _render_connect(form, status=422)
    except TooManyTests as exc:
        return _render_connect(form, status=429, notice=str(exc))
    except AccountLimitReached as exc:
        return _render_connect(form, status=409, notice=str(exc))
    except ConnectionTestFailed as exc:
        state().session.commit()  # the failed test stays in the audit trail
        return _render_connect(form, report=exc.report, status=422)
    state().session.commit()
    flash(f"Connected {account.email}.", "success")
    return redirect(url_for(".account", account_id=account.id))


def test_connection() -> Any:
    # CSRF comes in the X-CSRFToken header here, checked before the view (common._require_csrf).
    return _json_test(ConnectForm(ports=ports(), meta={"csrf": False}), actor().owner)


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
            flash("Saved.", "success")
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


def _reconnect_form(acct: MailAccount) -> ReconnectForm:
    form = ReconnectForm(ports=ports())
    if request.method == "GET":
        form.provider.data = acct.provider
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
        return _render_connect(form, account=acct)
    if form.action == "test":
        return _page_test(form, acct.owner, acct)
    if not form.validate():
        return _render_connect(form, account=acct, status=422)
    try:
        accounts.reconnect_manual(state(), acct, settings=form.to_settings(), actor=actor())
    except InvalidSettings as exc:
        form.add_errors(exc.errors)
        return _render_connect(form, account=acct, status=422)
    except TooManyTests as exc:
        return _render_connect(form, account=acct, status=429, notice=str(exc))
    except ConnectionTestFailed as exc:
        state().session.commit()
        return _render_connect(form, report=exc.report, account=acct, status=422)
    state().session.commit()
    flash(f"Reconnected {acct.email}.", "success")
    return redirect(url_for(".account", account_id=acct.id))


def reconnect_test(account_id: int) -> Any:
    acct = load_account(account_id, "manage")
    form = ReconnectForm(ports=ports(), meta={"csrf": False})
    form.email.data = acct.email
    return _json_test(form, acct.owner)


def disconnect(account_id: int) -> Any:
    acct = load_account(account_id, "manage")
    form = ConfirmForm()
    if form.validate_on_submit():
        email, hint = acct.email, disconnect_hint(acct)  # OAuth: where to remove access
        accounts.disconnect(state(), acct, actor=actor())
        state().session.commit()
        flash(f"Disconnected {email}. Its saved password and synced mail were deleted.", "success")
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
    bp.add_url_rule("/accounts/<int:account_id>", "account", account, methods=["GET", "POST"])
    rule = "/accounts/<int:account_id>/"
    bp.add_url_rule(rule + "reconnect", "reconnect", reconnect, methods=["GET", "POST"])
    bp.add_url_rule(rule + "reconnect/test", "reconnect_test", reconnect_test, methods=["POST"])
    bp.add_url_rule(rule + "disconnect", "disconnect", disconnect, methods=["GET", "POST"])
