"""The schema of Flask-MailConnect 0.1: every ``mailconnect_*`` table.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-30

Column types are the stored representation, never our Python types, so this file needs nothing
of the package: an encrypted column is stored as ``TEXT`` (a Fernet token), a UTC one as a
naive ``DATETIME`` holding UTC.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailconnect_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_kind", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("auth_method", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("smtp_host", sa.String(length=253), nullable=False),
        sa.Column("smtp_port", sa.Integer(), nullable=False),
        sa.Column("smtp_security", sa.String(length=16), nullable=False),
        sa.Column("imap_host", sa.String(length=253), nullable=True),
        sa.Column("imap_port", sa.Integer(), nullable=True),
        sa.Column("imap_security", sa.String(length=16), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("signature_html", sa.Text(), nullable=False),
        sa.Column("signature_text", sa.Text(), nullable=False),
        sa.Column("notify_email", sa.Boolean(), nullable=False),
        sa.Column("notify_mobile", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(), nullable=True),
        sa.Column("token_refreshed_at", sa.DateTime(), nullable=True),
        sa.Column("token_scopes", sa.Text(), nullable=False),
        sa.Column("graph_access_token", sa.Text(), nullable=True),
        sa.Column("graph_token_expires_at", sa.DateTime(), nullable=True),
        sa.Column("oauth_issuer", sa.String(length=255), nullable=True),
        sa.Column("oauth_subject", sa.String(length=255), nullable=True),
        sa.Column("send_via", sa.String(length=16), nullable=False),
        sa.Column("folder_inbox", sa.String(length=255), nullable=True),
        sa.Column("folder_sent", sa.String(length=255), nullable=True),
        sa.Column("folder_archive", sa.String(length=255), nullable=True),
        sa.Column("folder_trash", sa.String(length=255), nullable=True),
        sa.Column("sync_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("sync_uidnext", sa.BigInteger(), nullable=True),
        sa.Column("last_synced_at", sa.DateTime(), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_error_message", sa.Text(), nullable=True),
        sa.Column("connected_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailconnect_account")),
        sa.UniqueConstraint("owner_kind", "owner_id", "email", name="uq_mailconnect_account_owner"),
        sa.UniqueConstraint("provider", "oauth_subject", name="uq_mailconnect_account_subject"),
    )
    op.create_index(
        op.f("ix_mailconnect_account_email"), "mailconnect_account", ["email"], unique=False
    )
    op.create_index(
        "ix_mailconnect_account_kind_id", "mailconnect_account", ["owner_kind", "id"], unique=False
    )
    op.create_index(
        "ix_mailconnect_account_provider_id",
        "mailconnect_account",
        ["provider", "id"],
        unique=False,
    )
    op.create_index(
        "ix_mailconnect_account_status_id", "mailconnect_account", ["status", "id"], unique=False
    )
    op.create_table(
        "mailconnect_audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column("actor_label", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("account_email", sa.String(length=320), nullable=False),
        sa.Column("owner_kind", sa.String(length=32), nullable=True),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("remote_addr", sa.String(length=45), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailconnect_audit_event")),
    )
    op.create_index(
        op.f("ix_mailconnect_audit_event_account_id"),
        "mailconnect_audit_event",
        ["account_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_mailconnect_audit_event_action"),
        "mailconnect_audit_event",
        ["action"],
        unique=False,
    )
    op.create_index(
        op.f("ix_mailconnect_audit_event_created_at"),
        "mailconnect_audit_event",
        ["created_at"],
        unique=False,
    )
    op.create_table(
        "mailconnect_oauth_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailconnect_oauth_state")),
        sa.UniqueConstraint("key", name=op.f("uq_mailconnect_oauth_state_key")),
    )
    op.create_index(
        op.f("ix_mailconnect_oauth_state_expires_at"),
        "mailconnect_oauth_state",
        ["expires_at"],
        unique=False,
    )
    op.create_table(
        "mailconnect_provider",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("service_type", sa.String(length=16), nullable=False),
        sa.Column("smtp_host", sa.String(length=253), nullable=False),
        sa.Column("smtp_port", sa.Integer(), nullable=True),
        sa.Column("smtp_security", sa.String(length=16), nullable=False),
        sa.Column("imap_host", sa.String(length=253), nullable=False),
        sa.Column("imap_port", sa.Integer(), nullable=True),
        sa.Column("imap_security", sa.String(length=16), nullable=False),
        sa.Column("login_format", sa.String(length=16), nullable=False),
        sa.Column("auth_method", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("client_secret", sa.Text(), nullable=True),
        sa.Column("has_client_secret", sa.Boolean(), nullable=False),
        sa.Column("authorize_url", sa.String(length=2000), nullable=False),
        sa.Column("token_url", sa.String(length=2000), nullable=False),
        sa.Column("revoke_url", sa.String(length=2000), nullable=False),
        sa.Column("userinfo_url", sa.String(length=2000), server_default="", nullable=False),
        sa.Column("server_metadata_url", sa.String(length=2000), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("receives", sa.Boolean(), nullable=False),
        sa.Column("sends", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailconnect_provider")),
        sa.UniqueConstraint("key", name=op.f("uq_mailconnect_provider_key")),
    )
    op.create_table(
        "mailconnect_provider_domain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["mailconnect_provider.id"],
            name=op.f("fk_mailconnect_provider_domain_provider_id_mailconnect_provider"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailconnect_provider_domain")),
        sa.UniqueConstraint("domain", name=op.f("uq_mailconnect_provider_domain_domain")),
    )
    op.create_index(
        op.f("ix_mailconnect_provider_domain_provider_id"),
        "mailconnect_provider_domain",
        ["provider_id"],
        unique=False,
    )
    op.create_table(
        "mailconnect_send_claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["mailconnect_account.id"],
            name=op.f("fk_mailconnect_send_claim_account_id_mailconnect_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailconnect_send_claim")),
        sa.UniqueConstraint("account_id", "message_id", name="uq_mailconnect_send_claim"),
    )
    op.create_table(
        "mailconnect_synced_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("sender", sa.String(length=998), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("snippet", sa.Text(), nullable=False),
        sa.Column("flags", sa.String(length=255), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["mailconnect_account.id"],
            name=op.f("fk_mailconnect_synced_message_account_id_mailconnect_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailconnect_synced_message")),
        sa.UniqueConstraint("account_id", "uid", name="uq_mailconnect_message_uid"),
    )
    op.create_index(
        op.f("ix_mailconnect_synced_message_account_id"),
        "mailconnect_synced_message",
        ["account_id"],
        unique=False,
    )


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop an index a foreign key uses).
    for table in (
        "mailconnect_synced_message",
        "mailconnect_send_claim",
        "mailconnect_provider_domain",
        "mailconnect_provider",
        "mailconnect_oauth_state",
        "mailconnect_audit_event",
        "mailconnect_account",
    ):
        op.drop_table(table)
