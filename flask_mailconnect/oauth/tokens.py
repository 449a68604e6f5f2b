"""OAuth 2.0 tokens: a fresh access token under a database row lock, and revocation.

Many WSGI workers and job processes may need a fresh access token for one account at the same
moment, and the provider rotates refresh tokens: spending one refresh token twice gets the second
caller ``invalid_grant`` (Microsoft and Authlib-based servers may then revoke the whole grant).
So :func:`fresh_access_token` refreshes under a lock on the account's row and re-reads the tokens
after taking it: whoever waited finds the token the first holder stored and uses it.

The lock lives in a transaction of its own, on a separate connection from the same engine (a
``Session`` bound to the engine, never the host's ``db.session``), because the rotated refresh
token must be committed before the lock is released, whatever the host later does with its own
transaction. So this module commits only its own rows (the account's token columns, its status
on ``invalid_grant``, one audit row) and never flushes or commits the host's pending work.

Per backend:

* PostgreSQL and MariaDB/MySQL: ``SELECT ... FOR UPDATE`` on the account row. Other lockers wait
  (PostgreSQL: at most ``lock_timeout``, set for this transaction only; MariaDB: the server's
  ``innodb_lock_wait_timeout``, 50 s by default), then re-read the committed row (PostgreSQL
  reads committed data after the wait; on InnoDB a locking read always reads the latest committed
  version, whatever the isolation level).
  The private transaction runs at READ COMMITTED whatever the engine's default (hosts that
  set REPEATABLE READ or SERIALIZABLE included).
* SQLite (no row locks): the transaction's first statement is a no-op ``UPDATE`` of the row,
  which takes SQLite's database write lock (like ``BEGIN IMMEDIATE``); other connections and
  processes wait for it in SQLite's busy handler (the driver's ``timeout``, 5 s by default: set
  ``connect_args={"timeout": 30}`` when several workers share a SQLite file).
* A single-connection pool (``StaticPool``, as used for in-memory SQLite) cannot give a second
  connection: refreshes are serialised by a per-app lock, and the refresh's commit also commits
  whatever the host left pending on that one connection. Only tests and demos run like that.

Do not call :func:`fresh_access_token` while your own session holds uncommitted writes to the
same account row: on PostgreSQL and MariaDB the refresh would wait for your transaction (bounded
by the lock timeout, then :class:`TokenRefreshUnavailable`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
import sqlalchemy as sa
from authlib.common.errors import AuthlibBaseError
from flask import Flask, current_app
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from .. import audit, signals
from ..exceptions import GraphNotGranted, NeedsReconnect, TokenError, TokenRefreshUnavailable
from ..models import AccountStatus, MailAccount, utcnow
from ..runtime import Runtime
from ..transport.http import GuardedOAuth2Session, HTTPGuardError
from .providers import OAuthProvider, current_oauth_providers

log = logging.getLogger("flask_mailconnect.oauth")

#: ``last_error_code`` of an account whose grant the provider refused (``invalid_grant``).
TOKEN_REVOKED = "token_revoked"
#: ``last_error_code`` of an OAuth account that has no refresh token left.
NO_REFRESH_TOKEN = "no_refresh_token"

GRAPH_MAIL_SEND = "https://graph.microsoft.com/Mail.Send"
#: What a Graph access token is asked for (refresh grant with the account's one refresh
#: token): Microsoft issues one access token per resource, never Outlook and Graph in one.
GRAPH_SCOPE = f"{GRAPH_MAIL_SEND} offline_access"
_GRAPH_RESOURCE = "https://graph.microsoft.com"

#: Which access token of an account: the SMTP/IMAP one ("mail") or the Graph one ("graph").
MAIL = "mail"
GRAPH = "graph"


# -- per-app state (never module globals: every app, worker and process has its own) ----------


class _TokenState:
    def __init__(self) -> None:
        self.lock = threading.Lock()  #: guards ``metadata``
        #: server metadata by its URL, with the monotonic time it was read (kept METADATA_TTL)
        self.metadata: dict[str, tuple[float, dict[str, Any]]] = {}
        #: serialises refreshes when the engine has a single connection (StaticPool)
        self.single_connection = threading.Lock()


def _token_state(app: Flask) -> _TokenState:
    found = app.extensions.get("mailconnect.tokens")
    if found is None:
        found = app.extensions.setdefault("mailconnect.tokens", _TokenState())
    return found


# -- HTTP to the provider ---------------------------------------------------------------------


def _client(
    state: Runtime, provider: OAuthProvider, scope: str | None = None
) -> GuardedOAuth2Session:
    """Token refresh, metadata and revocation go through the network guard (transport/http.py):
    checked addresses only, https, verified TLS (system store plus ``MAILCONNECT_CA_FILE``),
    no POST re-sent on a redirect, timeouts and a size cap on every answer."""
    return GuardedOAuth2Session(
        provider.client_id,
        provider.client_secret,
        token_endpoint_auth_method=provider.token_endpoint_auth_method,
        revocation_endpoint_auth_method=provider.token_endpoint_auth_method,
        scope=scope,
        transport_options=state.transport_options(),
    )


def _guard_refused(provider: OAuthProvider, exc: HTTPGuardError) -> TokenError:
    """A provider URL the guard refuses will not work on retry: say what to fix."""
    where = f" ({exc.address})" if exc.address else ""
    return TokenError(
        f"{provider.name}'s OAuth endpoint is not allowed{where}: {exc.message}", error=exc.code
    )


def _timeout(state: Runtime) -> float:
    return state.transport_options().timeout


@dataclass(frozen=True)
class _Endpoints:
    token: str
    revoke: str | None


def _endpoints(state: Runtime, provider: OAuthProvider) -> _Endpoints:
    """The token and revocation endpoints, from config or the server metadata (cached on the
    app for :data:`~flask_mailconnect.oauth.flow.METADATA_TTL` seconds per metadata URL)."""
    from .flow import METADATA_TTL

    if provider.token_url or not provider.server_metadata_url:
        assert provider.token_url  # providers.py refuses an entry with neither
        return _Endpoints(provider.token_url, provider.revoke_url)
    tokens = _token_state(current_app._get_current_object())  # type: ignore[attr-defined]
    with tokens.lock:
        cached = tokens.metadata.get(provider.server_metadata_url)
    meta = None
    if cached is not None and time.monotonic() - cached[0] <= METADATA_TTL:
        meta = cached[1]
    if meta is None:
        try:
            with _client(state, provider) as client:
                response = client.get(
                    provider.server_metadata_url, timeout=_timeout(state), withhold_token=True
                )
            response.raise_for_status()
            meta = response.json()
        except (requests.RequestException, ValueError) as exc:
            if isinstance(exc, HTTPGuardError) and exc.refused:
                raise _guard_refused(provider, exc) from None
            raise TokenRefreshUnavailable(
                f"The server metadata of {provider.name} could not be read "
                f"({type(exc).__name__}); try again later."
            ) from None
        if not isinstance(meta, Mapping) or not meta.get("token_endpoint"):
            raise TokenError(f"The server metadata of {provider.name} names no token endpoint.")
        with tokens.lock:
            tokens.metadata[provider.server_metadata_url] = (time.monotonic(), dict(meta))
    return _Endpoints(
        str(meta["token_endpoint"]), provider.revoke_url or meta.get("revocation_endpoint")
    )


def _provider_for(account: MailAccount) -> OAuthProvider:
    providers = current_oauth_providers(include_disabled=True)  # existing accounts keep working
    found = providers.get(account.provider)
    if found is None:  # accounts may store the server preset's key ("gmail") instead
        found = next((p for p in providers.values() if p.servers == account.provider), None)
    if found is None:
        raise TokenError(
            f"The OAuth provider {account.provider!r} of this account is not configured "
            "(MAILCONNECT_PROVIDERS)."
        )
    return found


def _sends_scope_on_refresh(provider: OAuthProvider) -> bool:
    # Microsoft's v2 endpoint wants the scopes again on refresh; RFC 6749 (and Google) treat an
    # omitted scope as "as originally granted", which is what we want everywhere else.
    return provider.key == "microsoft" or provider.graph_url is not None


# -- the locked read-refresh-write ------------------------------------------------------------


@dataclass
class _Row:
    access_token: str | None
    refresh_token: str | None
    token_expires_at: datetime | None
    token_refreshed_at: datetime | None
    token_scopes: str
    status: str
    last_error_code: str | None
    graph_access_token: str | None
    graph_token_expires_at: datetime | None

    def token(self, kind: str) -> str | None:
        return self.graph_access_token if kind == GRAPH else self.access_token

    def valid_for(self, min_validity: timedelta, kind: str = MAIL) -> bool:
        token = self.token(kind)
        expires = self.graph_token_expires_at if kind == GRAPH else self.token_expires_at
        if not token:
            return False
        if expires is None:  # no known expiry: good until a server says not
            return True
        return expires - utcnow() >= min_validity


_COLUMNS = (
    MailAccount.access_token,
    MailAccount.refresh_token,
    MailAccount.token_expires_at,
    MailAccount.token_refreshed_at,
    MailAccount.token_scopes,
    MailAccount.status,
    MailAccount.last_error_code,
    MailAccount.graph_access_token,
    MailAccount.graph_token_expires_at,
)


def _read(session: Session, account_id: int, *, lock: bool) -> _Row:
    query = sa.select(*_COLUMNS).where(MailAccount.id == account_id)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).first()
    if row is None:
        raise TokenError(
            f"Account {account_id} is not in the database (was it committed? token refresh "
            "runs in a transaction of its own)."
        )
    return _Row(*row)


def _engine(state: Runtime) -> sa.Engine:
    bind = state.session.get_bind(mapper=sa.inspect(MailAccount))
    return bind if isinstance(bind, sa.Engine) else bind.engine


@contextmanager
def _locked(state: Runtime, account_id: int) -> Iterator[tuple[Session, _Row]]:
    """A private session holding the account row's lock; commits on success."""
    engine = _engine(state)
    single = isinstance(engine.pool, (StaticPool, SingletonThreadPool))
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    guard = _token_state(app).single_connection if single else nullcontext()
    with guard, Session(bind=engine, expire_on_commit=False, autoflush=False) as session:
        dialect = engine.dialect.name
        try:
            if dialect in ("postgresql", "mysql", "mariadb"):
                # Hosts may run REPEATABLE READ or SERIALIZABLE: after waiting for the lock,
                # this transaction must see the token the previous holder committed
                # (PostgreSQL would otherwise fail with a serialization error).
                session.connection(execution_options={"isolation_level": "READ COMMITTED"})
            if dialect == "postgresql":
                wait = max(30, int(_timeout(state) * 3))
                session.execute(sa.text(f"SET LOCAL lock_timeout = '{wait}s'"))
            elif dialect == "sqlite":  # take the database write lock first (BEGIN IMMEDIATE)
                session.execute(
                    sa.text("UPDATE mailconnect_account SET id = id WHERE id = :id"),
                    {"id": account_id},
                )
            row = _read(session, account_id, lock=True)
        except DBAPIError as exc:
            session.rollback()
            raise TokenRefreshUnavailable(
                "The account is busy (its token is being refreshed elsewhere); try again."
            ) from exc
        try:
            yield session, row
            session.commit()
        except BaseException:
            session.rollback()
            raise


