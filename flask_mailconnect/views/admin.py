"""Admin pages: providers, every account, a user's accounts (on their behalf), the audit trail.

Every route here needs the policy's ``admin`` action (others get 404, so the pages reveal
nothing); routes that touch one account also check ``manage`` on its owner through
:mod:`flask_mailconnect.accounts`. Lists use keyset pagination on the primary key and a fixed
number of queries per page, however many rows exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timezone
from typing import Any, cast

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from .. import accounts, audit
from ..exceptions import ConnectionTestFailed, InvalidSettings, PermissionDenied, TooManyTests
from ..forms import ConnectForm
from ..models import AccountStatus, AuditEvent, MailAccount, MailProvider, MailProviderDomain
from ..oauth.providers import current_oauth_providers
from ..owners import Actor, Owner
from ..providers import PRESETS, current_presets
from ..providers.registry import detect_for_app, invalidate_presets
from .admin_forms import _DOMAIN, ActionForm, HandoverForm, ProviderForm, parse_domains
from .common import actor, ports, safe_back, state

ORGANIZATION_OWNER: Owner = ("organization", "main")
PROVIDER_FIELDS = ("name", "enabled", "service_type", "sends", "receives", "smtp_host",
                   "smtp_security", "imap_host", "imap_security", "login_format", "auth_method",
                   "client_id", "server_metadata_url", "authorize_url", "token_url", "revoke_url",
                   "userinfo_url", "scopes")  # fmt: skip
BOOLS = ("enabled", "sends", "receives")
VERBS = {
    "connect": "connected", "reconnect": "reconnected", "disconnect": "disconnected",
    "update": "updated", "test": "tested", "deactivate": "deactivated",
    "reactivate": "reactivated", "handover": "started a hand-over of",
    "oauth_connect": "connected", "oauth_reconnect": "reconnected", "check": "checked",
    "needs_reconnect": "marked as needing sign-in", "keepalive": "kept signed in",
}  # fmt: skip
#: Events with no person behind them (health checks, token refresh, keep-alive), worded whole.
SYSTEM_PHRASES = {
    "needs_reconnect": "marked {whose} {email} as needing sign-in",
    "keepalive": "kept {whose} {email} signed in (token keep-alive)",
}


# -- permission ---------------------------------------------------------------------------------


def is_admin(who: Actor | None) -> bool:
    """The policy's ``admin`` action (scopes.py); plain ``is_admin`` for policies without it."""
    if who is None:
        return False
    from ..owners import ACTIONS

    if "admin" in ACTIONS:
        return state().policy.can(who, "admin", ORGANIZATION_OWNER)
    return who.is_admin


def _require_admin() -> Any:
    endpoint = request.endpoint or ""
    if endpoint.startswith("mailconnect.admin_") and not is_admin(actor()):
        abort(404)
    return None


def _page_size() -> int:
    return max(1, int(current_app.config["MAILCONNECT_ADMIN_PAGE_SIZE"]))


def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


# -- owner names (host callbacks, once per distinct owner on the page) --------------------------


def owner_label(kind: str, ident: str) -> str:
    cache: dict[tuple[str, str], str] = g.setdefault("_mailconnect_owner_labels", {})
    key = (kind, ident)
    if key in cache:
        return cache[key]
    hooks = state().hooks
    label = f"{kind} {ident}"
    if kind == "user":
        user = hooks.get_user(ident)
        label = hooks.label_of(user) if user is not None else f"user {ident}"
    elif kind == "organization":
        label = "Organisation"
    else:
        scope = hooks.scopes.get(kind)
        if scope is not None:
            try:
                obj = scope.load(ident)
            except Exception:  # a host loader failing must not break the admin list
                obj = None
            if obj is not None:
                label = f"{getattr(scope, 'name', kind.capitalize())}: {scope.label(obj)}"
    cache[key] = label
    return label


