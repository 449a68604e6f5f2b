"""Alembic's entry point for our chain: our metadata, our version table, the app's engine.

Run through :mod:`flask_mailconnect.migrations` (``flask mailconnect db ...``), which hands
over an open connection in ``config.attributes["connection"]``; nothing here reads an ini file
or the host's Alembic set-up.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context

from flask_mailconnect.migrations import VERSION_TABLE, only_ours
from flask_mailconnect.models import metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render our column types as what they store (``sa.Text()`` for an encrypted column,
    ``sa.DateTime()`` for a UTC one): a revision must never need our Python types."""
    if type_ == "type" and isinstance(obj, sa.types.TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "Run our migrations with `flask mailconnect db upgrade` or "
            "flask_mailconnect.migrations.upgrade(app), not with the alembic command."
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_object=only_ours,
        render_item=render_item,
        compare_type=True,
        render_as_batch=True,  # SQLite changes columns by copying the table
    )
    with context.begin_transaction():
        context.run_migrations()


run()
