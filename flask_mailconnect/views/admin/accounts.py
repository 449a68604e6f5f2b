"""Every account, with search and filters; the Active flag ("Active: no" stops its use)."""

from __future__ import annotations

import collections
import functools
from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from werkzeug.local import LocalProxy

from ... import accounts
from ...forms import provider_title
from ...i18n import gettext
from ...models import AccountStatus, MailAccount
from ...providers import current_catalog
from ..admin_forms import ActionForm
from ..common import (
    actor,
    admin_required,
    csrf_input,
    load_account,
    provider_labels,
    safe_back,
    search_text,
    state,
)
from ..links import LinkMap, link_pattern
from .account_rows import FIELDS, account_rows, options
from .lists import keyset, owner_label, prime_owner_labels

#: What the list shows of each account: table columns, read as plain rows (no model instance
#: per row), in the order :func:`.account_rows.account_rows` unpacks them.
LIST_COLUMNS = tuple(MailAccount.__table__.c[name] for name in FIELDS)


@admin_required
def admin_index() -> Any:
    return redirect(url_for(".admin_accounts"))


def _account_filters() -> tuple[tuple[str, ...], dict[str, Any], dict[str, str]]:
    """The filters of the query string as a shape (which clauses apply; see
    :func:`_account_where`) and the values of their bind parameters, and the filters' text."""
    args = {k: search_text(k) for k in ("q", "status", "scope", "provider")}
    shape: list[str] = []
    params: dict[str, Any] = {}
    if args["status"] == "inactive":
        shape.append("inactive")
    elif args["status"]:
        shape.append("status")
        params["status"] = args["status"]
    if args["scope"]:
        shape.append("scope")
        params["scope"] = args["scope"]
    if args["provider"]:
        shape.append("provider")
        params["provider"] = args["provider"]
    q = args["q"]
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        shape.append("q")
        params["like"], params["q"] = f"%{escaped}%", q
        hooks = state().hooks
        ids = [hooks.id_of(u) for u in hooks.search_users(q, 50)]
        if ids:
            shape.append("people")
            params["people"] = ids
    return tuple(shape), params, args


def _account_where(shape: tuple[str, ...]) -> list[Any]:
    """The WHERE clauses of a :func:`_account_filters` shape, their values bind parameters:
    built once per shape (:func:`.lists.keyset`)."""
    c = MailAccount.__table__.c
    where: list[Any] = []
    if "inactive" in shape:
        where.append(c.active.is_(False))
    if "status" in shape:
        where.append(c.status == sa.bindparam("status"))
    if "scope" in shape:
        where.append(c.owner_kind == sa.bindparam("scope"))
    if "provider" in shape:
        where.append(c.provider == sa.bindparam("provider"))
    if "q" in shape:
        matches: list[Any] = [
            sa.func.lower(c.email).like(sa.bindparam("like", type_=c.email.type), escape="\\"),
            c.owner_id == sa.bindparam("q"),
        ]
        if "people" in shape:
            people: Any = sa.bindparam("people", expanding=True)
            matches.append(sa.and_(c.owner_kind == "user", c.owner_id.in_(people)))
        where.append(sa.or_(*matches))
    return where


def _kind_name(kind: str) -> str:
    if kind == "user":
        return gettext("User")
    if kind == "organization":
        return gettext("Organization")
    return kind.capitalize()  # a host scope's key, as the host wrote it


@admin_required
def admin_accounts() -> Any:
    shape, params, args = _account_filters()
    rows, older, newer = keyset(
        MailAccount, lambda: _account_where(shape), LIST_COLUMNS, shape=shape, params=params
    )
    values = [tuple(r) for r in rows]  # by position (FIELDS): attribute access costs tenfold
    owners = list(dict.fromkeys((r[3], r[4]) for r in values))
    prime_owner_labels(owners)
    kinds = ["user", "organization", *state().hooks.scopes]
    back = request.full_path
    # Once per page, not per row: the CSRF field (one token for every row's form) and the
    # row links (patterns split around the id; see links.link_pattern).
    links = {
        "account": link_pattern("mailconnect.account", "account_id"),
        "deactivate": link_pattern("mailconnect.admin_account_deactivate", "account_id"),
        "reactivate": link_pattern("mailconnect.admin_account_reactivate", "account_id"),
        "disconnect": link_pattern("mailconnect.disconnect", "account_id", next=back),
    }
    person = link_pattern("mailconnect.admin_user", "user_id")
    catalog = current_catalog()
    # Built only for a template that uses it (an override), once per request.
    form: Any = LocalProxy(functools.cache(ActionForm))
    csrf_field = csrf_input()
    # Translated once per page (models keep the English; the rows only look them up).
    labels = {status: gettext(label) for status, label in AccountStatus.LABELS.items()}
    provider_names = {key: catalog.get(key) for key in dict.fromkeys(r[5] for r in values)}
    listed = list(catalog)
    provider_titles = {p.key: provider_title(p) for p in listed}
    owner_labels = {owner: owner_label(*owner) for owner in owners}  # primed: no look-ups
    kind_names = collections.defaultdict(str, {k: _kind_name(k) for k in kinds})
    status_labels = collections.defaultdict(str, labels)
    rows_html = account_rows(
        values,
        links=links,
        person=person,
        owner_labels=owner_labels,
        kind_names=kind_names,
        provider_labels=provider_labels(provider_names),
        status_labels=labels,
        csrf_field=csrf_field,
        back=back,
    )
    statuses = [*labels.items(), ("inactive", gettext("Inactive"))]
    providers = {p.key: p for p in listed}
    kinds = list(dict.fromkeys(kinds))
    return render_template(
        "mailconnect/admin/accounts.html",
        # The filters' options, written in Python (the lists below stay for templates
        # overriding this one).
        status_options=options(statuses, args["status"]),
        scope_options=options(((k, kind_names[k]) for k in kinds), args["scope"]),
        provider_options=options(((k, provider_titles[k]) for k in providers), args["provider"]),
        accounts=rows,
        rows_html=rows_html,
        older=older,
        newer=newer,
        args=args,
        statuses=statuses,
        kinds=kinds,
        providers=providers,
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
