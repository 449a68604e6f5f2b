"""Owners of accounts and who may do what with them.

An owner is ``(kind, id)``: ``("user", "42")`` for a person's own account. Actions:

- ``view``: see the account and its settings page;
- ``use``: send from it;
- ``manage``: connect, test, edit, disconnect.

Default rules for personal accounts: the owner may do everything; an admin (see
``@mailconnect.admin_checker``) may view and manage them on the user's behalf but not send as
them. Anyone else: nothing, and pages answer 404 so account ids reveal nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Owner = tuple[str, str]

USER = "user"
ACTIONS = ("view", "use", "manage")


def owner_key(owner: Owner | tuple[str, Any]) -> Owner:
    """Normalise ``("user", 42)`` to ``("user", "42")``; ids are stored as strings."""
    kind, ident = owner
    if not kind or ident is None or str(ident) == "":
        raise ValueError(f"not an owner: {owner!r}")
    return (str(kind), str(ident))


@dataclass(frozen=True)
class Actor:
    """The person acting, as the extension sees them (built from the host's user object)."""

    user: Any
    id: str
    label: str
    is_admin: bool

    @property
    def owner(self) -> Owner:
        return (USER, self.id)


class Policy:
    """Permission rules. Subclass and pass ``policy=`` to ``init_app`` to change them."""

    def can(self, actor: Actor | None, action: str, owner: Owner) -> bool:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if actor is None:
            return False
        kind, ident = owner
        if kind == USER:
            if ident == actor.id:
                return True
            return actor.is_admin and action in ("view", "manage")
        return False
