"""Every account, with search and filters; the Active flag ("Active: no" stops its use)."""

from __future__ import annotations

import collections
from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for

from ... import accounts
from ...forms import provider_title
from ...i18n import gettext
from ...models import AccountStatus, MailAccount
from ...providers import current_catalog
from ..admin_forms import ActionForm
from ..common import actor, admin_required, load_account, safe_back, search_text, state
from .account_rows import account_rows
from .lists import LinkMap, keyset, link_pattern, owner_label, prime_owner_labels

#: What the list shows of each account (read as plain rows: no model instance per row).
LIST_COLUMNS = (MailAccount.id, MailAccount.email, MailAccount.display_name,
                MailAccount.owner_kind, MailAccount.owner_id, MailAccount.provider,
                MailAccount.status, MailAccount.active)  # fmt: skip


@admin_required
def admin_index() -> Any:
    return redirect(url_for(".admin_accounts"))


def _account_filters() -> tuple[list[Any], dict[str, str]]:
    args = {k: search_text(k) for k in ("q", "status", "scope", "provider")}
    where: list[Any] = []
    if args["status"] == "inactive":
        where.append(MailAccount.active.is_(False))
    elif args["status"]:
        where.append(MailAccount.status == args["status"])
    if args["scope"]:
        where.append(MailAccount.owner_kind == args["scope"])
    if args["provider"]:
        where.append(MailAccount.provider == args["provider"])
    q = args["q"]
    if q:
        like = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        matches: list[Any] = [sa.func.lower(MailAccount.email).like(like, escape="\\")]
        matches.append(MailAccount.owner_id == q)
        hooks = state().hooks
        ids = [hooks.id_of(u) for u in hooks.search_users(q, 50)]
        if ids:
            matches.append(sa.and_(MailAccount.owner_kind == "user", MailAccount.owner_id.in_(ids)))
        where.append(sa.or_(*matches))
    return where, args


def _kind_name(kind: str) -> str:
    if kind == "user":
        return gettext("User")
    if kind == "organization":
        return gettext("Organization")
    return kind.capitalize()  # a host scope's key, as the host wrote it


@admin_required
def admin_accounts() -> Any:
    where, args = _account_filters()
    rows, older, newer = keyset(MailAccount, where, LIST_COLUMNS)
    owners = {(a.owner_kind, a.owner_id) for a in rows}
    prime_owner_labels(owners)
    kinds = ["user", "organization", *state().hooks.scopes]
    back = request.full_path
    # Once per page, not per row: the CSRF field (one token for every row's form) and the
    # row links (patterns split around the id; see lists.link_pattern).
    links = {
        "account": link_pattern("mailconnect.account", "account_id"),
        "deactivate": link_pattern("mailconnect.admin_account_deactivate", "account_id"),
        "reactivate": link_pattern("mailconnect.admin_account_reactivate", "account_id"),
        "disconnect": link_pattern("mailconnect.disconnect", "account_id", next=back),
    }
    person = link_pattern("mailconnect.admin_user", "user_id")
    catalog = current_catalog()
    form = ActionForm()
    csrf_field = form.csrf_token(id=False)
    # Translated once per page (models keep the English; the rows only look them up).
    labels = {status: gettext(label) for status, label in AccountStatus.LABELS.items()}
    provider_names = {a.provider: catalog.get(a.provider) for a in rows}
    provider_titles = {p.key: provider_title(p) for p in catalog}
    owner_labels = {owner: owner_label(*owner) for owner in owners}
    kind_names = collections.defaultdict(str, {k: _kind_name(k) for k in kinds})
    status_labels = collections.defaultdict(str, labels)
    rows_html = account_rows(
        rows,
        links=links,
        person=person,
        owner_labels=owner_labels,
        kind_names=kind_names,
        provider_labels={
            key: provider_title(found) if found else key for key, found in provider_names.items()
        },
        status_labels=labels,
        csrf_field=csrf_field,
        back=back,
    )
    return render_template(
        "mailconnect/admin/accounts.html",
        accounts=rows,
        rows_html=rows_html,
        older=older,
        newer=newer,
        args=args,
        statuses=[*labels.items(), ("inactive", gettext("Inactive"))],
        kinds=list(dict.fromkeys(kinds)),
        providers={p.key: p for p in catalog},
        provider_names=provider_names,
        provider_titles=provider_titles,
        action_form=form,
        csrf_field=csrf_field,
        links=links,
        person_urls=LinkMap(person),  # for templates overriding this one
        owner_labels=owner_labels,
        kind_names=kind_names,
        status_labels=status_labels,
        back=back,
    )


def _set_active(account_id: int, active: bool) -> Any:
    account = load_account(account_id, "manage")
    if ActionForm().validate_on_submit():
        accounts.set_active(state(), account, active, actor=actor())
        state().session.commit()
        if active:
            flash(gettext("%(email)s is active again.", email=account.email), "success")
        else:
            done = gettext("%(email)s is inactive: it will not send.", email=account.email)
            flash(done, "success")
    return redirect(safe_back() or url_for(".admin_accounts"))


@admin_required
def account_deactivate(account_id: int) -> Any:
    return _set_active(account_id, False)


@admin_required
def account_reactivate(account_id: int) -> Any:
    return _set_active(account_id, True)
