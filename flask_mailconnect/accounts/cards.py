"""The settings page's cards: an owner's accounts, read as plain rows.

A card shows about a third of an account's columns (:data:`CARD_COLUMNS`). They are read with
one Core statement, not as ORM instances: building, tracking and identity-mapping an instance
per card cost about as much as everything else the query does (issue 13). An
:class:`AccountCard` reads like the :class:`~flask_mailconnect.MailAccount` it stands for, so
a host's own card template keeps working: ``owner``, ``receives`` and ``status_label`` are the
model's own computations, and any other attribute loads the account (one query, on first use).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..models import MailAccount
from ..owners import Owner
from ..runtime import Runtime
from ..scopes import check_owner
from .core import owned_query

#: What ``mailconnect/_account_card.html`` and the hand-over check read.
CARD_COLUMNS = (
    "id", "owner_kind", "owner_id", "provider", "auth_method", "email", "display_name",
    "is_default", "imap_host",  # ``receives``
    "status", "active", "last_success_at",
)  # fmt: skip


class AccountCard:
    """One account as its card shows it (see the module doc). Not an ORM instance: changing
    an attribute changes nothing stored."""

    __slots__ = (*CARD_COLUMNS, "_session", "_full")

    id: int
    owner_kind: str
    owner_id: str
    provider: str
    auth_method: str
    email: str
    display_name: str | None
    is_default: bool
    imap_host: str | None
    status: str
    active: bool
    last_success_at: datetime | None

    # The model's own properties (the same objects), computed over the columns above.
    owner = vars(MailAccount)["owner"]
    receives = vars(MailAccount)["receives"]
    status_label = vars(MailAccount)["status_label"]

    def __init__(self, session: Any, row: Any) -> None:
        for name, value in zip(CARD_COLUMNS, row, strict=True):
            setattr(self, name, value)
        self._session = session
        self._full: MailAccount | None = None

    def __getattr__(self, name: str) -> Any:
        # Only for what the row does not hold: the account itself, loaded once.
        if name.startswith("_"):
            raise AttributeError(name)
        if self._full is None:
            self._full = self._session.get(MailAccount, self.id)
            if self._full is None:  # deleted since the page's query
                raise AttributeError(name)
        return getattr(self._full, name)

    def __repr__(self) -> str:
        return f"<AccountCard {self.id} {self.email}>"


@functools.cache
def _cards_query() -> sa.Select[Any]:
    """:func:`.core.owned_query` (the same owner, the same order) reading the card's columns."""
    table = MailAccount.__table__
    return owned_query().with_only_columns(*(table.c[name] for name in CARD_COLUMNS))


def account_cards(state: Runtime, owner: Owner) -> list[AccountCard]:
    """:func:`~flask_mailconnect.accounts.accounts_for` for the settings page's cards: the same
    accounts in the same order, as :class:`AccountCard` rows. Run by the session (autoflush,
    the host's ORM events), on the model's bind: a select of table columns names no mapper,
    and Flask-SQLAlchemy would send it to the default database."""
    kind, ident = check_owner(owner)
    session = state.session
    params = {"owner_kind": kind, "owner_id": ident}
    rows = session.execute(_cards_query(), params, bind_arguments={"mapper": MailAccount})
    return [AccountCard(session, row) for row in rows]
