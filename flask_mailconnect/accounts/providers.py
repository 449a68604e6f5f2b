"""Admin-entered providers: create, edit, offer or hide, delete.

The only writer of :class:`~flask_mailconnect.models.MailProvider` rows and their domains. As
everywhere in this package, each function checks the actor (the ``admin`` action on the
organisation; ``actor=None`` is trusted host code), writes the audit trail and forgets the
catalogue built for this request and this process's copy of the admin rows
(:func:`~flask_mailconnect.providers.forget_catalog`, so the rest of the request and the
process's next requests see the change; other processes within
``MAILCONNECT_PROVIDER_CACHE_SECONDS``); none commits: the caller does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..columns import seal
from ..exceptions import InvalidSettings
from ..i18n import gettext
from ..models import MailAccount, MailProvider, MailProviderDomain
from ..owners import ORGANIZATION_OWNER, Actor
from ..providers import build_catalog, current_catalog, forget_catalog
from ..runtime import Runtime
from .core import require

#: The provider's settings as :func:`save_provider` takes them (besides the two ports, the
#: domains and the client secret).
PROVIDER_FIELDS = ("name", "enabled", "service_type", "sends", "receives", "smtp_host",
                   "smtp_security", "imap_host", "imap_security", "login_format", "auth_method",
                   "client_id", "server_metadata_url", "authorize_url", "token_url", "revoke_url",
                   "userinfo_url", "scopes")  # fmt: skip
BOOLS = ("enabled", "sends", "receives")
#: The audit trail's actions for providers.
PROVIDER_ACTIONS = ("provider_create", "provider_update", "provider_delete", "provider_enable",
                    "provider_disable")  # fmt: skip


def _require_admin(state: Runtime, actor: Actor | None) -> None:
    require(state, actor, "admin", ORGANIZATION_OWNER)


# -- reading --------------------------------------------------------------------------------------


def provider_settings(provider: MailProvider) -> dict[str, Any]:
    """The provider's settings as the admin form shows them (ports and domains as text; never
    the client secret). Also what an update compares to name the changed fields."""
    data = {name: getattr(provider, name) for name in PROVIDER_FIELDS}
    data["smtp_port"] = "" if provider.smtp_port is None else str(provider.smtp_port)
    data["imap_port"] = "" if provider.imap_port is None else str(provider.imap_port)
    data["domains"] = "\n".join(provider.domain_names)
    return data


def provider_account_counts(state: Runtime, keys: list[str]) -> dict[str, int]:
    """``{provider key: accounts using it}`` for ``keys`` (absent: none), in one query."""
    if not keys:
        return {}
    query = (
        sa.select(MailAccount.provider, sa.func.count())
        .where(MailAccount.provider.in_(keys))
        .group_by(MailAccount.provider)
    )
    return {k: n for k, n in state.session.execute(query)}


def claimed_domains(state: Runtime, domains: list[str], provider_id: int | None) -> dict[str, str]:
    """Domains already claimed by another provider (admin, declared or built in):
    domain -> the provider's name."""
    if not domains:
        return {}
    query = (
        sa.select(MailProviderDomain.domain, MailProvider.name)
        .join(MailProvider)
        .where(MailProviderDomain.domain.in_(domains))
    )
    if provider_id is not None:
        query = query.where(MailProvider.id != provider_id)
    found = {d: n for d, n in state.session.execute(query)}
    for known in build_catalog(current_app.config):  # declared and built in, no admin rows
        for domain in known.domains:
            if domain in domains and domain not in found:
                found[domain] = known.title
    return found


def _new_key(state: Runtime, name: str) -> str:
    base = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")[:40] or "p"
    base = "-".join(part for part in base.split("-") if part)
    # Every key and alias of the catalogue is taken (built in, declared, admin rows enabled or
    # not): an admin row must never shadow the older key accounts of a provider still carry.
    taken = {k for p in current_catalog() for k in (p.key, *p.aliases)} | set(
        state.session.scalars(sa.select(MailProvider.key).where(MailProvider.key.like(base + "%")))
    )
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    return key