def fresh_graph_token(
    state: Runtime,
    account: MailAccount,
    *,
    min_validity: timedelta = timedelta(minutes=5),
    force: bool = False,
) -> str:
    """A Microsoft Graph access token (``Mail.Send``) for ``account``, valid for at least
    ``min_validity``: what :func:`~flask_mailconnect.transport.graph.send_via_graph` and
    ``check_graph`` need. Never the SMTP/IMAP token (Graph refuses its audience).

    Obtained with the account's one refresh token (refresh grant, scope :data:`GRAPH_SCOPE`),
    under the same row lock as :func:`fresh_access_token`, and stored apart
    (``graph_access_token``). Raises :class:`GraphNotGranted` when the provider will not give
    ``Mail.Send``, else what :func:`fresh_access_token` raises.
    """
    return _fresh(state, account, GRAPH, min_validity=min_validity, force=force)


def fresh_access_token(
    state: Runtime,
    account: MailAccount,
    *,
    min_validity: timedelta = timedelta(minutes=5),
    force: bool = False,
) -> str:
    """An access token for ``account`` valid for at least ``min_validity``.

    A stored token that is still valid long enough is returned without a lock or any network
    call. Otherwise the row is locked, re-read, and only if no other worker has refreshed it
    meanwhile is the token endpoint called; the new tokens (the new refresh token, or the old
    one when the provider sends none), ``token_expires_at`` and ``token_refreshed_at`` are
    committed before the lock is released, then ``token_refreshed`` fires.

    ``force=True`` refreshes even a token that looks valid (a server just rejected it), unless
    another worker refreshed it after this call started: the token found under the lock is not
    the one this call saw when it started (compared by value, so no clock or DATETIME precision
    is involved). Then that worker's token is returned. So many workers forcing at once cause
    one refresh.

    Raises :class:`NeedsReconnect` (the account is now ``needs_reconnect``;
    ``account_needs_reconnect`` fired if it was not already), :class:`TokenRefreshUnavailable`
    (retry later; nothing changed) or :class:`TokenError`.
    """
    return _fresh(state, account, MAIL, min_validity=min_validity, force=force)