def prime_owner_labels(
    owners: Iterable[tuple[str | None, str | None]], actors: Iterable[str | None] = ()
) -> None:
    """Load the people among ``owners`` (names) and ``actors`` (whether each is an admin) in
    one ``get_users`` call (``@users_getter`` when the host has it), so that a page naming a
    thousand people asks the host once, not once per row."""
    labels: dict[tuple[str, str], str] = g.setdefault("_mailconnect_owner_labels", {})
    admins: dict[str, bool] = g.setdefault("_mailconnect_actor_admin", {})
    owner_ids = [i for k, i in owners if k == "user" and i and ("user", i) not in labels]
    actor_ids = [i for i in actors if i and i not in admins]
    if not owner_ids and not actor_ids:
        return
    hooks = state().hooks
    found = hooks.get_users([*owner_ids, *actor_ids])
    for ident in owner_ids:
        user = found.get(ident)
        labels[("user", ident)] = hooks.label_of(user) if user is not None else f"user {ident}"
    for ident in actor_ids:
        user = found.get(ident)
        who = hooks.actor_for(user) if user is not None else None
        admins[ident] = bool(who is not None and is_admin(who))


def owner_url(kind: str, ident: str) -> str | None:
    if kind == "user":
        return url_for("mailconnect.admin_user", user_id=ident)
    return None


def _actor_is_admin(actor_id: str) -> bool:
    """Whether the person behind an audit event is an admin (now): only admins are called
    "admin" in the trail; a project manager acting on their project's account is not."""
    cache: dict[str, bool] = g.setdefault("_mailconnect_actor_admin", {})
    if actor_id not in cache:
        prime_owner_labels([("user", actor_id)], actors=[actor_id])
    return cache.get(actor_id, False)


def _whose(event: AuditEvent) -> str:
    kind, ident = event.owner_kind or "", event.owner_id or ""
    if kind == "user":
        if event.actor_id and ident == event.actor_id:
            return "their account"
        return f"{owner_label(kind, ident)}'s account"
    if kind == "organization":
        return "the organisation's account"
    return f"the {owner_label(kind, ident)} account"


def describe(event: AuditEvent) -> str:
    """One sentence for the audit page. An admin acting on someone else's account says so
    ("admin X disconnected Y's account"); others acting on a shared account are named plainly
    (a project manager is not "admin"); events with no person behind them read as the system's
    ("system marked Y's account as needing sign-in")."""
    verb = VERBS.get(event.action, event.action.replace("_", " "))
    who = event.actor_label if event.actor_id else "system"
    if event.action.startswith("provider_"):
        return f"{who} {verb.replace('provider ', '')} provider {event.detail}".strip()
    if not event.owner_kind:
        return f"{who} {verb} {event.account_email}".strip()
    whose = _whose(event)
    if not event.actor_id:
        phrase = SYSTEM_PHRASES.get(event.action, f"{verb} {{whose}} {{email}}")
        return f"system {phrase.format(whose=whose, email=event.account_email)}".strip()
    own = event.owner_kind == "user" and event.owner_id == event.actor_id
    if not own and _actor_is_admin(event.actor_id):
        who = f"admin {who}"
    return f"{who} {verb} {whose} {event.account_email}".strip()


# -- providers ------------------------------------------------------------------------------------


def _account_counts(keys: list[str]) -> dict[str, int]:
    if not keys:
        return {}
    query = (
        sa.select(MailAccount.provider, sa.func.count())
        .where(MailAccount.provider.in_(keys))
        .group_by(MailAccount.provider)
    )
    return {k: n for k, n in state().session.execute(query)}


def providers() -> Any:
    rows = list(state().session.scalars(sa.select(MailProvider).order_by(MailProvider.name)))
    counts = _account_counts([p.key for p in rows])
    return render_template(
        "mailconnect/admin/providers.html",
        providers=rows,
        counts=counts,
        builtin=[p for k, p in PRESETS.items() if k != "other"],
        action_form=ActionForm(),
    )


