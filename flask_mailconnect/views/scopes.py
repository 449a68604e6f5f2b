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

from flask import abort, redirect, render_template, url_for

from .. import accounts
from ..forms import ConfirmForm
from ..i18n import gettext
from ..models import MailAccount
from ..owners import ORGANIZATION, Owner
from ..providers import current_catalog
from ..scopes import load_owner, valid_owner
from .common import actor, state
from .connect import ConnectPage, wizard, wizard_test


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
        return gettext("Organization"), gettext("Organization")
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
    """The owner in the URL, if it exists and the actor may ``action`` it; else 404.

    The id is checked before the host sees it (a declared kind, at most 64 characters, no
    control characters), and the permission before the page loads anything else: the policy
    loads the owner once (cached for the request) to decide, so a visitor who may not act
    learns nothing and costs no more than that one load.
    """
    owner = (kind, owner_id)
    if not valid_owner(owner) or not state().policy.can(actor(), action, owner):
        abort(404)
    if kind == ORGANIZATION:
        return owner, gettext("Organization")
    scope = state().hooks.scopes.get(kind)
    obj = load_owner(owner) if scope is not None else None
    if scope is None or obj is None:
        abort(404)
    return owner, scope.label(obj)


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
    )


def _oauth_buttons() -> list[tuple[str, str]]:
    """``(key, name)`` of OAuth providers, when the OAuth start view exists in this version."""
    from flask import current_app

    if "mailconnect.oauth_start" not in current_app.view_functions:
        return []
    return [(key, p.name) for key, p in current_catalog().oauth().items()]


def _connect_page(kind: str, owner_id: str) -> ConnectPage:
    """The wizard for one owner of the kind (404 unless it exists and the actor may manage
    its accounts); done, back to the kind's page."""
    owner, label = _owner(kind, owner_id, "manage")
    back = url_for(".scope", kind=kind)
    return ConnectPage(
        owner=owner,
        test_url=url_for(".scope_connect_test", kind=kind, owner_id=owner_id),
        back_url=back,
        crumbs=((_scope_title(kind)[1], back),),
        owner_label=label,
    )


def scope_connect(kind: str, owner_id: str) -> Any:
    return wizard(_connect_page(kind, owner_id))


def scope_connect_test(kind: str, owner_id: str) -> Any:
    return wizard_test(_connect_page(kind, owner_id))


def disconnect_all(kind: str) -> Any:
    title, plural = _scope_title(kind)
    rows = [r for r in _rows(kind) if r.can_manage]
    if not rows:
        abort(404)
    form = ConfirmForm()
    # TRANSLATORS: %(kinds)s is the host's plural name of the scope, lower case ("projects").
    form.submit.label.text = gettext("Disconnect all %(kinds)s' accounts", kinds=plural.lower())
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
