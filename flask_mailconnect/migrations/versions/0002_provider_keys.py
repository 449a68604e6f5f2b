"""Stored provider keys become the built-in providers' current keys (their aliases go).

Revision ID: 0002_provider_keys
Revises: 0001_initial
Create Date: 2026-11-30

Accounts saved by early versions carry a built-in provider's older key (one of its
``aliases``, see ``providers/builtin/``); the catalogue still resolves them, but every other
place that keys on a provider (limits by provider, filters, keep-alive rules) had to know both.
This rewrites ``mailconnect_account.provider`` from each alias to its provider's key, except
where an admin-entered provider (``mailconnect_provider.key``) owns that alias: its accounts
stay its own. Admin-entered providers cannot take a built-in key or alias, so no other column
stores one. Downgrade writes the aliases back (the first alias of each provider), which every
version reads.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from flask_mailconnect.providers.builtin import builtin_providers

revision = "0002_provider_keys"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

account = sa.table("mailconnect_account", sa.column("provider", sa.String(64)))
provider = sa.table("mailconnect_provider", sa.column("key", sa.String(64)))


def _renames() -> list[tuple[str, str]]:
    """(old key, new key) for each built-in provider's aliases."""
    return [(alias, p.key) for p, _ in builtin_providers() for alias in p.aliases]


def _rewrite(old: str, new: str) -> None:
    """Accounts on ``old`` move to ``new``, unless an admin-entered provider has either key
    (its accounts are its own). Plain UPDATEs, no SELECT first."""
    admin_owned = sa.exists().where(provider.c.key.in_([old, new]))
    op.execute(account.update().where(account.c.provider == old, ~admin_owned).values(provider=new))


def upgrade() -> None:
    for old, new in _renames():
        _rewrite(old, new)


def downgrade() -> None:
    first_alias: dict[str, str] = {}
    for old, new in _renames():
        first_alias.setdefault(new, old)
    for new, old in first_alias.items():
        _rewrite(new, old)
