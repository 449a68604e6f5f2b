"""Shared accounts: the organisation's and host-declared scopes' (project email settings).

``/scopes/<kind>/`` lists every owner of the kind (the organisation, or what the registered
scope's ``list()`` returns) with its accounts, in a constant number of queries: the owners come
from the host in one call, their accounts from one query, and permissions are checked against
the listed objects (never a load per row). Whoever may manage a row connects (manual form, or
OAuth where configured) and disconnects there; "Disconnect all" is one confirmed POST that
reports per owner what happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf.csrf import generate_csrf

from .. import accounts
from ..exceptions import AccountLimitReached, ConnectionTestFailed, InvalidSettings, TooManyTests
from ..forms import ConfirmForm, ConnectForm
from ..models import MailAccount
from ..owners import ORGANIZATION, ORGANIZATION_ID, Owner
from ..scopes import load_owner
from ..transport.settings import ConnectionReport
from .common import actor, ports, state
from .user import _json_test, _presets, _test


@dataclass
class Row:
    """One owner on a scope page."""

    owner: Owner
    label: str
    accounts: list[MailAccount] = field(default_factory=list)
    can_manage: bool = False
    limit: int | None = None

    @property
    def at_limit(self) -> bool:
        return self.limit is not None and len(self.accounts) >= self.limit


def _scope_title(kind: str) -> tuple[str, str]:
    if kind == ORGANIZATION:
        return "Organization", "Organization"
    scope = state().hooks.scopes.get(kind)
    if scope is None or scope.list is None:
        abort(404)
    return scope.name, scope.name_plural


def _rows(kind: str) -> list[Row]:
    """Owners the actor may view, with their accounts: three queries whatever the count."""
    policy, who = state().policy, actor()
    rows = []
    for owner, obj, label in accounts.scope_owners(state(), kind):
        if not policy.can(who, "view", owner, obj=obj):
            continue
        manage = policy.can(who, "manage", owner, obj=obj)
        rows.append(Row(owner, label, can_manage=manage, limit=accounts.account_limit(owner)))
    found = accounts.accounts_by_owner(state(), [r.owner for r in rows])
    for row in rows:
        row.accounts = found.get(row.owner, [])
    return rows


def _owner(kind: str, owner_id: str, action: str) -> tuple[Owner, str]:
    """The owner in the URL, if it exists and the actor may ``action`` it; else 404."""
    owner = (kind, owner_id)
    if kind == ORGANIZATION:
        if owner_id != ORGANIZATION_ID:
            abort(404)
        label = "Organization"
    else:
        scope = state().hooks.scopes.get(kind)
        obj = load_owner(owner) if scope is not None else None
        if scope is None or obj is None:
            abort(404)
        label = scope.label(obj)
    if not state().policy.can(actor(), action, owner):
        abort(404)
    return owner, label


def scope_index(kind: str) -> Any:
    title, plural = _scope_title(kind)
    rows = _rows(kind)
    if not rows and not actor().is_admin:
        abort(404)
    oauth = _oauth_buttons() if any(r.can_manage for r in rows) else []
    return render_template(
        "mailconnect/scope_index.html",
        kind=kind,
        title=title,
        plural=plural,
        rows=rows,
        any_manage=any(r.can_manage for r in rows),
        any_accounts=any(r.accounts and r.can_manage for r in rows),
        oauth_providers=oauth,
        csrf=generate_csrf() if oauth else "",
    )


def _oauth_buttons() -> list[tuple[str, str]]:
    """``(key, name)`` of OAuth providers, when the OAuth start view exists in this version."""
    from flask import current_app

    if "mailconnect.oauth_start" not in current_app.view_functions:
        return []
    try:
        from ..oauth.providers import current_oauth_providers
    except ImportError:  # pragma: no cover - depends on the OAuth issue's progress
        return []
    return [(key, p.name) for key, p in current_oauth_providers().items()]


def _render_connect(
    form: ConnectForm,
    owner: Owner,
    label: str,
    *,
    report: ConnectionReport | None = None,
    step: str = "details",
    status: int = 200,
    notice: str | None = None,
) -> Any:
    kind, owner_id = owner
    back = url_for(".scope", kind=kind)
    page = render_template(
        "mailconnect/connect.html",
        form=form,
        report=report,
        step=step,
        account=None,
        presets=_presets(),
        test_url=url_for(".scope_connect_test", kind=kind, owner_id=owner_id),
        notice=notice,
        owner_label=label,
        cancel_url=back,
        crumbs=[(_scope_title(kind)[1], back)],
    )
    return page, status


def scope_connect(kind: str, owner_id: str) -> Any:
    owner, label = _owner(kind, owner_id, "manage")
    form = ConnectForm(ports=ports())
    try:
        if request.method == "GET" or form.action != "test":
            accounts.check_limit(state(), owner)
    except AccountLimitReached as exc:
        flash(str(exc), "error")
        return redirect(url_for(".scope", kind=kind))
    if request.method == "GET":
        form.email.data = request.args.get("email", "").strip()
        if not form.email.data:
            return _render_connect(form, owner, label, step="address")
        form.prefill()
        return _render_connect(form, owner, label)
    if form.action == "continue":
        if not form.check_email():
            return _render_connect(form, owner, label, step="address", status=422)
        form.prefill()
        return _render_connect(form, owner, label)
    if form.action == "test":
        try:
            report = _test(form, owner)
        except TooManyTests as exc:
            return _render_connect(form, owner, label, status=429, notice=str(exc))
        return _render_connect(form, owner, label, report=report, status=200 if report else 422)
    if not form.validate():
        return _render_connect(form, owner, label, status=422)
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
        return _render_connect(form, owner, label, status=422)
    except (TooManyTests, AccountLimitReached) as exc:
        return _render_connect(form, owner, label, status=409, notice=str(exc))
    except ConnectionTestFailed as exc:
        state().session.commit()  # the failed test stays in the audit trail
        return _render_connect(form, owner, label, report=exc.report, status=422)
    state().session.commit()
    flash(f"Connected {account.email} for {label}.", "success")
    return redirect(url_for(".scope", kind=kind))


def scope_connect_test(kind: str, owner_id: str) -> Any:
    owner, _label = _owner(kind, owner_id, "manage")
    return _json_test(ConnectForm(ports=ports(), meta={"csrf": False}), owner)


def disconnect_all(kind: str) -> Any:
    title, plural = _scope_title(kind)
    rows = [r for r in _rows(kind) if r.can_manage]
    if not rows:
        abort(404)
    form = ConfirmForm()
    form.submit.label.text = f"Disconnect all {plural.lower()}' accounts"
    if not form.validate_on_submit():
        return render_template(
            "mailconnect/scope_disconnect_all.html",
            kind=kind, title=title, plural=plural, rows=rows, form=form, results=None,
        )  # fmt: skip
    results = accounts.disconnect_all(state(), kind, actor=actor())
    state().session.commit()
    done = sum(1 for r in results if r.outcome == "disconnected")
    failed = sum(1 for r in results if r.outcome == "failed")
    return render_template(
        "mailconnect/scope_disconnect_all.html",
        kind=kind, title=title, plural=plural, rows=rows, form=None, results=results,
        done=done, failed=failed,
    )  # fmt: skip


def organization_index() -> Any:
    return redirect(url_for(".scope", kind=ORGANIZATION))


def install(bp: Blueprint) -> None:
    bp.add_url_rule("/scopes/<kind>/", "scope", scope_index)
    bp.add_url_rule(
        "/scopes/<kind>/disconnect-all", "scope_disconnect_all", disconnect_all,
        methods=["GET", "POST"],
    )  # fmt: skip
    rule = "/scopes/<kind>/<owner_id>/connect"
    bp.add_url_rule(rule, "scope_connect", scope_connect, methods=["GET", "POST"])
    bp.add_url_rule(rule + "/test", "scope_connect_test", scope_connect_test, methods=["POST"])
    bp.add_url_rule("/organization/", "organization", organization_index)