def _new_key(name: str) -> str:
    base = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")[:40] or "p"
    base = "-".join(part for part in base.split("-") if part)
    taken = set(current_presets(include_disabled=True)) | set(
        state().session.scalars(
            sa.select(MailProvider.key).where(MailProvider.key.like(base + "%"))
        )
    )
    key, n = base, 2
    while key in taken or key in ("google", "microsoft"):
        key, n = f"{base}-{n}", n + 1
    return key


def _claimed(domains: list[str], provider_id: int | None) -> dict[str, str]:
    """Domains already claimed by another provider (admin, declared or preset): domain -> name."""
    if not domains:
        return {}
    query = (
        sa.select(MailProviderDomain.domain, MailProvider.name)
        .join(MailProvider)
        .where(MailProviderDomain.domain.in_(domains))
    )
    if provider_id is not None:
        query = query.where(MailProvider.id != provider_id)
    found = {d: n for d, n in state().session.execute(query)}
    from ..providers.registry import available_presets

    for preset in available_presets(current_app.config).values():
        for domain in preset.domains:
            if domain in domains and domain not in found:
                found[domain] = preset.name
    return found


def _form_data(provider: MailProvider) -> dict[str, Any]:
    data = {name: getattr(provider, name) for name in PROVIDER_FIELDS}
    data["smtp_port"] = "" if provider.smtp_port is None else str(provider.smtp_port)
    data["imap_port"] = "" if provider.imap_port is None else str(provider.imap_port)
    data["domains"] = "\n".join(provider.domain_names)
    return data


def redirect_uri_for(key: str) -> tuple[str | None, str | None]:
    """``(uri, problem)``: the callback URL to register at the provider for ``key``, built as
    the OAuth flow builds it (``MAILCONNECT_EXTERNAL_URL`` or ``SERVER_NAME``, never the
    request's Host), or why it cannot be built yet."""
    from types import SimpleNamespace

    from ..exceptions import OAuthFlowError
    from ..oauth.flow import redirect_uri
    from ..oauth.providers import OAuthProvider

    try:
        return redirect_uri(cast(OAuthProvider, SimpleNamespace(key=key, redirect_uri=None))), None
    except OAuthFlowError:
        path = url_for("mailconnect.oauth_callback", provider=key)
        return None, (
            f"Set MAILCONNECT_EXTERNAL_URL (or SERVER_NAME): the redirect URI is that address "
            f"followed by {path}."
        )


def _save_provider(form: ProviderForm, provider: MailProvider | None) -> Any:
    session = state().session
    domains = parse_domains(form.domains.data or "")
    claimed = _claimed(domains, provider.id if provider else None)
    if claimed:
        form.domains.errors = [
            *form.domains.errors,
            *(f"{d} is already claimed by {name}." for d, name in claimed.items()),
        ]
        return None
    creating = provider is None
    if provider is None:
        provider = MailProvider(key=_new_key(form.name.data or ""))
        session.add(provider)
    before = {} if creating else _form_data(provider)
    for name in PROVIDER_FIELDS:
        value = getattr(form, name).data
        setattr(provider, name, ("" if value is None else value) if name not in BOOLS else value)
    provider.smtp_port = int(form.smtp_port.data) if form.smtp_port.data else None
    provider.imap_port = int(form.imap_port.data) if form.imap_port.data else None
    secret_changed = bool(form.client_secret.data)
    if secret_changed:
        provider.client_secret = form.client_secret.data
        provider.has_client_secret = True
    old = {d.domain: d for d in provider.domains}
    for domain in list(old):
        if domain not in domains:
            provider.domains.remove(old[domain])
    for domain in domains:
        if domain not in old:
            provider.domains.append(MailProviderDomain(domain=domain))
    try:
        session.flush()
    except IntegrityError:  # another admin claimed a domain a moment ago
        session.rollback()
        form.domains.errors = [*form.domains.errors, "A domain was claimed by another provider."]
        return None
    if secret_changed:
        session.expire(provider, ["client_secret"])  # never kept in memory past the flush
    after = _form_data(provider)
    changed = sorted(k for k in after if before.get(k) != after[k])
    if secret_changed:
        changed.append("client_secret")
    audit.record(
        session, "provider_create" if creating else "provider_update", actor=actor(),
        detail=f"{provider.name}" + ("" if creating else f" ({', '.join(changed)})"),
    )  # fmt: skip
    session.commit()
    invalidate_presets()
    message = f"Saved provider {provider.name}."
    if provider.auth_method == "oauth2":
        uri, _problem = redirect_uri_for(provider.key)
        if uri:
            message += f" Register this redirect URI at the provider: {uri}"
    flash(message, "success")
    return redirect(url_for(".admin_providers"))