def _fresh(
    state: Runtime, account: MailAccount, kind: str, *, min_validity: timedelta, force: bool
) -> str:
    if account.auth_method != "oauth2":
        raise TokenError(f"Account {account.id} does not sign in with OAuth 2.0.")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with Session(bind=_engine(state)) as peek:
        row = _read(peek, account.id, lock=False)
    seen = row.token(kind)  # what this call started with (force: a server just refused it)
    if not force and row.valid_for(min_validity, kind):
        assert seen
        return seen
    provider = _provider_for(account)
    newly_revoked: str | None = None
    refreshed = False
    not_granted: GraphNotGranted | None = None
    mirror: Any = None
    error_code = TOKEN_REVOKED
    with _locked(state, account.id) as (session, row):
        current = row.token(kind)
        fresh = row.valid_for(min_validity, kind) and (not force or current != seen)
        if fresh:
            assert current
            token = current
        elif not row.refresh_token and row.status == AccountStatus.NEEDS_RECONNECT:
            error_code = row.last_error_code or TOKEN_REVOKED  # already marked: no change
            token = ""
        elif not row.refresh_token:
            error_code = NO_REFRESH_TOKEN
            newly_revoked = _mark_needs_reconnect(session, account, row, provider, code=error_code)
            token = ""
        else:
            try:
                token = _refresh(state, session, account, row, provider, kind)
                refreshed = True
            except GraphNotGranted as exc:  # the rotated refresh token is still committed
                not_granted, token = exc, ""
            except NeedsReconnect:
                newly_revoked = _mark_needs_reconnect(
                    session, account, row, provider, code=TOKEN_REVOKED
                )
                token = ""
        if refreshed or not token:
            mirror = _mirror(session, account.id)
    # Committed. Mirror the new values on the caller's instance (without marking it dirty).
    if mirror is not None:
        _sync_instance(account, mirror)
    if not_granted is not None:
        raise not_granted
    if refreshed:
        log.info("Refreshed the access token of account %s", account.id)
        signals.token_refreshed.send(app, account=account)
        return token
    if token:
        return token
    if newly_revoked:
        log.warning("Account %s needs reconnecting: %s", account.id, newly_revoked)
        signals.account_needs_reconnect.send(app, account=account, reason=newly_revoked, actor=None)
    raise NeedsReconnect(_remedy(provider, error_code), error=error_code)


