"""Server-side storage for Authlib's half of a consent in progress.

Authlib keeps the PKCE ``code_verifier``, the OpenID ``nonce`` and the redirect URI of each flow
either in the Flask session (signed but readable cookie) or, given a ``cache``, in that cache
with only ``{"exp": ...}`` left in the session. This is that cache, in the extension's own table
``mailconnect_oauth_state`` (value encrypted like every secret), so the cookie carries no
verifier and a state is used once server-side: :meth:`DatabaseStateCache.get` takes the entry
(a replayed older cookie finds nothing).

Writes run in a short transaction of their own on the same engine, never in the host's
``db.session`` (the start request may never commit it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..columns import open_secret
from ..models import OAuthState, utcnow
from ..runtime import current_runtime


class DatabaseStateCache:
    """The ``get`` / ``set`` / ``delete`` cache interface Authlib's registry uses."""

    def _session(self) -> Session:
        return Session(bind=current_runtime().engine())

    def get(self, key: str) -> str | None:
        """Take the value: read and delete it in one transaction; only the caller whose
        delete removed the row gets it (two replays at once: one wins)."""
        with self._session() as session, session.begin():
            value = session.scalar(
                sa.select(OAuthState.value).where(
                    OAuthState.key == key, OAuthState.expires_at > utcnow()
                )
            )
            if value is None:
                return None
            gone = session.execute(sa.delete(OAuthState).where(OAuthState.key == key))
            return open_secret(value) if getattr(gone, "rowcount", 0) == 1 else None

    def set(self, key: str, value: str, timeout: int | None = None) -> None:
        now = utcnow()
        with self._session() as session, session.begin():
            session.execute(sa.delete(OAuthState).where(OAuthState.expires_at <= now))
            session.execute(sa.delete(OAuthState).where(OAuthState.key == key))
            session.add(
                OAuthState(
                    key=key, value=value, expires_at=now + timedelta(seconds=timeout or 3600)
                )
            )

    def delete(self, key: str) -> Any:
        with self._session() as session, session.begin():
            session.execute(sa.delete(OAuthState).where(OAuthState.key == key))


__all__ = ["DatabaseStateCache"]
