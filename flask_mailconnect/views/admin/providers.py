"""Admin-entered providers: the list, add, edit, offer or hide, delete.

Forms parse; :mod:`flask_mailconnect.accounts.providers` writes (row lock and all), audits and
forgets the cached catalogue; these views commit (or roll back), flash and redirect.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for

from ... import accounts
from ...accounts.providers import PROVIDER_FIELDS, provider_settings
from ...exceptions import InvalidSettings, OAuthFlowError
from ...i18n import gettext
from ...models import MailProvider
from ...oauth.client import redirect_uri
from ...providers import Provider, current_catalog
from ...validation import parse_int
from ..admin_forms import ActionForm, ProviderForm, parse_domains
from ..common import actor, admin_required, state


def _account_counts(keys: list[str]) -> dict[str, int]:
    return accounts.provider_account_counts(state(), keys)


@admin_required
def providers() -> Any:
    rows = list(state().session.scalars(sa.select(MailProvider).order_by(MailProvider.name)))
    catalog = [p for p in current_catalog() if p.source != "admin" and p.key != "other"]
    # Declared and built-in providers are read-only here, shown with the domains they claim
    # (an admin row cannot take those domains: the form says which provider has one).
    declared = [p for p in catalog if p.source == "config"]
    counts = _account_counts([p.key for p in rows] + [p.key for p in declared])
    return render_template(
        "mailconnect/admin/providers.html",
        providers=rows,
        counts=counts,
        declared=declared,
        builtin=[p for p in catalog if p.source == "builtin"],
        action_form=ActionForm(),
    )


def redirect_uri_for(key: str) -> tuple[str | None, str | None]:
    """``(uri, problem)``: the callback URL to register at the provider for ``key``, built as
    the OAuth flow builds it (``MAILCONNECT_EXTERNAL_URL`` or ``SERVER_NAME``, never the
    request's Host), or why it cannot be built yet."""
    try:
        return redirect_uri(Provider(key=key, name=key)), None
    except OAuthFlowError:
        path = url_for("mailconnect.oauth_callback", provider=key)
        return None, gettext(
            "Set MAILCONNECT_EXTERNAL_URL (or SERVER_NAME): the redirect URI is that address "
            "followed by %(path)s.",
            path=path,
        )


def _save(form: ProviderForm, provider: MailProvider | None) -> Any:
    """Save through the accounts layer; the redirect when saved, ``None`` (errors on the form,
    nothing of this request kept) when not."""
    settings = {name: getattr(form, name).data for name in PROVIDER_FIELDS}
    settings["smtp_port"] = parse_int(form.smtp_port.data or "", 1, 65535)  # validated: _port
    settings["imap_port"] = parse_int(form.imap_port.data or "", 1, 65535)
    try:
        saved = accounts.save_provider(
            state(), provider, settings=settings, domains=parse_domains(form.domains.data or ""),
            client_secret=form.client_secret.data or None, actor=actor(),
        )  # fmt: skip
    except InvalidSettings as exc:
        state().session.rollback()  # a refused flush leaves the session unusable
        for name, message in exc.errors.items():
            field = getattr(form, name, form.domains)
            field.errors = [*field.errors, message]
        return None
    state().session.commit()
    message = gettext("Saved provider %(name)s.", name=saved.name)
    if saved.auth_method == "oauth2":
        uri, _problem = redirect_uri_for(saved.key)
        if uri:
            message += " " + gettext("Register this redirect URI at the provider: %(uri)s", uri=uri)
    flash(message, "success")
    return redirect(url_for(".admin_providers"))


@admin_required
def provider_new() -> Any:
    form = ProviderForm()
    if form.validate_on_submit():
        done = _save(form, None)
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


@admin_required
def provider_edit(provider_id: int) -> Any:
    provider = _load_provider(provider_id)
    form = ProviderForm(
        data=provider_settings(provider) if request.method == "GET" else None,
        has_secret=provider.has_client_secret,
    )
    if form.validate_on_submit():
        done = _save(form, provider)
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


@admin_required
def provider_toggle(provider_id: int) -> Any:
    provider = _load_provider(provider_id)
    if ActionForm().validate_on_submit():
        offered = accounts.toggle_provider(state(), provider, actor=actor())
        state().session.commit()
        if offered:
            flash(gettext("%(name)s is offered to users.", name=provider.name), "success")
        else:
            flash(gettext("%(name)s is hidden from users.", name=provider.name), "success")
    return redirect(url_for(".admin_providers"))


@admin_required
def provider_delete(provider_id: int) -> Any:
    provider = _load_provider(provider_id)
    count = _account_counts([provider.key]).get(provider.key, 0)
    form = ActionForm()
    if request.method == "POST" and form.validate_on_submit():
        name = provider.name
        if count or not accounts.delete_provider(state(), provider, actor=actor()):
            state().session.rollback()  # releases the row lock
            provider = _load_provider(provider_id)
            count = _account_counts([provider.key]).get(provider.key, 0)
            return render_template(
                "mailconnect/admin/provider_delete.html", provider=provider, count=count,
                form=form, refused=True,
            ), 409  # fmt: skip
        state().session.commit()
        flash(gettext("Deleted provider %(name)s.", name=name), "success")
        return redirect(url_for(".admin_providers"))
    return render_template(
        "mailconnect/admin/provider_delete.html", provider=provider, count=count, form=form,
        refused=False,
    )  # fmt: skip