def provider_new() -> Any:
    form = ProviderForm()
    if form.validate_on_submit():
        done = _save_provider(form, None)
        if done is not None:
            return done
    return render_template(
        "mailconnect/admin/provider_form.html", form=form, provider=None, account_count=0
    ), (422 if form.errors else 200)


def _load_provider(provider_id: int) -> MailProvider:
    provider = state().session.get(MailProvider, provider_id)
    if provider is None:
        abort(404)
    return provider


def provider_edit(provider_id: int) -> Any:
    provider = _load_provider(provider_id)
    form = ProviderForm(
        data=_form_data(provider) if request.method == "GET" else None,
        has_secret=provider.has_client_secret,
    )
    if form.validate_on_submit():
        done = _save_provider(form, provider)
        if done is not None:
            return done
    count = _account_counts([provider.key]).get(provider.key, 0)
    uri, problem = redirect_uri_for(provider.key)
    return render_template(
        "mailconnect/admin/provider_form.html",
        form=form,
        provider=provider,
        account_count=count,
        action_form=ActionForm(),
        redirect_uri=uri,
        redirect_problem=problem,
    ), (422 if form.errors else 200)


def provider_toggle(provider_id: int) -> Any:
    provider = _load_provider(provider_id)
    if ActionForm().validate_on_submit():
        provider.enabled = not provider.enabled
        action = "provider_enable" if provider.enabled else "provider_disable"
        audit.record(state().session, action, actor=actor(), detail=provider.name)
        state().session.commit()
        invalidate_presets()
        flash(f"{provider.name} is {'offered to' if provider.enabled else 'hidden from'} users.",
              "success")  # fmt: skip
    return redirect(url_for(".admin_providers"))


def _delete_unused(provider: MailProvider) -> bool:
    """Delete ``provider`` only if no account uses it, decided by the DELETE statement itself.

    The provider row is locked first (``FOR UPDATE``; SQLite locks the database on write), and
    the DELETE carries ``NOT EXISTS (account of this provider)``: an account created after the
    page counted them (or after the confirmation was shown) makes it delete nothing, so no
    account is ever left pointing at a deleted provider. Returns whether it was deleted.
    """
    session = state().session
    key, ident = provider.key, provider.id
    session.execute(
        sa.select(MailProvider.id).where(MailProvider.id == ident).with_for_update()
    ).first()
    used = sa.exists().where(MailAccount.provider == key)
    result = session.execute(
        sa.delete(MailProvider)
        .where(MailProvider.id == ident, ~used)
        .execution_options(synchronize_session=False)
    )
    deleted = cast("CursorResult[Any]", result).rowcount
    if not deleted:
        return False
    # Without ON DELETE CASCADE enforcement (SQLite's default) the domains go explicitly.
    session.execute(
        sa.delete(MailProviderDomain)
        .where(MailProviderDomain.provider_id == ident)
        .execution_options(synchronize_session=False)
    )
    session.expunge(provider)
    return True


