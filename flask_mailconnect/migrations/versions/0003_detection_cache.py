"""Server detection's answers, cached per domain and shared by every worker.

Revision ID: 0003_detection_cache
Revises: 0002_provider_keys
Create Date: 2026-11-30

``mailconnect_detect_cache``: one row per email domain with the JSON answer of server
detection (servers, login template, which source answered and the attempts made; never a
secret) and when it expires (a day for an answer, an hour for "nothing found": see
``MAILCONNECT_DETECT_CACHE``). Rows are only a cache: downgrade drops the table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_detection_cache"
down_revision = "0002_provider_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailconnect_detect_cache",
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("domain", name=op.f("pk_mailconnect_detect_cache")),
    )
    op.create_index(
        op.f("ix_mailconnect_detect_cache_expires_at"),
        "mailconnect_detect_cache",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_mailconnect_detect_cache_expires_at"), table_name="mailconnect_detect_cache"
    )
    op.drop_table("mailconnect_detect_cache")
