"""Owners of accounts (scopes) and the one permission policy.

An owner is ``(kind, id)``: ``("user", "42")`` for a person's own account,
``("organization", "main")`` for the organisation's shared accounts, and host-declared kinds
registered with :meth:`MailConnect.register_scope`, such as ``("project", "7")``.

Actions (:data:`ACTIONS`):

- ``view``: see the account and its settings page;
- ``use``: send from it;
- ``read``: read its synced mail (the recent-mail list, Refresh): a personal account's owner
  only (an admin managing it for them does not read their mail); for organisation and host
  scopes, those who may manage;
- ``manage``: connect, test, edit, disconnect;
- ``admin``: administrator-only operations (deactivate, reactivate, the audit trail).

The default rules (:class:`Policy`, written out in ``docs/scopes.rst``):

============== ======================================== =========================================
scope          who                                      may
============== ======================================== =========================================
user           the owner                                view, use, read; manage when
                                                        ``MAILCONNECT_USERS_CAN_MANAGE_OWN``
user           an admin                                 view, manage, admin (never use, read)
organization   an admin                                 view, read, manage, admin; use if
                                                        permitted
organization   anyone ``organization_access`` permits   view, use
host scope     an admin                                 view, read, manage, admin; use if
                                                        ``can_use``
host scope     ``can_manage(user, obj)``                view, read, manage
host scope     ``can_use(user, obj)``                   view, use
anything else  an admin                                 view, read, manage, admin
============== ======================================== =========================================

``use`` is never granted by being an admin: an admin does not send as someone else, nor read
a person's mail (``read`` on a personal account is its owner's alone).
Everyone else gets nothing, and pages answer 404 so ids reveal nothing.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from flask import current_app, g, has_app_context, has_request_context

from .exceptions import UnknownOwner
from .models import AccountStatus
from .owners import (
    ACTIONS,
    ADMIN_ACTIONS,
    ORGANIZATION,
    ORGANIZATION_ID,
    USER,
    Actor,
    Owner,
    Scope,
)
from .runtime import Hooks, find_runtime


def _hooks() -> Hooks | None:
    found = find_runtime()
    return found.hooks if found is not None else None


def load_owner(owner: Owner) -> Any:
    """The host object behind a registered scope's owner (``None`` when it does not exist).

    Cached per request, so checking many actions on one owner loads it once.
    """
    hooks = _hooks()
    scope = hooks.scopes.get(owner[0]) if hooks is not None else None
    if scope is None:
        return None
    cache: dict[Owner, Any] | None = None
    if has_request_context():
        cache = g.setdefault("_mailconnect_owner_cache", {})
        if owner in cache:
            return cache[owner]
    obj = scope.load(owner[1])
    if cache is not None:
        cache[owner] = obj
    return obj


#: The longest owner id the tables hold (``owner_id`` is a 64-character column).
OWNER_ID_MAX = 64


def declared_kind(kind: str) -> bool:
    """``user``, ``organization``, or a kind the host registered with ``register_scope``."""
    if kind in (USER, ORGANIZATION):
        return True
    hooks = _hooks()
    return hooks is not None and kind in hooks.scopes


def owner_problem(owner: Owner) -> str | None:
    """Why no account may belong to ``owner``, or ``None``: an undeclared kind, or an id the
    tables cannot hold (empty, too long, control characters; PostgreSQL refuses NUL)."""
    kind, ident = owner
    if not isinstance(kind, str) or not declared_kind(kind):
        return f"no such owner kind: {kind!r} (declare it with register_scope)"
    if kind == ORGANIZATION and ident != ORGANIZATION_ID:
        return f"the organisation's owner id is {ORGANIZATION_ID!r}"
    if not isinstance(ident, str) or not 1 <= len(ident) <= OWNER_ID_MAX:
        return f"an owner id is 1 to {OWNER_ID_MAX} characters"
    if any(unicodedata.category(ch) == "Cc" for ch in ident):
        return "an owner id cannot contain control characters"
    return None


def valid_owner(owner: Owner) -> bool:
    return owner_problem(owner) is None


def check_owner(owner: Owner) -> Owner:
    """``owner`` when accounts may belong to it, else :class:`UnknownOwner`."""
    problem = owner_problem(owner)
    if problem is not None:
        raise UnknownOwner(owner, problem)
    return owner


def owner_exists(owner: Owner) -> bool:
    """Whether an account may be created for ``owner``: the organisation's one id, an object
    a registered scope can load, or any user id (the host's users are not ours to list)."""
    kind, ident = owner
    if kind == USER:
        return bool(ident)
    if kind == ORGANIZATION:
        return ident == ORGANIZATION_ID
    return load_owner(owner) is not None


_MISSING = object()


class Policy:
    """The permission rules. ``can(actor, action, owner)`` answers every question.

    Override the whole policy by subclassing and passing ``init_app(app, db=db,
    policy=MyPolicy())``, or one decision at a time with ``@mailconnect.permission_rule``
    (``(actor, action, owner) -> bool | None``; ``None`` falls through to these rules).
    """

    def can(self, actor: Actor | None, action: str, owner: Owner, *, obj: Any = _MISSING) -> bool:
        """May ``actor`` do ``action`` on accounts of ``owner``?

        ``obj``: the host object of a registered scope when the caller already has it (list
        pages pass it, so checking a thousand rows loads nothing).
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if actor is None:
            return False
        hooks = _hooks()
        decided = hooks.decide(actor, action, owner) if hooks is not None else None
        if decided is not None:
            return bool(decided)
        kind = owner[0]
        if kind == USER:
            return self.can_user(actor, action, owner)
        if kind == ORGANIZATION:
            return self.can_organization(actor, action, owner)
        scope = hooks.scopes.get(kind) if hooks is not None else None
        if scope is None:  # accounts of a kind nobody declared: admins may clean them up
            return actor.is_admin and action in ADMIN_ACTIONS
        if obj is _MISSING:
            obj = load_owner(owner)
        return self.can_scope(actor, action, scope, obj)

    def can_complete_handover(self, actor: Actor | None, account: Any) -> bool:
        """May ``actor`` give the OAuth consent that completes ``account``'s hand-over?

        Only the person the account belongs to, whatever ``MAILCONNECT_USERS_CAN_MANAGE_OWN``
        says, and never an admin on their behalf: a credential is never typed by someone else.
        ``account``: a :class:`~flask_mailconnect.MailAccount` awaiting authorization.
        """
        return (
            actor is not None
            and account.status == AccountStatus.PENDING_AUTHORIZATION
            and account.owner_kind == USER
            and str(account.owner_id) == actor.id
        )

    def users_manage_own(self) -> bool:
        if not has_app_context():
            return True
        return bool(current_app.config.get("MAILCONNECT_USERS_CAN_MANAGE_OWN", True))

    def can_user(self, actor: Actor, action: str, owner: Owner) -> bool:
        if owner[1] == actor.id:
            if action in ("view", "use", "read"):
                return True
            if action == "manage" and self.users_manage_own():
                return True
        return actor.is_admin and action in ("view", "manage", "admin")

    def can_organization(self, actor: Actor, action: str, owner: Owner) -> bool:
        if actor.is_admin and action in ADMIN_ACTIONS:
            return True
        if action in ("view", "use"):
            hooks = _hooks()
            return hooks.may_use_organization(actor.user) if hooks is not None else False
        return False

    def can_scope(self, actor: Actor, action: str, scope: Scope, obj: Any) -> bool:
        if actor.is_admin and action in ADMIN_ACTIONS:
            return True
        if obj is None:  # the project is gone: only admins see its accounts
            return False
        if action in ("manage", "read"):
            return bool(scope.can_manage(actor.user, obj))
        if action == "use":
            return bool(scope.can_use(actor.user, obj))
        if action == "view":
            return bool(scope.can_manage(actor.user, obj) or scope.can_use(actor.user, obj))
        return False