def provider_delete(provider_id: int) -> Any:
    provider = _load_provider(provider_id)
    count = _account_counts([provider.key]).get(provider.key, 0)
    form = ActionForm()
    if request.method == "POST" and form.validate_on_submit():
        if count or not _delete_unused(provider):
            state().session.rollback()
            provider = _load_provider(provider_id)
            count = _account_counts([provider.key]).get(provider.key, 0)
            return render_template(
                "mailconnect/admin/provider_delete.html", provider=provider, count=count,
                form=form, refused=True,
            ), 409  # fmt: skip
        name = provider.name
        audit.record(state().session, "provider_delete", actor=actor(), detail=name)
        state().session.commit()
        invalidate_presets()
        flash(f"Deleted provider {name}.", "success")
        return redirect(url_for(".admin_providers"))
    return render_template(
        "mailconnect/admin/provider_delete.html", provider=provider, count=count, form=form,
        refused=False,
    )  # fmt: skip


# -- accounts -------------------------------------------------------------------------------------


def _account_filters() -> tuple[list[Any], dict[str, str]]:
    args = {k: request.args.get(k, "").strip() for k in ("q", "status", "scope", "provider")}
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
        users = state().hooks.search_users(q, 50)
        ids = [state().hooks.id_of(u) for u in users]
        if ids:
            matches.append(sa.and_(MailAccount.owner_kind == "user", MailAccount.owner_id.in_(ids)))
        where.append(sa.or_(*matches))
    return where, args


def keyset(model: Any, where: list[Any]) -> tuple[list[Any], int | None, int | None]:
    """One page of ``model`` rows, newest first: ``(rows, older_cursor, newer_cursor)``.

    ``?after=ID`` pages to older rows, ``?before=ID`` to newer ones; each is one indexed range
    scan on the primary key, as fast on the last page as on the first.
    """
    size = _page_size()
    after, before = _int_arg("after"), _int_arg("before")
    query = sa.select(model).where(*where)
    if before is not None:
        query = query.where(model.id > before).order_by(model.id.asc()).limit(size + 1)
        rows = list(state().session.scalars(query))
        has_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        older = rows[-1].id if rows else None
        return rows, older, rows[0].id if rows and has_newer else None
    if after is not None:
        query = query.where(model.id < after)
    rows = list(state().session.scalars(query.order_by(model.id.desc()).limit(size + 1)))
    has_older = len(rows) > size
    rows = rows[:size]
    older = rows[-1].id if rows and has_older else None
    newer = rows[0].id if rows and after is not None else None
    return rows, older, newer


def admin_accounts() -> Any:
    where, args = _account_filters()
    rows, older, newer = keyset(MailAccount, where)
    prime_owner_labels((a.owner_kind, a.owner_id) for a in rows)
    kinds = ["user", "organization", *state().hooks.scopes]
    return render_template(
        "mailconnect/admin/accounts.html",
        accounts=rows,
        older=older,
        newer=newer,
        args=args,
        statuses=[*AccountStatus.LABELS.items(), ("inactive", "Inactive")],
        kinds=list(dict.fromkeys(kinds)),
        providers=current_presets(include_disabled=True),
        action_form=ActionForm(),
    )


def _load_account(account_id: int) -> MailAccount:
    account = state().session.get(MailAccount, account_id)
    if account is None or not state().policy.can(actor(), "manage", account.owner):
        abort(404)
    return account


def _set_active(account_id: int, active: bool) -> Any:
    account = _load_account(account_id)
    if ActionForm().validate_on_submit():
        accounts.set_active(state(), account, active, actor=actor())
        state().session.commit()
        flash(f"{account.email} is {'active again' if active else 'inactive: it will not send'}.",
              "success")  # fmt: skip
    return redirect(safe_back() or url_for(".admin_accounts"))


def account_deactivate(account_id: int) -> Any:
    return _set_active(account_id, False)


def account_reactivate(account_id: int) -> Any:
    return _set_active(account_id, True)


# -- users ----------------------------------------------------------------------------------------