def _resource(scope: str) -> str | None:
    """``https://outlook.office.com/SMTP.Send`` -> ``https://outlook.office.com``; None for
    ``openid``, ``email``, ``offline_access`` and other plain scopes."""
    if "://" not in scope:
        return None
    scheme, rest = scope.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


def mail_refresh_scope(provider: OAuthProvider, granted: str = "") -> str:
    """The scope of a Microsoft-style refresh for the SMTP/IMAP token: the scopes of one
    resource (the first one that is not Graph, as granted or else as configured) plus
    ``offline_access`` (without it no new refresh token comes back). Asking for two resources
    at once is refused (AADSTS28000)."""
    base = granted.split() or list(provider.scopes)
    resources = [r for r in map(_resource, base) if r and r != _GRAPH_RESOURCE]
    if not resources and granted:
        base = list(provider.scopes)
        resources = [r for r in map(_resource, base) if r and r != _GRAPH_RESOURCE]
    if not resources:  # no resource-qualified scopes: a plain OAuth server
        kept = [s for s in base if _resource(s) is None]
    else:
        kept = [s for s in base if _resource(s) == resources[0]]
    return " ".join(dict.fromkeys([*kept, "offline_access"]))


def _granted(result: Mapping[str, Any], wanted: str) -> bool:
    """Whether ``wanted`` is among the scopes of a token response (its ``scope``, else the
    access token's ``scp`` claim when it is a JWT; unverified: it only tells what to try)."""
    scope = result.get("scope")
    if isinstance(scope, (list, tuple)):
        scope = " ".join(str(s) for s in scope)
    names = str(scope or "").split()
    if not names:
        names = _jwt_scp(str(result.get("access_token") or "")).split()
    short = wanted.rsplit("/", 1)[-1].lower()
    return any(n.lower() in (wanted.lower(), short) for n in names)


