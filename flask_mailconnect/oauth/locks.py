"""The account row under a lock, in a transaction of its own (see :mod:`.refresh`).

:func:`locked` opens a private session on the engine (never the host's ``db.session``), takes
the row lock the backend offers (``SELECT ... FOR UPDATE`` at READ COMMITTED on PostgreSQL and
MariaDB; SQLite's write lock), yields the row's token columns and commits on success.
:func:`mirror_row` / :func:`sync_instance` copy what was committed onto the caller's instance
without marking it dirty and without leaving plaintext tokens on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from ..columns import open_secret
from ..exceptions import TokenError, TokenRefreshUnavailable
from ..models import MailAccount, utcnow
from ..runtime import Runtime

#: Which access token of an account: the SMTP/IMAP one ("mail") or the Graph one ("graph").
MAIL = "mail"
GRAPH = "graph"


@dataclass
class Row:
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


def read_row(session: Session, account_id: int, *, lock: bool) -> Row:
    query = sa.select(*_COLUMNS).where(MailAccount.id == account_id)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).first()
    if row is None:
        raise TokenError(
            f"Account {account_id} is not in the database (was it committed? token refresh "
            "runs in a transaction of its own)."
        )
    values = dict(row._mapping)
    for name in ("access_token", "refresh_token", "graph_access_token"):
        values[name] = open_secret(values[name])  # decrypted here, never in a logged row
    return Row(**values)


def engine_of(state: Runtime) -> sa.Engine:
    bind = state.session.get_bind(mapper=sa.inspect(MailAccount))
    return bind if isinstance(bind, sa.Engine) else bind.engine


@contextmanager
def locked(state: Runtime, account_id: int) -> Iterator[tuple[Session, Row]]:
    """A private session holding the account row's lock; commits on success."""
    engine = engine_of(state)
    single = isinstance(engine.pool, (StaticPool, SingletonThreadPool))
    guard = state.single_connection if single else nullcontext()
    with guard, Session(bind=engine, expire_on_commit=False, autoflush=False) as session:
        dialect = engine.dialect.name
        try:
            if dialect in ("postgresql", "mysql", "mariadb"):
                # Hosts may run REPEATABLE READ or SERIALIZABLE: after waiting for the lock,
                # this transaction must see the token the previous holder committed
                # (PostgreSQL would otherwise fail with a serialization error).
                session.connection(execution_options={"isolation_level": "READ COMMITTED"})
            if dialect == "postgresql":
                wait = max(30, int(state.transport_options().timeout * 3))
                session.execute(sa.text(f"SET LOCAL lock_timeout = '{wait}s'"))
            elif dialect == "sqlite":  # take the database write lock first (BEGIN IMMEDIATE)
                session.execute(
                    sa.text("UPDATE mailconnect_account SET id = id WHERE id = :id"),
                    {"id": account_id},
                )
            row = read_row(session, account_id, lock=True)
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


def mirror_row(session: Session, account_id: int) -> Any:
    columns = (getattr(MailAccount, name) for name in _MIRRORED)
    return session.execute(sa.select(*columns).where(MailAccount.id == account_id)).first()


def sync_instance(account: MailAccount, values: Any) -> None:
    for name, value in zip(_MIRRORED, values, strict=True):
        set_committed_value(account, name, value)
    insp = sa.inspect(account)
    # never leave plaintext on the instance
    for name in ("access_token", "refresh_token", "graph_access_token"):
        if name in insp.dict:
            del insp.dict[name]
