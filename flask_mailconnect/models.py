"""The extension's tables (``mailconnect_*``) on its own MetaData.

Used through the host's ``db.session``. Owners are stored as ``(owner_kind, owner_id)`` strings so
any host primary key works, with no foreign key into host tables. Models hold data and derived
read-only properties only: nothing here talks to the network.

Add :data:`metadata` to Alembic / Flask-Migrate with ``target_metadata = [db.metadata, metadata]``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .crypto import EncryptedText

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (MariaDB and SQLite keep no zone)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    metadata = metadata


class AccountStatus:
    """Values of :attr:`MailAccount.status`."""

    CONNECTED = "connected"
    ERROR = "error"  #: the last check failed; may recover by itself (see last_error_code)
    NEEDS_RECONNECT = "needs_reconnect"  #: credentials rejected: the owner must act

    LABELS = {CONNECTED: "Connected", ERROR: "Error", NEEDS_RECONNECT: "Needs reconnect"}


class MailAccount(Base):
    __tablename__ = "mailconnect_account"
    __table_args__ = (
        # One row per address and owner; also the owner index for listing.
        sa.UniqueConstraint("owner_kind", "owner_id", "email", name="uq_mailconnect_account_owner"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_kind: Mapped[str] = mapped_column(sa.String(32))
    owner_id: Mapped[str] = mapped_column(sa.String(64))

    provider: Mapped[str] = mapped_column(sa.String(64), default="other")
    auth_method: Mapped[str] = mapped_column(sa.String(16), default="password")
    email: Mapped[str] = mapped_column(sa.String(320), index=True)
    username: Mapped[str] = mapped_column(sa.String(320))
    # Deferred with raiseload: listing accounts never decrypts (a lost key cannot break pages),
    # and an account handed to a signal receiver or template cannot leak it by attribute access.
    # Code that needs it calls accounts.load_password().
    password: Mapped[str | None] = mapped_column(
        EncryptedText, default=None, deferred=True, deferred_raiseload=True
    )

    smtp_host: Mapped[str] = mapped_column(sa.String(253))
    smtp_port: Mapped[int] = mapped_column(sa.Integer)
    smtp_security: Mapped[str] = mapped_column(sa.String(16))
    imap_host: Mapped[str | None] = mapped_column(sa.String(253), default=None)
    imap_port: Mapped[int | None] = mapped_column(sa.Integer, default=None)
    imap_security: Mapped[str | None] = mapped_column(sa.String(16), default=None)

    display_name: Mapped[str] = mapped_column(sa.String(200), default="")
    signature_html: Mapped[str] = mapped_column(sa.Text, default="")
    signature_text: Mapped[str] = mapped_column(sa.Text, default="")
    notify_email: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    notify_mobile: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    # OAuth 2.0 accounts (auth_method "oauth2"): tokens encrypted and deferred like the password.
    # Read them with accounts.load_tokens / refresh them with tokens.py under a row lock.
    access_token: Mapped[str | None] = mapped_column(
        EncryptedText, default=None, deferred=True, deferred_raiseload=True
    )
    refresh_token: Mapped[str | None] = mapped_column(
        EncryptedText, default=None, deferred=True, deferred_raiseload=True
    )
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    token_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    token_scopes: Mapped[str] = mapped_column(sa.Text, default="")  # space-separated, as granted
    # How mail leaves: "smtp", or "graph" (Microsoft Graph sendMail, for tenants without SMTP AUTH)
    send_via: Mapped[str] = mapped_column(sa.String(16), default="smtp")

    # "Active: no" keeps the account but stops its use for sending (admin pages).
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    status: Mapped[str] = mapped_column(sa.String(32), default=AccountStatus.CONNECTED)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_error_code: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    last_error_message: Mapped[str | None] = mapped_column(sa.Text, default=None)

    connected_by: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    messages: Mapped[list[SyncedMessage]] = relationship(
        back_populates="account", passive_deletes=True
    )

    @property
    def owner(self) -> tuple[str, str]:
        return (self.owner_kind, self.owner_id)

    @property
    def receives(self) -> bool:
        return bool(self.imap_host)

    @property
    def status_label(self) -> str:
        return AccountStatus.LABELS.get(self.status, self.status.replace("_", " ").capitalize())

    def __repr__(self) -> str:  # never includes secrets
        return f"<MailAccount {self.id} {self.email!r} {self.owner_kind}:{self.owner_id}>"


class SyncedMessage(Base):
    """Headers of a recent INBOX message, kept so the host can show "recent mail"."""

    __tablename__ = "mailconnect_synced_message"
    __table_args__ = (sa.UniqueConstraint("account_id", "uid", name="uq_mailconnect_message_uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("mailconnect_account.id", ondelete="SET NULL"), index=True
    )
    uid: Mapped[int] = mapped_column(sa.BigInteger)
    message_id: Mapped[str] = mapped_column(sa.String(998), default="")
    sender: Mapped[str] = mapped_column(sa.String(998), default="")
    subject: Mapped[str] = mapped_column(sa.Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    snippet: Mapped[str] = mapped_column(sa.Text, default="")
    flags: Mapped[str] = mapped_column(sa.String(255), default="")
    pinned: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    account: Mapped[MailAccount | None] = relationship(back_populates="messages")


class AuditEvent(Base):
    """Who did what to which account, when, from where and how it ended. Never a secret."""

    __tablename__ = "mailconnect_audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(sa.String(32), index=True)
    outcome: Mapped[str] = mapped_column(sa.String(16))  # "ok" | "failed"
    actor_id: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    actor_label: Mapped[str] = mapped_column(sa.String(200), default="")
    # No foreign key: the trail outlives disconnected (deleted) accounts.
    account_id: Mapped[int | None] = mapped_column(sa.Integer, default=None, index=True)
    account_email: Mapped[str] = mapped_column(sa.String(320), default="")
    owner_kind: Mapped[str | None] = mapped_column(sa.String(32), default=None)
    owner_id: Mapped[str | None] = mapped_column(sa.String(64), default=None)
    detail: Mapped[str] = mapped_column(sa.Text, default="")
    remote_addr: Mapped[str | None] = mapped_column(sa.String(45), default=None)


#: Models whose columns are encrypted, with those columns (used by ``rotate-key``).
ENCRYPTED_COLUMNS: dict[type[Base], tuple[str, ...]] = {
    MailAccount: ("password", "access_token", "refresh_token"),
}