def admin_users() -> Any:
    q = request.args.get("q", "").strip()
    hooks = state().hooks
    found = hooks.search_users(q, _page_size()) if q else []
    people = [(hooks.id_of(u), hooks.label_of(u)) for u in found]
    return render_template(
        "mailconnect/admin/users.html", q=q, people=people, searchable=hooks.user_search is not None
    )


def _user_owner(user_id: str) -> tuple[Owner, Any]:
    user = state().hooks.get_user(user_id)
    if user is None:
        abort(404)
    owner: Owner = ("user", str(user_id))
    if not state().policy.can(actor(), "manage", owner) and not state().policy.can(
        actor(), "view", owner
    ):
        abort(404)
    return owner, user


def _handover_form() -> HandoverForm:
    form = HandoverForm()
    from .admin_forms import _Choice

    form.provider.choices = [_Choice(k, p.name) for k, p in current_oauth_providers().items()]
    return form


def admin_user(user_id: str, handover: HandoverForm | None = None, status: int = 200) -> Any:
    owner, user = _user_owner(user_id)
    hooks = state().hooks
    return render_template(
        "mailconnect/admin/user.html",
        user_id=user_id,
        user_label=hooks.label_of(user),
        accounts=accounts.accounts_for(state(), owner),
        can_manage=state().policy.can(actor(), "manage", owner),
        manage_own=current_app.config.get("MAILCONNECT_USERS_CAN_MANAGE_OWN", True),
        handover=handover or _handover_form(),
        action_form=ActionForm(),
    ), status


def user_handover(user_id: str) -> Any:
    owner, _user = _user_owner(user_id)
    form = _handover_form()
    if not form.validate_on_submit():
        return admin_user(user_id, form, 422)
    try:
        account = accounts.create_handover(
            state(), owner=owner, provider=form.provider.data or "",
            email=form.email.data or "", actor=actor(),
        )  # fmt: skip
    except InvalidSettings as exc:
        for name, message in exc.errors.items():
            field = getattr(form, name, form.email)
            field.errors = [*field.errors, message]
        return admin_user(user_id, form, 422)
    except PermissionDenied:
        abort(404)
    except Exception as exc:  # the account limit (scopes.py) and other typed refusals
        if type(exc).__name__ != "AccountLimitReached":
            raise
        form.email.errors = [*form.email.errors, str(exc)]
        return admin_user(user_id, form, 422)
    state().session.commit()
    flash(
        f"Created {account.email}. {_user_label_for(user_id)} sees “Complete authorization” "
        "on their email page and signs in with the provider themselves.",
        "success",
    )
    return redirect(url_for(".admin_user", user_id=user_id))


def _user_label_for(user_id: str) -> str:
    return owner_label("user", user_id)


def _render_connect_for(form: ConnectForm, user_id: str, **kw: Any) -> Any:
    from .user import _presets

    status = kw.pop("status", 200)
    return render_template(
        "mailconnect/connect.html",
        form=form,
        step=kw.pop("step", "details"),
        account=None,
        presets=_presets(),
        test_url=url_for(".admin_user_connect_test", user_id=user_id),
        cancel_url=url_for(".admin_user", user_id=user_id),
        owner_label=_user_label_for(user_id),
        crumbs=[
            ("People", url_for(".admin_users")),
            (_user_label_for(user_id), url_for(".admin_user", user_id=user_id)),
        ],
        report=kw.pop("report", None),
        notice=kw.pop("notice", None),
    ), status


