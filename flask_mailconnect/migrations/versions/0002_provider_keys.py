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
stores one.

The aliases are written out here (:data:`RENAMES`), not read from ``providers/builtin/``: a
migration is a record of the past and must do the same thing whatever the catalogue says later.

Downgrade writes the alias back for every account on the key, including accounts stored under
the key before the upgrade (by versions after the keys changed): the oldest versions with the
0001 schema knew only the alias, and every later one reads the alias as well, so the alias is
the one value every version at 0001 understands.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_provider_keys"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

#: (alias, key) of the built-in providers when this revision was written; frozen.
RENAMES: tuple[tuple[str, str], ...] = (("gmail", "google"), ("microsoft365", "microsoft"))

account = sa.table("mailconnect_account", sa.column("provider", sa.String(64)))
provider = sa.table("mailconnect_provider", sa.column("key", sa.String(64)))


def _rewrite(old: str, new: str) -> None:
    """Accounts on ``old`` move to ``new``, unless an admin-entered provider has either key
    (its accounts are its own). Plain UPDATEs, no SELECT first."""
    admin_owned = sa.exists().where(provider.c.key.in_([old, new]))
    op.execute(account.update().where(account.c.provider == old, ~admin_owned).values(provider=new))


def upgrade() -> None:
    for old, new in RENAMES:
        _rewrite(old, new)


def downgrade() -> None:
    for old, new in RENAMES:
        _rewrite(new, old)
