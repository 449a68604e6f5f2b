"""Who owns and who acts: owner keys, the acting person, host-declared scopes.

A leaf module (plain data, no Flask): every layer may use these types. The rules that decide
what an actor may do live in :mod:`flask_mailconnect.scopes` (:class:`~.scopes.Policy`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Owner = tuple[str, str]

USER = "user"
ORGANIZATION = "organization"
#: The organisation's owner id. One organisation per app; a multi-tenant host registers its
#: own scope (``"tenant"``) instead.
ORGANIZATION_ID = "main"
ORGANIZATION_OWNER: Owner = (ORGANIZATION, ORGANIZATION_ID)
ACTIONS = ("view", "use", "read", "manage", "admin")
#: What an admin may do on any account they manage (not ``use``; ``read`` not on personal ones).
ADMIN_ACTIONS = ("view", "read", "manage", "admin")
BUILTIN_KINDS = (USER, ORGANIZATION)


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


def _never(user: Any, obj: Any) -> bool:
    return False


def _default_ident(obj: Any) -> str:
    return str(obj.id)


@dataclass(frozen=True)
class Scope:
    """A host-declared owner kind (see :meth:`MailConnect.register_scope`)."""

    kind: str
    load: Callable[[str], Any]
    label: Callable[[Any], str] = str
    can_manage: Callable[[Any, Any], bool] = _never
    can_use: Callable[[Any, Any], bool] = _never
    list: Callable[[], Iterable[Any]] | None = None
    ident: Callable[[Any], str] = _default_ident
    title: str = ""
    title_plural: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.title or self.kind.replace("_", " ").capitalize()

    @property
    def name_plural(self) -> str:
        return self.title_plural or f"{self.name}s"