def user_connect(user_id: str) -> Any:
    """The manual connect form, for ``user_id``'s account (the admin types the password the
    user gave them for a shared mailbox, or for a server the user cannot reach)."""
    owner, _user = _user_owner(user_id)
    if not state().policy.can(actor(), "manage", owner):
        abort(404)
    form = ConnectForm(ports=ports())
    if request.method == "GET":
        form.email.data = request.args.get("email", "").strip()
        if not form.email.data:
            return _render_connect_for(form, user_id, step="address")
        form.prefill()
        return _render_connect_for(form, user_id)
    if form.action == "continue":
        if not form.check_email():
            return _render_connect_for(form, user_id, step="address", status=422)
        form.prefill()
        return _render_connect_for(form, user_id)
    if form.action == "test":
        from .user import _test

        try:
            report = _test(form, owner)
        except TooManyTests as exc:
            return _render_connect_for(form, user_id, status=429, notice=str(exc))
        return _render_connect_for(form, user_id, report=report, status=200 if report else 422)
    if not form.validate():
        return _render_connect_for(form, user_id, status=422)
    try:
        account = accounts.connect_manual(
            state(), owner=owner, settings=form.to_settings(), actor=actor(),
            display_name=form.display_name.data,
        )  # fmt: skip
    except InvalidSettings as exc:
        form.add_errors(exc.errors)
        return _render_connect_for(form, user_id, status=422)
    except TooManyTests as exc:
        return _render_connect_for(form, user_id, status=429, notice=str(exc))
    except ConnectionTestFailed as exc:
        state().session.commit()
        return _render_connect_for(form, user_id, report=exc.report, status=422)
    state().session.commit()
    flash(f"Connected {account.email} for {_user_label_for(user_id)}.", "success")
    return redirect(url_for(".admin_user", user_id=user_id))


def user_connect_test(user_id: str) -> Any:
    from .user import _json_test

    owner, _user = _user_owner(user_id)
    if not state().policy.can(actor(), "manage", owner):  # testing logs in as them: manage
        abort(404)
    return _json_test(ConnectForm(ports=ports(), meta={"csrf": False}), owner)


# -- audit trail ----------------------------------------------------------------------------------


def _day(value: str, end: bool) -> datetime | None:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, time.max if end else time.min, tzinfo=timezone.utc)


def admin_audit() -> Any:
    args = {k: request.args.get(k, "").strip() for k in ("action", "actor", "account", "since",
                                                         "until")}  # fmt: skip
    where: list[Any] = []
    if args["action"]:
        where.append(AuditEvent.action == args["action"])
    if args["actor"]:
        pattern = "%" + args["actor"].lower() + "%"
        where.append(
            sa.or_(
                sa.func.lower(AuditEvent.actor_label).like(pattern),
                AuditEvent.actor_id == args["actor"],
            )  # fmt: skip
        )
    if args["account"]:
        term = args["account"]
        if term.isdigit():
            where.append(AuditEvent.account_id == int(term))
        else:
            where.append(sa.func.lower(AuditEvent.account_email).like("%" + term.lower() + "%"))
    since, until = _day(args["since"], False), _day(args["until"], True)
    if since:
        where.append(AuditEvent.created_at >= since)
    if until:
        where.append(AuditEvent.created_at <= until)
    rows, older, newer = keyset(AuditEvent, where)
    prime_owner_labels([(e.owner_kind, e.owner_id) for e in rows], [e.actor_id for e in rows])
    actions = sorted({*VERBS, "provider_create", "provider_update", "provider_delete",
                      "provider_enable", "provider_disable"})  # fmt: skip
    return render_template(
        "mailconnect/admin/audit.html", events=rows, older=older, newer=newer, args=args,
        actions=actions,
    )  # fmt: skip


# -- detection (any signed-in user: the connect page's script) -----------------------------------


#: MX lookups one person may cause through ``/detect`` per minute (per worker process); past
#: it, detection still answers from the admin and preset domains, just without DNS.
DETECT_MX_PER_MINUTE = 20


class _Budget:
    """A small per-process sliding window of events per person (kept on the app's state)."""

    def __init__(self, limit: int, seconds: float = 60.0, people: int = 10_000) -> None:
        import threading

        self.limit, self.seconds, self.people = limit, seconds, people
        self.lock = threading.Lock()
        self.seen: dict[str, list[float]] = {}

    def take(self, who: str) -> bool:
        import time as clock

        now = clock.monotonic()
        with self.lock:
            if len(self.seen) > self.people:  # bounded memory: forget everyone's old windows
                self.seen.clear()
            recent = [t for t in self.seen.get(who, []) if now - t < self.seconds]
            if len(recent) >= self.limit:
                self.seen[who] = recent
                return False
            self.seen[who] = [*recent, now]
            return True


