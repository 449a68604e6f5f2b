"""The :class:`MailConnect` extension: set-up, host callbacks and the public methods."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from .account_events import AccountEvents
from .cli import cli_group
from .config import apply_defaults
from .crypto import check_keys
from .detection import Detection
from .exceptions import EncryptionKeyError, NoSenderAccount
from .host_callbacks import HostCallbacks
from .i18n import current_locale, markup_gettext, markup_ngettext
from .models import MailAccount, SyncedMessage, metadata
from .owners import ORGANIZATION_OWNER, Actor, Owner, Scope, owner_key
from .providers import Provider, current_catalog, with_hints
from .providers import check_config as check_providers
from .providers.detect import check_config as check_detection
from .runtime import Hooks, Runtime, current_runtime
from .scopes import Policy
from .transport.settings import ConnectionReport, ServerSettings
from .views import create_blueprint

# The use-cases (accounts, sync, health, sending, migrations, the connection tester) are
# imported by the method using them, not at start-up: a host's app factory and every worker
# and CLI start would pay for them (issue 13; tests/test_import_weight.py).
if TYPE_CHECKING:
    from email.message import Message

    from flask_sqlalchemy import SQLAlchemy

    from . import sync
    from .accounts import OwnerResult
    from .drafts import Draft
    from .health import CheckResult
    from .sending import Sender, SendResult
    from .sync_on_save import SaveSync

log = logging.getLogger("flask_mailconnect")


class MailConnect(HostCallbacks):
    """Flask extension. ``MailConnect(app, db=db)`` or ``MailConnect()`` then ``init_app``."""

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None, **kw: Any):
        #: The host's callbacks and scopes, shared with every app's runtime.
        self.hooks = Hooks()
        if app is not None:
            self.init_app(app, db=db, **kw)

    def init_app(
        self,
        app: Flask,
        *,
        db: SQLAlchemy | None = None,
        policy: Policy | None = None,
        register_blueprint: bool = True,
    ) -> None:
        if db is None:
            raise TypeError("MailConnect needs the host's Flask-SQLAlchemy instance: db=db")
        apply_defaults(app.config)
        if not app.config["MAILCONNECT_ENCRYPTION_KEYS"]:
            log.warning(
                "MAILCONNECT_ENCRYPTION_KEYS is not set; accounts cannot be saved until it is "
                "(generate one with `python -m flask_mailconnect generate-key`)."
            )
        else:  # fail at start-up, not at the first save, when a key is malformed
            check_keys(app.config["MAILCONNECT_ENCRYPTION_KEYS"])
        # A bad provider entry fails at start-up, not when someone clicks its button.
        check_providers(app.config)
        check_detection(app.config)  # MAILCONNECT_DNS_NAMESERVERS, before any look-up
        if "mailconnect" in app.extensions:
            raise RuntimeError("MailConnect is already initialised on this app")
        app.extensions["mailconnect"] = Runtime(
            hooks=self.hooks,
            db=db,
            policy=policy or Policy(),
            events=AccountEvents(),
            facade=self,
            metadata=metadata,
        )

        app.cli.add_command(cli_group)
        # Our templates translate through these (not ``_``: that is the host layout's own).
        app.add_template_global(markup_gettext, "_mc")
        app.add_template_global(markup_ngettext, "_mc_n")
        app.add_template_global(current_locale, "mailconnect_locale")
        if register_blueprint:
            app.register_blueprint(
                create_blueprint(preload=bool(app.config["MAILCONNECT_PRELOAD_VIEWS"])),
                url_prefix=app.config["MAILCONNECT_URL_PREFIX"],
            )

    # -- helpers used by views and the service --------------------------------------------

    @classmethod
    def of(cls, app: Flask | None = None) -> MailConnect:
        """The extension initialised on ``app`` (default: the current app), for code that
        does not hold the instance, such as blueprints of an app factory."""
        runtime = (app or current_app).extensions.get("mailconnect")
        if runtime is None or not isinstance(runtime.facade, cls):
            raise RuntimeError("MailConnect.init_app was not called for this app")
        return runtime.facade

    @property
    def scopes(self) -> dict[str, Scope]:
        """The host-declared owner kinds (``register_scope``), by kind."""
        return self.hooks.scopes

    @staticmethod
    def _state() -> Runtime:
        return current_runtime()

    def actor_for(self, user: Any) -> Actor | None:
        """The :class:`~flask_mailconnect.Actor` the package sees for a host user."""
        return self.hooks.actor_for(user)

    def current_actor(self) -> Actor | None:
        """The signed-in person (``@user_loader``) as an :class:`~flask_mailconnect.Actor`."""
        return self.hooks.current_actor()

    def detect(self, email: str) -> Detection:
        """Servers for ``email`` and where they came from, found without its password
        (catalogue, ISP database, the domain's autoconfig files, SRV, MX, Autodiscover)."""
        from .detection.run import detect

        return detect(email)

    # -- public API -----------------------------------------------------------------------

    def create_all(self) -> None:
        """Create the newest ``mailconnect_*`` tables (tests and demos; idempotent) and record
        them as at the newest revision, so ``flask mailconnect db upgrade`` carries on from
        there (see :func:`flask_mailconnect.migrations.create_all`)."""
        from . import migrations

        migrations.create_all()

    def test_connection(self, settings: ServerSettings) -> ConnectionReport:
        """Check SMTP and IMAP in parallel with the app's network policy. No database."""
        from .transport.tester import test_connection as run_test

        return run_test(with_hints(settings), self._state().transport_options())

    def connect_manual(
        self,
        *,
        owner: Owner | tuple[str, Any],
        settings: ServerSettings,
        actor: Any = None,
        display_name: str | None = None,
    ) -> MailAccount:
        """Test ``settings``, then store a password account for ``owner`` (see accounts.py)."""
        from . import accounts

        return accounts.connect_manual(
            self._state(),
            owner=owner_key(owner),
            settings=settings,
            actor=self.actor_for(actor),
            display_name=display_name,
        )

    def reconnect_manual(
        self, account: MailAccount, *, settings: ServerSettings, actor: Any = None
    ) -> MailAccount:
        """Sign an existing account in again (new password or servers), keeping its settings."""
        from . import accounts

        return accounts.reconnect_manual(
            self._state(), account, settings=settings, actor=self.actor_for(actor)
        )

    def update_account(
        self, account: MailAccount, *, actor: Any = None, **changes: Any
    ) -> set[str]:
        """Change display name, signature, notifications or default; returns changed names."""
        from . import accounts

        return accounts.update_account(
            self._state(), account, actor=self.actor_for(actor), **changes
        )

    def disconnect(self, account: MailAccount, *, actor: Any = None) -> None:
        """Delete the account, its credentials and its synced mail (pinned mail is kept)."""
        from . import accounts

        accounts.disconnect(self._state(), account, actor=self.actor_for(actor))

    def deactivate(self, account: MailAccount, *, actor: Any = None) -> None:
        """ "Active: no": keep the account but stop its use for sending."""
        from . import accounts

        accounts.set_active(self._state(), account, False, actor=self.actor_for(actor))

    def reactivate(self, account: MailAccount, *, actor: Any = None) -> None:
        """Undo :meth:`deactivate`."""
        from . import accounts

        accounts.set_active(self._state(), account, True, actor=self.actor_for(actor))

    def create_handover(
        self,
        *,
        owner: Owner | tuple[str, Any],
        provider: str,
        email: str,
        actor: Any = None,
    ) -> MailAccount:
        """An account without credentials (``pending_authorization``) for ``owner`` to finish
        with the provider's OAuth consent ("Complete authorization" on their page)."""
        from . import accounts

        return accounts.create_handover(
            self._state(),
            owner=owner_key(owner),
            provider=provider,
            email=email,
            actor=self.actor_for(actor),
        )

    def accounts_for(self, owner: Owner | tuple[str, Any]) -> list[MailAccount]:
        from . import accounts

        return accounts.accounts_for(self._state(), owner_key(owner))

    def default_account(self, owner: Owner | tuple[str, Any]) -> MailAccount | None:
        from . import accounts

        return accounts.default_account(self._state(), owner_key(owner))

    def accounts_for_owners(
        self, owners: list[Owner] | list[tuple[str, Any]]
    ) -> dict[Owner, list[MailAccount]]:
        """Accounts of many owners in one query, keyed by normalised owner (default first)."""
        from . import accounts

        return accounts.accounts_by_owner(self._state(), [owner_key(o) for o in owners])

    def provider_for(self, account: MailAccount) -> Provider:
        """The :class:`~flask_mailconnect.providers.Provider` ``account`` belongs to (its
        servers, OAuth settings, advice); "other" for servers typed by hand."""
        return current_catalog().for_account(account)

    def providers(self) -> list[Provider]:
        """The providers offered to people in this app: admin-entered, configured, built-in,
        "other" last."""
        return current_catalog().offered()

    def get_account(self, account_id: int) -> MailAccount | None:
        return self._state().session.get(MailAccount, account_id)

    @property
    def organization(self) -> Owner:
        """The organisation's owner key, ``("organization", "main")``."""
        return ORGANIZATION_OWNER

    def can(self, user: Any, action: str, owner: Owner | tuple[str, Any]) -> bool:
        """May ``user`` (a host user) ``view``/``use``/``manage``/``admin`` ``owner``'s accounts?"""
        return self._state().policy.can(self.actor_for(user), action, owner_key(owner))

    def account_limit(self, owner: Owner | tuple[str, Any]) -> int | None:
        """How many accounts ``owner`` may have (``MAILCONNECT_MAX_ACCOUNTS``); ``None``: any."""
        from . import accounts

        return accounts.account_limit(owner_key(owner))

    def resolve_sender(
        self, *, actor: Any, owner: Owner | tuple[str, Any] | None = None
    ) -> MailAccount:
        """The account to send from when none is given, by ``MAILCONNECT_SENDER_ORDER``.

        Skips inactive and not-connected accounts and any ``actor`` may not ``use``; raises
        :class:`~flask_mailconnect.exceptions.NoSenderAccount` naming what was tried.
        """
        from . import accounts

        return accounts.resolve_sender(
            self._state(),
            actor=self.actor_for(actor),
            owner=owner_key(owner) if owner is not None else None,
        )

    def find_sender(
        self, *, actor: Any, owner: Owner | tuple[str, Any] | None = None
    ) -> MailAccount | None:
        """Like :meth:`resolve_sender`, but ``None`` instead of raising."""
        try:
            return self.resolve_sender(actor=actor, owner=owner)
        except NoSenderAccount:
            return None

    def check(self, account: MailAccount, *, actor: Any = None) -> CheckResult:
        """Health check: refresh the OAuth token if due (also when it would lapse from
        inactivity, ``MAILCONNECT_KEEPALIVE_DAYS``), log in to SMTP and IMAP, and record the
        outcome on the account (status, last success, last error code and remediation) and in
        the audit trail. Never raises for a failed check; like every method it does not commit
        (token refreshes commit their own rows). See :mod:`flask_mailconnect.health`.
        """
        from .health import check

        return check(self._state(), account, actor=self.actor_for(actor))

    def disconnect_all(self, kind: str, *, actor: Any = None) -> list[OwnerResult]:
        """Disconnect every account of every owner of ``kind`` that ``actor`` may manage.

        Returns one result per owner listed by the scope (``disconnected``, ``nothing`` or
        ``failed`` with why). Each owner is its own savepoint: one failure leaves the others.
        """
        from . import accounts

        return accounts.disconnect_all(self._state(), kind, actor=self.actor_for(actor))

    # -- sending (sending.py, compose.py) ---------------------------------------------------

    def _sender_account(
        self, account: MailAccount | None, owner: Owner | tuple[str, Any] | None, actor: Any
    ) -> MailAccount:
        if account is not None:
            return account
        return self.resolve_sender(actor=actor, owner=owner)

    def send(
        self,
        message: Message | Draft,
        *,
        account: MailAccount | None = None,
        owner: Owner | tuple[str, Any] | None = None,
        actor: Any = None,
    ) -> SendResult:
        """Send an :class:`~email.message.EmailMessage` or a :class:`~flask_mailconnect.Draft`
        through ``account``.

        Without ``account`` the sender is resolved for ``owner`` / ``actor`` by
        ``MAILCONNECT_SENDER_ORDER`` (:meth:`resolve_sender`); with an ``actor`` it must be
        allowed to ``use`` the account. From, Date, Message-ID and the signature are set, Bcc is
        not transmitted. Returns a :class:`~flask_mailconnect.sending.SendResult`; raises a
        :class:`~flask_mailconnect.exceptions.SendError` subclass whose ``retryable`` says
        whether trying again can help. Does not commit (``last_sent_at`` and health fields).
        """
        from .sending import send

        chosen = self._sender_account(account, owner, actor)
        return send(self._state(), chosen, message, actor=self.actor_for(actor))

    def sending(
        self,
        account: MailAccount | None = None,
        *,
        owner: Owner | tuple[str, Any] | None = None,
        actor: Any = None,
    ) -> Sender:
        """One authenticated connection for many messages: ``with mailconnect.sending(a) as
        conn: conn.send(msg)``. Reconnects when the server closes it or the OAuth token nears
        expiry, never re-sends a message the server may have accepted; ``conn.results`` lists
        each message's outcome. Refuses an inactive or disconnected account at once."""
        from .sending import Sender

        chosen = self._sender_account(account, owner, actor)
        return Sender(self._state(), chosen, actor=self.actor_for(actor), bulk=True)

    # -- recent mail and folders (sync.py) -------------------------------------------------

    def sync_recent(
        self, account: MailAccount, *, limit: int = 50, actor: Any = None
    ) -> sync.SyncResult:
        """Store the newest ``limit`` INBOX messages' headers in ``SyncedMessage``.

        One FETCH for the newest ``limit`` the first time (or after UIDVALIDITY changed), then
        only messages with UIDs from the stored UIDNEXT on; older unpinned rows beyond ``limit``
        are deleted. Safe to run on many workers at once. Fires ``messages_synced``. Raises
        :class:`~flask_mailconnect.exceptions.SyncError` (recorded on the account). Does not
        commit: commit afterwards, after a ``SyncError`` too.
        """
        from . import sync

        return sync.sync_recent(self._state(), account, limit=limit, actor=self.actor_for(actor))

    def sync_on_save(self, account: MailAccount) -> SaveSync:
        """Load a just-saved account's newest 50 messages (``@enqueue``, else in the request
        for at most ``MAILCONNECT_SYNC_ON_SAVE_TIMEOUT`` s). Call after committing the save;
        it commits its own work and never raises for a failed load (see docs/sync.rst)."""
        from .sync_on_save import load_on_save

        return load_on_save(self._state(), account)

    def recent_messages(self, account: MailAccount, limit: int = 50) -> list[SyncedMessage]:
        """The account's synced messages, newest first (one query, no network)."""
        from . import sync

        return sync.recent_messages(self._state(), account, limit)

    def list_folders(self, account: MailAccount, *, actor: Any = None) -> sync.FolderListing:
        """The mailbox's folders (one IMAP LIST) with the stored mapping and the one suggested
        by SPECIAL-USE attributes. Raises ``SyncError`` when the server cannot be read."""
        from . import sync

        return sync.list_folders(self._state(), account, actor=self.actor_for(actor))

    def update_folders(
        self,
        account: MailAccount,
        mapping: dict[str, str | None],
        *,
        actor: Any = None,
        folders: list[str] | None = None,
    ) -> set[str]:
        """Save the folder mapping (``inbox``, ``sent``, ``archive``, ``trash``), checked
        against ``folders`` or a fresh listing; raises ``InvalidSettings`` for unknown names.
        Audited; ``account_updated`` fires with the changed ``folder_*`` names."""
        from . import sync

        return sync.update_folders(
            self._state(), account, mapping, actor=self.actor_for(actor), folders=folders
        )


__all__ = ["EncryptionKeyError", "MailConnect"]