def _jwt_scp(token: str) -> str:
    import base64
    import json

    parts = token.split(".")
    if len(parts) != 3:
        return ""
    try:
        data = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return ""
    return str(data.get("scp") or "") if isinstance(data, dict) else ""


def _consent_missing(exc: AuthlibBaseError) -> bool:
    """Microsoft's ``invalid_grant`` for a scope never consented (AADSTS65001): the grant
    itself is fine."""
    text = str(getattr(exc, "description", "") or "")
    return "AADSTS65001" in text or "consent_required" in text


def _refresh(
    state: Runtime,
    session: Session,
    account: MailAccount,
    row: _Row,
    provider: OAuthProvider,
    kind: str = MAIL,
) -> str:
    """Call the token endpoint (row locked) and stage the new tokens in ``session``."""
    assert row.refresh_token
    endpoints = _endpoints(state, provider)
    scope = None
    if kind == GRAPH:
        if not provider.graph_url:
            raise GraphNotGranted(f"{provider.name} does not offer Microsoft Graph.")
        scope = GRAPH_SCOPE
    elif _sends_scope_on_refresh(provider):
        scope = mail_refresh_scope(provider, row.token_scopes)
    options = state.transport_options()
    try:
        with _client(state, provider, scope) as client:
            result = client.refresh_token(
                endpoints.token, refresh_token=row.refresh_token, timeout=options.timeout
            )
    except AuthlibBaseError as exc:  # OAuthError from the requests client, with .error
        if (
            kind == GRAPH
            and exc.error in ("invalid_grant", "invalid_scope")
            and (exc.error == "invalid_scope" or _consent_missing(exc))
        ):
            raise GraphNotGranted(
                f"{provider.name} did not grant sending through Microsoft Graph (Mail.Send).",
                error=exc.error,
            ) from None
        if exc.error == "invalid_grant":
            raise NeedsReconnect(_remedy(provider, TOKEN_REVOKED), error=exc.error) from None
        if exc.error in ("temporarily_unavailable", "server_error"):
            raise TokenRefreshUnavailable(
                f"{provider.name} could not refresh the token right now ({exc.error}); "
                "try again later.",
                error=exc.error,
            ) from None
        log.warning("Token refresh for account %s refused: %s", account.id, exc.error)
        raise TokenError(
            f"{provider.name} refused to refresh the token ({exc.error}). Check the client "
            "id, secret and scopes configured for it.",
            error=exc.error,
        ) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        log.warning("Token endpoint of %s answered HTTP %s", provider.name, status)
        if status >= 500 or status == 429:
            raise TokenRefreshUnavailable(
                f"{provider.name}'s token endpoint answered HTTP {status}; try again later."
            ) from None
        raise TokenError(f"{provider.name}'s token endpoint answered HTTP {status}.") from None
    except requests.RequestException as exc:
        if isinstance(exc, HTTPGuardError) and exc.refused:
            log.warning("Token endpoint of %s refused by the guard: %s", provider.name, exc.code)
            raise _guard_refused(provider, exc) from None
        log.warning("Token endpoint of %s unreachable: %s", provider.name, type(exc).__name__)
        raise TokenRefreshUnavailable(
            f"{provider.name}'s token endpoint could not be reached ({type(exc).__name__}); "
            "try again later."
        ) from None
    except ValueError:
        raise TokenError(f"{provider.name}'s token endpoint did not answer JSON.") from None
    access = result.get("access_token")
    if not access:
        raise TokenError(f"{provider.name} answered the refresh without an access token.")
    now = utcnow()
    values: dict[str, Any] = {"token_refreshed_at": now}
    # Authlib copies the old refresh token in when the answer has none: either way the value
    # written is the one to spend next time.
    if result.get("refresh_token") and result["refresh_token"] != row.refresh_token:
        values["refresh_token"] = result["refresh_token"]
    missing = kind == GRAPH and not _granted(result, GRAPH_MAIL_SEND)
    if kind == GRAPH and not missing:
        values["graph_access_token"] = access
        values["graph_token_expires_at"] = _expiry(result, now)
    elif kind == MAIL:
        values["access_token"] = access
        values["token_expires_at"] = _expiry(result, now)
        if result.get("scope"):
            scopes = result["scope"]
            values["token_scopes"] = (
                " ".join(scopes) if isinstance(scopes, (list, tuple)) else str(scopes)
            )
    session.execute(sa.update(MailAccount).where(MailAccount.id == account.id).values(**values))
    if missing:  # the caller commits the rotated refresh token before raising this
        raise GraphNotGranted(
            f"{provider.name} gave a Microsoft Graph token without Mail.Send for this account."
        )
    return str(access)