# -- writing --------------------------------------------------------------------------------------


def save_provider(
    state: Runtime,
    provider: MailProvider | None,
    *,
    settings: Mapping[str, Any],
    domains: Sequence[str],
    client_secret: str | None = None,
    actor: Actor | None,
) -> MailProvider:
    """Create a provider (``provider=None``) or update ``provider`` from ``settings``.

    ``settings``: every name of :data:`PROVIDER_FIELDS` plus ``smtp_port`` and ``imap_port``
    (int or ``None``); ``domains``: the complete list, already normalised; ``client_secret``:
    a new secret, or ``None``/empty to keep the stored one. Audited as ``provider_create`` or
    ``provider_update`` (with the changed field names, never a value).

    Raises :class:`InvalidSettings` (on ``domains``) when a domain belongs to another provider,
    checked first, or when another admin claimed one meanwhile (a unique violation at the
    flush). The caller rolls the session back on that error: a failed flush leaves it unusable.
    """
    _require_admin(state, actor)
    session = state.session
    domains = list(domains)
    claimed = claimed_domains(state, domains, provider.id if provider else None)
    if claimed:
        taken = (
            gettext("%(domain)s is already claimed by %(provider)s.", domain=d, provider=name)
            for d, name in claimed.items()
        )
        raise InvalidSettings({"domains": " ".join(taken)})
    creating = provider is None
    if provider is None:
        provider = MailProvider(key=_new_key(state, settings["name"] or ""))
        session.add(provider)
    before = {} if creating else provider_settings(provider)
    for name in PROVIDER_FIELDS:
        value = settings[name]
        setattr(provider, name, ("" if value is None else value) if name not in BOOLS else value)
    provider.smtp_port = settings["smtp_port"]
    provider.imap_port = settings["imap_port"]
    secret_changed = bool(client_secret)
    if secret_changed:
        provider.client_secret = seal(client_secret)  # no key: EncryptionKeyError here
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
        message = gettext("A domain was claimed by another provider.")
        raise InvalidSettings({"domains": message}) from None
    if secret_changed:
        session.expire(provider, ["client_secret"])  # never kept in memory past the flush
    after = provider_settings(provider)
    changed = sorted(k for k in after if before.get(k) != after[k])
    if secret_changed:
        changed.append("client_secret")
    audit.record(
        session, "provider_create" if creating else "provider_update", actor=actor,
        detail=f"{provider.name}" + ("" if creating else f" ({', '.join(changed)})"),
    )  # fmt: skip
    forget_catalog()
    return provider


def toggle_provider(state: Runtime, provider: MailProvider, *, actor: Actor | None) -> bool:
    """Offer ``provider`` to users, or hide it from them; returns whether it is offered now.

    Audited as ``provider_enable`` or ``provider_disable``.
    """
    _require_admin(state, actor)
    provider.enabled = not provider.enabled
    action = "provider_enable" if provider.enabled else "provider_disable"
    audit.record(state.session, action, actor=actor, detail=provider.name)
    forget_catalog()
    return provider.enabled


def delete_provider(state: Runtime, provider: MailProvider, *, actor: Actor | None) -> bool:
    """Delete ``provider`` only if no account uses it, decided by the DELETE statement itself.

    The provider row is locked first (``FOR UPDATE``; SQLite locks the database on write), and
    the DELETE carries ``NOT EXISTS (account of this provider)``: an account created after the
    page counted them (or after the confirmation was shown) makes it delete nothing, so no
    account is ever left pointing at a deleted provider. Returns whether it was deleted
    (audited as ``provider_delete``); when not, the caller rolls back to release the lock.
    """
    _require_admin(state, actor)
    session = state.session
    key, ident, name = provider.key, provider.id, provider.name
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
    audit.record(session, "provider_delete", actor=actor, detail=name)
    forget_catalog()
    return True


__all__ = [
    "PROVIDER_ACTIONS",
    "PROVIDER_FIELDS",
    "provider_account_counts",
    "claimed_domains",
    "delete_provider",
    "provider_settings",
    "save_provider",
    "toggle_provider",
]
