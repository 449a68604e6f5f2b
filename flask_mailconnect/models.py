"""The extension's tables (``mailconnect_*``) on its own MetaData.

Used through the host's ``db.session``. Owners are stored as ``(owner_kind, owner_id)`` strings so
any host primary key works, with no foreign key into host tables. Models hold data and derived
read-only properties only: nothing here talks to the network.

The tables are created and changed by our own migrations (:mod:`flask_mailconnect.migrations`,
``flask mailconnect db upgrade``), never by the host's autogenerate.

No ``from __future__ import annotations`` here: declarative reads every ``Mapped[...]``
annotation at class creation, and real objects spare it evaluating 113 annotation strings
(about 15% of this module's import; issue 13). Forward references are quoted instead.
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .columns import EncryptedText, Sealed, UTCDateTime

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


class Base(DeclarativeBase):
    metadata = metadata


class AccountStatus:
    """Values of :attr:`MailAccount.status`."""

    CONNECTED = "connected"
    ERROR = "error"  #: the last check failed; may recover by itself (see last_error_code)
    NEEDS_RECONNECT = "needs_reconnect"  #: credentials rejected: the owner must act
    #: Created by an admin (hand-over) with no credentials: the owner completes the OAuth consent.
    PENDING_AUTHORIZATION = "pending_authorization"

    LABELS = {
        CONNECTED: "Connected",
        ERROR: "Error",
        NEEDS_RECONNECT: "Needs reconnect",
        PENDING_AUTHORIZATION: "Awaiting authorization",
    }


class MailAccount(Base):
    __tablename__ = "mailconnect_account"
    __table_args__ = (
        # One row per address and owner; also the owner index for listing.
        sa.UniqueConstraint("owner_kind", "owner_id", "email", name="uq_mailconnect_account_owner"),
        # Admin account list: newest first (keyset on id) within each filter.
        sa.Index("ix_mailconnect_account_status_id", "status", "id"),
        sa.Index("ix_mailconnect_account_provider_id", "provider", "id"),
        sa.Index("ix_mailconnect_account_kind_id", "owner_kind", "id"),
        # One account per provider identity (OAuth): "connected elsewhere" stays race-safe.
        # NULLs (password and hand-over accounts) never collide on SQLite, PostgreSQL, MariaDB.
        sa.UniqueConstraint("provider", "oauth_subject", name="uq_mailconnect_account_subject"),
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
    # Code that needs it calls credentials.stored_password() or selects it with
    # credentials.with_password() (the health check reads a batch that way).
    password: Mapped[str | Sealed | None] = mapped_column(
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
    # New-mail notifications (the new_mail signal carries them), apart from the health alerts
    # above: on/off, and "do not notify on my phone" (stored as its opposite).
    notify_new_mail: Mapped[bool] = mapped_column(
        sa.Boolean, default=True, server_default=sa.true()
    )
    notify_new_mail_mobile: Mapped[bool] = mapped_column(
        sa.Boolean, default=True, server_default=sa.true()
    )
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)

    # OAuth 2.0 accounts (auth_method "oauth2"): tokens encrypted and deferred like the password.
    # Read and refresh them with oauth/refresh.py, under a row lock.
    access_token: Mapped[str | Sealed | None] = mapped_column(
        EncryptedText, default=None, deferred=True, deferred_raiseload=True
    )
    refresh_token: Mapped[str | Sealed | None] = mapped_column(
        EncryptedText, default=None, deferred=True, deferred_raiseload=True
    )
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    token_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    token_scopes: Mapped[str] = mapped_column(sa.Text, default="")  # space-separated, as granted
    # Microsoft issues one access token per resource: the Graph (Mail.Send) token is obtained
    # with the same refresh token and kept apart from the SMTP/IMAP one (oauth/refresh.py).
    graph_access_token: Mapped[str | Sealed | None] = mapped_column(
        EncryptedText, default=None, deferred=True, deferred_raiseload=True
    )
    graph_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The provider's stable identity of the signed-in person, bound at first consent: reconnects
    # must come back with the same one (an address claim alone is not an identity).
    oauth_issuer: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    oauth_subject: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    # How mail leaves: "smtp", or "graph" (Microsoft Graph sendMail, for tenants without SMTP AUTH)
    send_via: Mapped[str] = mapped_column(sa.String(16), default="smtp")

    # Folder mapping (IMAP names), suggested from SPECIAL-USE attributes; None: not mapped yet.
    folder_inbox: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    folder_sent: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    folder_archive: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    folder_trash: Mapped[str | None] = mapped_column(sa.String(255), default=None)
    # Incremental sync of INBOX: resync from scratch when UIDVALIDITY changes.
    sync_uidvalidity: Mapped[int | None] = mapped_column(sa.BigInteger, default=None)
    sync_uidnext: Mapped[int | None] = mapped_column(sa.BigInteger, default=None)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

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

    messages: Mapped[list["SyncedMessage"]] = relationship(
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


class SendClaim(Base):
    """A queued send's claim on (account, Message-ID), committed before any SMTP command.

    A job system may deliver one job twice (a worker killed mid-job, late acks): the second
    run finds the claim and does not send again. ``state``: ``sending``, ``sent``, ``unknown``
    (the server may have accepted it) or ``failed`` (refused for good).
    """

    __tablename__ = "mailconnect_send_claim"
    __table_args__ = (
        sa.UniqueConstraint("account_id", "message_id", name="uq_mailconnect_send_claim"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        sa.ForeignKey("mailconnect_account.id", ondelete="CASCADE")
    )
    message_id: Mapped[str] = mapped_column(sa.String(255))
    state: Mapped[str] = mapped_column(sa.String(16), default="sending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


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

    account: Mapped["MailAccount | None"] = relationship(back_populates="messages")


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


class OAuthState(Base):
    """Authlib's half of a consent in progress (PKCE verifier, nonce, redirect URI), kept here
    so that only the state id reaches the session cookie; taken once (oauth/state.py)."""

    __tablename__ = "mailconnect_oauth_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    value: Mapped[str | Sealed] = mapped_column(
        EncryptedText, deferred=True, deferred_raiseload=True
    )
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


#: Models whose columns are encrypted, with those columns (used by ``rotate-key``).
ENCRYPTED_COLUMNS: dict[type[Base], tuple[str, ...]] = {
    MailAccount: ("password", "access_token", "refresh_token", "graph_access_token"),
}


class MailProvider(Base):
    """A provider entered by an admin (admin pages): servers, login format, auth, domains.

    Its ``key`` is what :attr:`MailAccount.provider` stores; it never changes once created. The
    OAuth client secret is encrypted and deferred with raiseload like account secrets: pages
    show only whether it is set (:attr:`has_client_secret`).
    """

    __tablename__ = "mailconnect_provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    #: "imap_smtp", or "graph" (IMAP to receive, Microsoft Graph to send)
    service_type: Mapped[str] = mapped_column(sa.String(16), default="imap_smtp")
    smtp_host: Mapped[str] = mapped_column(sa.String(253), default="")
    smtp_port: Mapped[int | None] = mapped_column(sa.Integer, default=None)
    smtp_security: Mapped[str] = mapped_column(sa.String(16), default="starttls")
    imap_host: Mapped[str] = mapped_column(sa.String(253), default="")
    imap_port: Mapped[int | None] = mapped_column(sa.Integer, default=None)
    imap_security: Mapped[str] = mapped_column(sa.String(16), default="ssl")
    #: "email" (full address), "local_part" (before "@") or "manual" (entered by hand)
    login_format: Mapped[str] = mapped_column(sa.String(16), default="email")
    #: "password" or "oauth2"
    auth_method: Mapped[str] = mapped_column(sa.String(16), default="password")
    client_id: Mapped[str] = mapped_column(sa.String(255), default="")
    client_secret: Mapped[str | Sealed | None] = mapped_column(
        EncryptedText, default=None, deferred=True, deferred_raiseload=True
    )
    #: Whether a client secret is stored (kept beside it so listing never decrypts).
    has_client_secret: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    authorize_url: Mapped[str] = mapped_column(sa.String(2000), default="")
    token_url: Mapped[str] = mapped_column(sa.String(2000), default="")
    revoke_url: Mapped[str] = mapped_column(sa.String(2000), default="")
    #: OpenID Connect userinfo endpoint (with explicit URLs: where the flow learns the address)
    userinfo_url: Mapped[str] = mapped_column(sa.String(2000), default="", server_default="")
    server_metadata_url: Mapped[str] = mapped_column(sa.String(2000), default="")
    scopes: Mapped[str] = mapped_column(sa.Text, default="")  #: extra scopes, space-separated
    receives: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    sends: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    domains: Mapped[list["MailProviderDomain"]] = relationship(
        back_populates="provider",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="MailProviderDomain.domain",
        lazy="selectin",
    )

    @property
    def domain_names(self) -> list[str]:
        return [d.domain for d in self.domains]

    def __repr__(self) -> str:  # never includes the client secret
        return f"<MailProvider {self.key!r} {self.name!r}>"


class MailProviderDomain(Base):
    """An email domain that picks its provider; unique, so one domain has one provider."""

    __tablename__ = "mailconnect_provider_domain"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        sa.ForeignKey("mailconnect_provider.id", ondelete="CASCADE"), index=True
    )
    domain: Mapped[str] = mapped_column(sa.String(253), unique=True)

    provider: Mapped[MailProvider] = relationship(back_populates="domains")


class DetectCache(Base):
    """Server detection's answer for a domain (JSON; never a secret), shared by every worker
    until ``expires_at`` (``detection/cache.py``)."""

    __tablename__ = "mailconnect_detect_cache"

    domain: Mapped[str] = mapped_column(sa.String(253), primary_key=True)
    answer: Mapped[str] = mapped_column(sa.Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


ENCRYPTED_COLUMNS[MailProvider] = ("client_secret",)
ENCRYPTED_COLUMNS[OAuthState] = ("value",)