def _expiry(result: Mapping[str, Any], now: datetime) -> datetime | None:
    try:
        if result.get("expires_in") is not None:
            return now + timedelta(seconds=int(float(result["expires_in"])))
        if result.get("expires_at") is not None:
            return datetime.fromtimestamp(int(result["expires_at"]), tz=now.tzinfo)
    except (TypeError, ValueError):
        pass
    return None


def _remedy(provider: OAuthProvider, code: str) -> str:
    if code == NO_REFRESH_TOKEN:
        return f"{provider.name} gave no refresh token for this account. Sign in again."
    return (
        f"{provider.name} no longer accepts this account's sign-in (access was revoked, has "
        "expired or the password changed). Sign in again."
    )


def _mark_needs_reconnect(
    session: Session, account: MailAccount, row: _Row, provider: OAuthProvider, *, code: str
) -> str | None:
    """Wipe the tokens and mark the account; returns ``code`` when this is the transition (the
    signal fires once), ``None`` when it already needed reconnecting."""
    already = row.status == AccountStatus.NEEDS_RECONNECT
    session.execute(
        sa.update(MailAccount)
        .where(MailAccount.id == account.id)
        .values(
            status=AccountStatus.NEEDS_RECONNECT,
            last_error_code=code,
            last_error_message=_remedy(provider, code),
            last_checked_at=utcnow(),
            access_token=None,
            refresh_token=None,
            token_expires_at=None,
            graph_access_token=None,
            graph_token_expires_at=None,
        )
    )
    if already:
        return None
    email, owner_kind, owner_id = session.execute(
        sa.select(MailAccount.email, MailAccount.owner_kind, MailAccount.owner_id).where(
            MailAccount.id == account.id
        )
    ).one()
    event = audit.record(
        session, "needs_reconnect", actor=None, owner=(owner_kind, owner_id), email=email,
        ok=False, detail=code,
    )  # fmt: skip
    event.account_id = account.id
    return code


_MIRRORED = (
    "token_expires_at",
    "graph_token_expires_at",
    "token_refreshed_at",
    "token_scopes",
    "status",
    "last_error_code",
    "last_error_message",
    "last_checked_at",
)


def _mirror(session: Session, account_id: int) -> Any:
    columns = (getattr(MailAccount, name) for name in _MIRRORED)
    return session.execute(sa.select(*columns).where(MailAccount.id == account_id)).first()


