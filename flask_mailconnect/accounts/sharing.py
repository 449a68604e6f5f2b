"""Accounts beyond the person: limits, sender resolution, scope-wide actions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app

from ..exceptions import (
    MailConnectError,
    NoSenderAccount,
    PermissionDenied,
)
from ..models import AccountStatus, MailAccount
from ..owners import ORGANIZATION, ORGANIZATION_OWNER, USER, Actor, Owner
from ..runtime import Runtime
from ..scopes import check_owner, load_owner
from .core import disconnect

# -- limits, sender resolution, scope-wide actions (issue 4) ---------------------------------


def accounts_by_owner(state: Runtime, owners: Iterable[Owner]) -> dict[Owner, list[MailAccount]]:
    """Accounts of many owners in one query (list pages: never a query per row).

    Each list is in ``accounts_for`` order: the default first. Raises :class:`UnknownOwner`
    for an owner kind nobody declared.
    """
    wanted = [check_owner(o) for o in dict.fromkeys(owners)]
    found: dict[Owner, list[MailAccount]] = {o: [] for o in wanted}
    by_kind: dict[str, list[str]] = {}
    for kind, ident in wanted:
        by_kind.setdefault(kind, []).append(ident)
    if not by_kind:
        return found
    condition = sa.or_(
        *(
            sa.and_(MailAccount.owner_kind == kind, MailAccount.owner_id.in_(ids))
            for kind, ids in by_kind.items()
        )
    )
    query = (
        sa.select(MailAccount)
        .where(condition)
        .order_by(MailAccount.is_default.desc(), MailAccount.id)
    )
    for account in state.session.scalars(query):
        found.setdefault(account.owner, []).append(account)
    return found


def _sender_steps(actor: Actor | None, owner: Owner | None) -> list[tuple[str, Owner]]:
    order = current_app.config.get("MAILCONNECT_SENDER_ORDER") or []
    steps: list[tuple[str, Owner]] = []
    for step in order:
        if step == "scope":
            if owner is not None:
                steps.append((step, owner))
        elif step == ORGANIZATION:
            steps.append((step, ORGANIZATION_OWNER))
        elif step == USER:
            if actor is not None:
                steps.append((step, actor.owner))
        else:
            raise ValueError(f"MAILCONNECT_SENDER_ORDER: unknown step {step!r}")
    unique: list[tuple[str, Owner]] = []
    for step, key in steps:  # the project given may be the organisation: look once
        if all(key != k for _, k in unique):
            unique.append((step, key))
    return unique


def owner_label(state: Runtime, owner: Owner, *, actor: Actor | None = None) -> str:
    """How pages and messages name an owner: "project Apollo", "the organisation"."""
    kind, ident = owner
    if kind == ORGANIZATION:
        return "the organisation"
    if kind == USER:
        if actor is not None and ident == actor.id:
            return f"your own ({actor.label})"
        return f"user {ident}"
    scope = state.hooks.scopes.get(kind)
    obj = load_owner(owner) if scope is not None else None
    if scope is None or obj is None:
        return f"{kind} {ident}"
    return f"{scope.name.lower()} {scope.label(obj)}"


def _why_not(state: Runtime, actor: Actor | None, account: MailAccount) -> str | None:
    if not account.active:
        return f"{account.email} is inactive"
    if account.status != AccountStatus.CONNECTED:
        return f"{account.email} is not connected ({account.status_label.lower()})"
    if actor is not None and not state.policy.can(actor, "use", account.owner):
        return f"{account.email}: {actor.label} may not send from it"
    return None


def resolve_sender(state: Runtime, *, actor: Actor | None, owner: Owner | None) -> MailAccount:
    """The account to send from, following ``MAILCONNECT_SENDER_ORDER``.

    Per step, the owner's accounts are tried default first; an account is skipped when it is
    inactive, not connected, or ``actor`` may not ``use`` it. One query for all steps.
    :class:`UnknownOwner` for an ``owner`` of a kind nobody declared.
    """
    if owner is not None:
        check_owner(owner)
    steps = _sender_steps(actor, owner)
    found = accounts_by_owner(state, [o for _, o in steps])
    tried: list[str] = []
    for _step, key in steps:
        candidates = found.get(key, [])
        where = owner_label(state, key, actor=actor)
        if not candidates:
            tried.append(f"{where}: no account")
            continue
        reasons = []
        for account in candidates:
            why = _why_not(state, actor, account)
            if why is None:
                return account
            reasons.append(why)
        tried.append(f"{where}: " + ", ".join(reasons))
    raise NoSenderAccount(tried)


@dataclass(frozen=True)
class OwnerResult:
    """What "Disconnect all" did for one owner."""

    owner: Owner
    label: str
    outcome: str  # "disconnected" | "nothing" | "failed"
    emails: tuple[str, ...] = ()
    reason: str = ""


def scope_owners(state: Runtime, kind: str) -> list[tuple[Owner, Any, str]]:
    """``(owner, host object, label)`` for every owner a scope's page lists.

    The organisation has one owner; a registered scope lists what its ``list()`` returns.
    """
    if kind == ORGANIZATION:
        return [(ORGANIZATION_OWNER, None, "Organization")]
    scope = state.hooks.scopes.get(kind)
    if scope is None or scope.list is None:
        raise LookupError(f"no listable scope {kind!r}")
    return [((kind, scope.ident(obj)), obj, scope.label(obj)) for obj in scope.list()]


def disconnect_all(state: Runtime, kind: str, *, actor: Actor | None) -> list[OwnerResult]:
    """Disconnect every account of every owner of ``kind`` that ``actor`` may manage.

    Owners the actor may not manage are left out of the result. Each owner runs in a
    savepoint, so one failure is reported and the others still happen. Does not commit.
    """
    if kind == USER:
        raise ValueError("disconnect_all is for shared scopes, not personal accounts")
    owners = [
        (owner, label)
        for owner, obj, label in scope_owners(state, kind)
        if actor is None or state.policy.can(actor, "manage", owner, obj=obj)
    ]
    if actor is not None and not owners:
        raise PermissionDenied(f"{actor.label} may not manage any {kind} accounts")
    found = accounts_by_owner(state, [o for o, _ in owners])
    results = []
    for owner, label in owners:
        mine = found.get(owner, [])
        if not mine:
            results.append(OwnerResult(owner, label, "nothing"))
            continue
        emails = tuple(a.email for a in mine)
        try:
            with state.session.begin_nested():
                for account in mine:
                    disconnect(state, account, actor=actor)
        except (MailConnectError, sa.exc.SQLAlchemyError) as exc:
            results.append(
                OwnerResult(owner, label, "failed", emails, str(exc) or type(exc).__name__)
            )
        else:
            results.append(OwnerResult(owner, label, "disconnected", emails))
    return results