def detect() -> Any:
    """Provider for an address, for the connect page's script (any signed-in person).

    Admin and preset domains answer without any lookup. The MX fallback makes this server ask
    DNS about a name the visitor chose, so it runs only for a syntactically valid domain, at
    most :data:`DETECT_MX_PER_MINUTE` times per person and minute, and answers (negative ones
    too) are cached (``MAILCONNECT_MX_CACHE_SECONDS``).
    """
    email = request.args.get("email", "")[:320]
    if "@" not in email:
        return jsonify(provider="other", source="none")
    preset, source = detect_for_app(email, use_mx=False)
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    if source == "none" and _DOMAIN.match(domain):
        ext_state = state()
        budget = ext_state.__dict__.setdefault("detect_budget", _Budget(DETECT_MX_PER_MINUTE))
        if budget.take(actor().id):
            preset, source = detect_for_app(email)
    return jsonify(provider=preset.key, name=preset.name, source=source)


def admin_index() -> Any:
    return redirect(url_for(".admin_accounts"))


def handover_provider(account: MailAccount) -> Any:
    """The OAuth provider with which the owner completes a hand-over, or ``None``."""
    if account.status != AccountStatus.PENDING_AUTHORIZATION:
        return None
    if "mailconnect.oauth_start" not in current_app.view_functions:
        return None
    who = g.get("mailconnect_actor") or state().hooks.current_actor()
    if not state().policy.can_complete_handover(who, account):
        return None  # only its owner completes it: an admin never gives consent for them
    for key, provider in current_oauth_providers().items():
        if account.provider in (key, provider.servers):
            return provider
    return None


def install(bp: Blueprint) -> None:
    bp.before_request(_require_admin)
    add = bp.add_url_rule
    both = ["GET", "POST"]
    add("/detect", "detect", detect)
    add("/admin/", "admin_index", admin_index)
    add("/admin/providers", "admin_providers", providers)
    add("/admin/providers/new", "admin_provider_new", provider_new, methods=both)
    add("/admin/providers/<int:provider_id>", "admin_provider", provider_edit, methods=both)
    add("/admin/providers/<int:provider_id>/toggle", "admin_provider_toggle", provider_toggle,
        methods=["POST"])  # fmt: skip
    add("/admin/providers/<int:provider_id>/delete", "admin_provider_delete", provider_delete,
        methods=both)  # fmt: skip
    add("/admin/accounts", "admin_accounts", admin_accounts)
    add("/admin/accounts/<int:account_id>/deactivate", "admin_account_deactivate",
        account_deactivate, methods=["POST"])  # fmt: skip
    add("/admin/accounts/<int:account_id>/reactivate", "admin_account_reactivate",
        account_reactivate, methods=["POST"])  # fmt: skip
    add("/admin/users", "admin_users", admin_users)
    add("/admin/users/<user_id>", "admin_user", admin_user)
    add("/admin/users/<user_id>/connect", "admin_user_connect", user_connect, methods=both)
    add("/admin/users/<user_id>/connect/test", "admin_user_connect_test", user_connect_test,
        methods=["POST"])  # fmt: skip
    add("/admin/users/<user_id>/handover", "admin_user_handover", user_handover,
        methods=["POST"])  # fmt: skip
    add("/admin/audit", "admin_audit", admin_audit)
    bp.add_app_template_global(handover_provider, "mailconnect_handover_provider")
    bp.add_app_template_global(owner_label, "mailconnect_owner_label")
    bp.add_app_template_global(owner_url, "mailconnect_owner_url")
    bp.add_app_template_global(describe, "mailconnect_describe")