def _sync_instance(account: MailAccount, values: Any) -> None:
    for name, value in zip(_MIRRORED, values, strict=True):
        set_committed_value(account, name, value)
    insp = sa.inspect(account)
    # never leave plaintext on the instance
    for name in ("access_token", "refresh_token", "graph_access_token"):
        if name in insp.dict:
            del insp.dict[name]


# -- revocation -------------------------------------------------------------------------------


def prepare_revocation(state: Runtime, account: MailAccount) -> Callable[[], bool]:
    """Read what revoking ``account``'s grant needs now; the returned call revokes it later.

    For :func:`~flask_mailconnect.accounts.disconnect`: the row is deleted and flushed first,
    then the grant is revoked, so a failed delete never leaves a "connected" account holding a
    dead token. The call returns what :func:`revoke_tokens` returns and never raises.
    """
    try:
        provider: OAuthProvider | None = _provider_for(account)
    except TokenError:
        provider = None
    found = state.session.execute(
        sa.select(MailAccount.refresh_token, MailAccount.access_token).where(
            MailAccount.id == account.id
        )
    ).first()
    token, hint = (None, None)
    if found is not None:
        token, hint = (found[0], "refresh_token") if found[0] else (found[1], "access_token")
    account_id = account.id

    def revoke() -> bool:
        if provider is None or not token or not hint:
            return False
        return _revoke_at_provider(state, provider, account_id, token, hint)

    return revoke


def _revoke_at_provider(
    state: Runtime, provider: OAuthProvider, account_id: int, token: str, hint: str
) -> bool:
    try:
        endpoint = _endpoints(state, provider).revoke
    except TokenError:
        return False
    if not endpoint:
        return False
    try:
        with _client(state, provider) as client:
            response = client.revoke_token(
                endpoint, token=token, token_type_hint=hint, timeout=_timeout(state)
            )
    except requests.RequestException as exc:
        log.warning(
            "Revoking the token of account %s at %s failed: %s",
            account_id, provider.name, type(exc).__name__,
        )  # fmt: skip
        return False
    revoked = response.ok or _already_invalid(response)
    if not revoked:
        log.warning(
            "Revoking the token of account %s at %s failed: HTTP %s",
            account_id, provider.name, response.status_code,
        )  # fmt: skip
    return revoked


def revoke_tokens(state: Runtime, account: MailAccount) -> bool:
    """Revoke the account's grant at the provider (RFC 7009), then wipe the tokens locally.

    Returns ``True`` when the provider confirmed (a 2xx answer, or ``invalid_token``: already
    dead). Returns ``False`` when it has no revocation endpoint (Microsoft) or the call failed
    (unreachable, timeout, 5xx): never raises for the provider's sake, so disconnecting always
    works; on ``False`` show the user the provider's ``access_settings_url`` to remove the app's
    access by hand. The local wipe is staged in the host's session (the caller commits, as with
    every function in accounts.py).
    """
    provider = _provider_for(account)
    query = sa.select(MailAccount.refresh_token, MailAccount.access_token).where(
        MailAccount.id == account.id
    )
    found = state.session.execute(query).first()
    revoked = False
    if found is not None and (found[0] or found[1]):
        hint = "refresh_token" if found[0] else "access_token"
        token = str(found[0] or found[1])
        revoked = _revoke_at_provider(state, provider, account.id, token, hint)
    if found is not None:
        state.session.execute(
            sa.update(MailAccount)
            .where(MailAccount.id == account.id)
            .values(
                access_token=None,
                refresh_token=None,
                token_expires_at=None,
                graph_access_token=None,
                graph_token_expires_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        set_committed_value(account, "token_expires_at", None)
        set_committed_value(account, "graph_token_expires_at", None)
    return revoked


def _already_invalid(response: requests.Response) -> bool:
    if response.status_code != 400:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, Mapping) and body.get("error") == "invalid_token"


__all__ = [
    "GRAPH_SCOPE",
    "GraphNotGranted",
    "NO_REFRESH_TOKEN",
    "TOKEN_REVOKED",
    "NeedsReconnect",
    "TokenError",
    "TokenRefreshUnavailable",
    "fresh_access_token",
    "fresh_graph_token",
    "mail_refresh_scope",
    "prepare_revocation",
    "revoke_tokens",
]
