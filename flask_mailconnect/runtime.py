"""The one per-app state: ``app.extensions["mailconnect"]`` is a :class:`Runtime`.

Everything an app's requests, CLI commands and jobs share lives here and nowhere else (never on
the extension object, never in module globals): the host's Flask-SQLAlchemy instance, the
permission policy, the host's callbacks (:class:`Hooks`), the cipher built from the configured
keys, the network policy (:class:`~flask_mailconnect.transport.settings.TransportOptions`) and
every per-app cache (MX answers, OAuth server metadata, Authlib's client registry, rate
windows). Several apps in one process (tests, multi-tenant hosts) each get their own.

Layering: this module sits below everything that uses it. It imports only leaves (owners,
config, crypto's key handling, exceptions, transport settings); the policy it holds is typed by
the small :class:`AccessPolicy` protocol that :class:`~flask_mailconnect.scopes.Policy`
implements, so ``scopes`` may read the runtime without a cycle.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from flask import current_app, has_app_context
from sqlalchemy.orm import Session

from .crypto import build_cipher
from .exceptions import EncryptionKeyError, MissingUserHook
from .owners import Actor, Owner, Scope
from .transport.settings import TransportOptions

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet
    from flask_sqlalchemy import SQLAlchemy
    from sqlalchemy import Engine, MetaData

K = TypeVar("K")
V = TypeVar("V")


class AccessPolicy(Protocol):
    """What the runtime needs of a policy (:class:`~flask_mailconnect.scopes.Policy`)."""

    def can(self, actor: Actor | None, action: str, owner: Owner, *, obj: Any = ...) -> bool: ...

    def can_complete_handover(self, actor: Actor | None, account: Any) -> bool: ...


class TokenEvents(Protocol):
    """What the OAuth layer reports about an account while it refreshes tokens; implemented by
    :class:`~flask_mailconnect.account_events.AccountEvents` (the oauth package never writes
    an account's status, audit rows or signals itself)."""

    def grant_refused(
        self, session: Session, account_id: int, *, code: str, message: str, already: bool
    ) -> None: ...

    def token_refreshed(self, account: Any) -> None: ...

    def needs_reconnect(self, account: Any, reason: str) -> None: ...


# -- the host's callbacks ---------------------------------------------------------------------


def _default_user_loader() -> Any:
    try:
        from flask_login import current_user
    except ImportError:  # pragma: no cover - depends on the host's installed packages
        return None
    return current_user if current_user.is_authenticated else None


def _default_admin_checker(user: Any) -> bool:
    return bool(getattr(user, "is_admin", False))


def _is_row(user: Any) -> bool:
    """A dict or a database row (``sqlite3.Row``): its fields are items, not attributes."""
    return callable(getattr(user, "keys", None)) and hasattr(user, "__getitem__")


def _default_user_label(user: Any) -> str:
    for attr in ("email", "name", "username"):
        value = getattr(user, attr, None)
        if value:
            return str(value)
    if _is_row(user):  # str() of a row prints its type or every field: never a name
        raise MissingUserHook(
            f"Flask-MailConnect cannot name a user of type {type(user).__name__}: it has no "
            "email, name or username attribute. Add the user_label hook:\n\n"
            "    @mailconnect.user_label\n"
            "    def user_label(user):\n"
            '        return user["username"]'
        )
    return str(user)


def _default_user_id(user: Any) -> str:
    get_id = getattr(user, "get_id", None)
    if callable(get_id):
        return str(get_id())
    if not hasattr(user, "id"):
        raise MissingUserHook(
            f"Flask-MailConnect cannot find the id of a user of type {type(user).__name__}: it "
            "has neither get_id() nor an id attribute. Add the user_id hook:\n\n"
            "    @mailconnect.user_id\n"
            "    def user_id(user):\n"
            '        return str(user["id"])'
        )
    return str(user.id)


def _everyone(user: Any) -> bool:
    return True


class Hooks:
    """The host's callbacks and declared scopes, with the accessors the package uses.

    One instance per :class:`~flask_mailconnect.MailConnect`, shared by every app it is
    initialised on, so decorators may run before or after ``init_app``. Nothing outside this
    class reads the callbacks directly.
    """

    def __init__(self) -> None:
        self.user_loader: Callable[[], Any] = _default_user_loader
        self.admin_checker: Callable[[Any], bool] = _default_admin_checker
        self.user_label: Callable[[Any], str] = _default_user_label
        self.user_id: Callable[[Any], str] = _default_user_id
        self.user_search: Callable[[str, int], Iterable[Any]] | None = None
        self.user_getter: Callable[[str], Any] | None = None
        self.users_getter: Callable[[list[str]], Mapping[str, Any]] | None = None
        self.organization_access: Callable[[Any], bool] = _everyone
        self.permission_rule: Callable[[Actor, str, Owner], bool | None] | None = None
        #: ``@enqueue``: ``(job, **kwargs)`` hands a job of :mod:`flask_mailconnect.jobs` (by
        #: name, e.g. ``"sync_account"`` with ``account_id=...``) to the host's job queue.
        self.enqueue: Callable[..., Any] | None = None
        #: Host-declared owner kinds by name (``register_scope``).
        self.scopes: dict[str, Scope] = {}

    def actor_for(self, user: Any) -> Actor | None:
        """The :class:`~flask_mailconnect.owners.Actor` for a host user (``None`` for none)."""
        if user is None:
            return None
        return Actor(
            user=user,
            id=self.user_id(user),
            label=self.user_label(user),
            is_admin=bool(self.admin_checker(user)),
        )

    def current_actor(self) -> Actor | None:
        return self.actor_for(self.user_loader())

    def id_of(self, user: Any) -> str:
        return self.user_id(user)

    def label_of(self, user: Any) -> str:
        return self.user_label(user)

    def is_admin(self, user: Any) -> bool:
        return bool(self.admin_checker(user))

    def may_use_organization(self, user: Any) -> bool:
        return bool(self.organization_access(user))

    def decide(self, actor: Actor, action: str, owner: Owner) -> bool | None:
        """The host's ``@permission_rule`` answer, ``None`` when it has none or defers."""
        if self.permission_rule is None:
            return None
        return self.permission_rule(actor, action, owner)

    def enqueue_job(self, job: str, **kwargs: Any) -> bool:
        """Hand ``job`` to the host's queue through ``@enqueue``; ``False`` without one."""
        if self.enqueue is None:
            return False
        self.enqueue(job, **kwargs)
        return True

    def search_users(self, query: str, limit: int = 20) -> list[Any]:
        """People matching ``query`` through ``@user_search`` (``[]`` without the callback)."""
        if self.user_search is None:
            return []
        return list(self.user_search(query, limit))[:limit]

    def get_user(self, user_id: str) -> Any:
        """The person with ``user_id`` through ``@user_getter`` (``None`` without it)."""
        if self.user_getter is None:
            return None
        return self.user_getter(str(user_id))

    def get_users(self, user_ids: Iterable[str]) -> dict[str, Any]:
        """``{id: user}`` for the ids that exist: ``@users_getter`` in one call when set, else
        ``@user_getter`` once per distinct id (``{}`` without either)."""
        ids = list(dict.fromkeys(str(i) for i in user_ids))
        if not ids:
            return {}
        if self.users_getter is not None:
            found = self.users_getter(ids) or {}
            wanted = set(ids)
            return {str(k): v for k, v in found.items() if v is not None and str(k) in wanted}
        users = {ident: self.get_user(ident) for ident in ids}
        return {ident: user for ident, user in users.items() if user is not None}


# -- per-app caches ---------------------------------------------------------------------------


class TTLCache(Generic[K, V]):
    """A small thread-safe LRU whose entries expire; one per app and purpose."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] < time.monotonic():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: K, value: V, ttl: float) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class RateWindow:
    """A sliding window of events per person (per process; bounded memory)."""

    def __init__(self, limit: int, seconds: float = 60.0, people: int = 10_000) -> None:
        self.limit, self.seconds, self.people = limit, seconds, people
        self._lock = threading.Lock()
        self._seen: dict[str, list[float]] = {}

    def take(self, who: str) -> bool:
        """Count one event for ``who``; ``False`` when the window is already full."""
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > self.people:  # forget everyone's old windows
                self._seen.clear()
            recent = [t for t in self._seen.get(who, []) if now - t < self.seconds]
            if len(recent) >= self.limit:
                self._seen[who] = recent
                return False
            self._seen[who] = [*recent, now]
            return True


#: /detect MX look-ups allowed per person and minute (known domains always answer).
DETECT_MX_PER_MINUTE = 20


# -- the runtime ------------------------------------------------------------------------------


class Runtime:
    """What one app needs; stored in ``app.extensions["mailconnect"]`` (never ``self.app``)."""

    def __init__(
        self,
        *,
        hooks: Hooks,
        db: SQLAlchemy,
        policy: AccessPolicy,
        events: TokenEvents,
        facade: object = None,
        metadata: MetaData | None = None,
    ) -> None:
        #: The :class:`~flask_mailconnect.MailConnect` that initialised the app, for hosts
        #: (``MailConnect.of(app)``). Package code never calls up through it: the layers below
        #: the facade receive this runtime instead.
        self.facade = facade
        self.hooks = hooks
        self.events = events
        self.db = db
        #: Our tables' MetaData (handed in by the extension: this layer sits below models), for
        #: :meth:`engine`.
        self.metadata = metadata
        self.policy = policy
        self._cipher: tuple[tuple[Any, ...], MultiFernet] | None = None
        self._lock = threading.Lock()
        #: MX answers for provider detection, ``domain -> hosts``.
        self.mx_cache: TTLCache[str, tuple[str, ...]] = TTLCache()
        #: OAuth server metadata by URL (discovery documents), trusted for a while.
        self.oauth_metadata: TTLCache[str, dict[str, Any]] = TTLCache(size=256)
        #: Admin-entered provider rows as read (client secrets still sealed), for
        #: ``MAILCONNECT_PROVIDER_CACHE_SECONDS`` (providers/catalog.py).
        self.provider_rows: TTLCache[str, tuple[Any, ...]] = TTLCache(size=1)
        #: Serialises token refreshes when the engine has a single connection (StaticPool).
        self.single_connection = threading.Lock()
        #: Callers in this process waiting for one account's token refresh: one of them looks
        #: at the database, the others wait on it without a connection (oauth/locks.py).
        self.refresh_gates: dict[int, Any] = {}
        self.refresh_gates_lock = threading.Lock()
        #: /detect MX look-ups per person.
        self.detect_window = RateWindow(DETECT_MX_PER_MINUTE)
        self._oauth_clients: Any = None

    # -- cipher, session, network policy --------------------------------------------------

    @property
    def cipher(self) -> MultiFernet:
        # Built on first use (so the app starts before keys exist) and rebuilt when the
        # configured keys change, e.g. a test or a shell rotating them.
        keys = current_app.config["MAILCONNECT_ENCRYPTION_KEYS"]
        wanted = tuple(keys) if isinstance(keys, (list, tuple)) else (keys,)
        found = self._cipher
        if found is None or found[0] != wanted:
            found = (wanted, build_cipher(keys))
            self._cipher = found
        return found[1]

    @property
    def session(self) -> Session:
        # The scoped session proxies every Session method; typed as one for callers.
        return cast(Session, self.db.session)

    def engine(self) -> Engine:
        """The engine our tables live on: the host's default database, or the
        Flask-SQLAlchemy bind named by ``metadata.info["bind_key"]`` of our MetaData.

        Every direct use of an engine (migrations, ``create_all``, the detection cache, the
        dialect checks) goes through here, so our tables on a bind never meet the default
        database's engine or dialect.
        """
        tables = self.metadata.sorted_tables if self.metadata is not None else []
        bind = self.session.get_bind(clause=tables[0] if tables else None)
        return bind.engine  # an Engine's .engine is itself; a Connection's is its engine

    def transport_options(self) -> TransportOptions:
        return transport_options(current_app.config)

    def oauth_clients(self, make: Callable[[], V]) -> V:
        """The app's Authlib client registry, made by ``make`` the first time."""
        with self._lock:
            if self._oauth_clients is None:
                self._oauth_clients = make()
            return cast(V, self._oauth_clients)


def transport_options(config: Mapping[str, Any]) -> TransportOptions:
    """The network policy every outbound connection obeys, from ``MAILCONNECT_*`` config."""

    def ports(key: str) -> tuple[int, ...] | None:
        value = config[key]
        return None if value is None else tuple(int(p) for p in value)

    return TransportOptions(
        timeout=float(config["MAILCONNECT_CONNECT_TIMEOUT"]),
        allow_private_hosts=bool(config["MAILCONNECT_ALLOW_PRIVATE_HOSTS"]),
        allow_plaintext_auth=bool(config["MAILCONNECT_ALLOW_PLAINTEXT_AUTH"]),
        smtp_ports=ports("MAILCONNECT_SMTP_PORTS"),
        imap_ports=ports("MAILCONNECT_IMAP_PORTS"),
        ca_file=config["MAILCONNECT_CA_FILE"],
    )


def current_runtime() -> Runtime:
    """The current app's runtime; a clear error when ``init_app`` was not called."""
    try:
        return cast(Runtime, current_app.extensions["mailconnect"])
    except KeyError:
        raise RuntimeError("MailConnect.init_app was not called for this app") from None


def find_runtime() -> Runtime | None:
    """The current app's runtime, or ``None`` outside an app context or before ``init_app``."""
    if not has_app_context():
        return None
    return cast("Runtime | None", current_app.extensions.get("mailconnect"))


def current_cipher() -> MultiFernet:
    found = find_runtime()
    if found is None:
        raise EncryptionKeyError("MailConnect is not initialised on the current app.")
    return found.cipher
