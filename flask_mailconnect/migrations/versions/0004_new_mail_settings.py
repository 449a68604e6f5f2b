"""New-mail notification settings per account: on/off and "do not notify on my phone".

Revision ID: 0004_new_mail_settings
Revises: 0003_detection_cache
Create Date: 2026-11-30

Both default to on (``server_default``), so existing accounts keep working and their owners
start getting ``new_mail`` notifications; the health alerts (``notify_email``,
``notify_mobile``) are separate columns and unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_new_mail_settings"
down_revision = "0003_detection_cache"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "mailconnect_account",
        sa.Column("notify_new_mail", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        "mailconnect_account",
        sa.Column("notify_new_mail_mobile", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    # batch_alter_table: SQLite cannot drop a column in place on older versions.
    with op.batch_alter_table("mailconnect_account") as batch:
        batch.drop_column("notify_new_mail_mobile")
        batch.drop_column("notify_new_mail")
