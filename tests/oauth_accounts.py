"""Microsoft OAuth accounts on a host app, for the refresh tests and benchmarks/bench_refresh.py.

The host app (tests/hostapp.py) with the local Authlib OAuth server (tests/peers/oauth.py)
configured as Microsoft, an account holding the tokens that server issued, the server database
URLs from MAILCONNECT_TEST_DATABASE_URLS, and the waiting helpers the refresh crowds share.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from flask_mailconnect import MailAccount
from flask_mailconnect.models import utcnow
from tests import hostapp
from tests.conftest import cleaned_up, database_urls
from tests.peers.oauth import CLIENT_ID, CLIENT_SECRET, MICROSOFT

EMAIL = "alice@example.test"


def server_url(scheme: str) -> str | None:
    """The first URL in MAILCONNECT_TEST_DATABASE_URLS (spaces or commas between) starting
    with ``scheme`` (``"postgresql"``, ``"mysql"``), or None when it lists none."""
    return next((u for u in database_urls() if u.startswith(scheme)), None)


def engine_options(url: str) -> dict[str, Any]:
    """SQLALCHEMY_ENGINE_OPTIONS for a refresh crowd on ``url``: a pool of 5 without overflow,
    SQLite's busy wait, and REPEATABLE READ on PostgreSQL."""
    # waiters hold no connection: a small pool serves 20 threads (the holder needs two)
    options: dict[str, Any] = {"pool_size": 5, "max_overflow": 0}
    if url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 30}  # SQLite's busy wait, for queued writers
    elif url.startswith("postgresql"):
        # A host running REPEATABLE READ: without the refresh's own READ COMMITTED, waiters
        # would fail with "could not serialize access" after the first refresh commits.
        options["isolation_level"] = "REPEATABLE READ"
    return options


def oauth_config(server: Any, url: str) -> dict[str, Any]:
    """The host app's config for ``url`` with ``server`` (the local OAuth server) as the
    Microsoft provider, the engine options above, and loopback hosts allowed."""
    urls = server.urls(MICROSOFT)
    return {
        "MAILCONNECT_PROVIDERS": {
            "microsoft": {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "authorize_url": urls.authorize_url,
                "token_url": urls.token_url,
            }
        },
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url),
        "MAILCONNECT_ALLOW_PRIVATE_HOSTS": True,  # the OAuth server listens on loopback
    }


def app_on(url: str, server: Any, **config: Any) -> Iterator[Any]:
    """The host app on ``url`` with the local OAuth server as Microsoft (``config`` on top);
    its tables dropped after (server databases). A generator for fixtures to ``yield from``."""
    app, _ = hostapp.create_app(url, **{**oauth_config(server, url), **config})
    with cleaned_up(app):
        yield app


def add_oauth_account(
    app: Any, server: Any, expires_in: timedelta, email: str = EMAIL
) -> tuple[int, dict[str, Any]]:
    """A Microsoft account whose access token lasts ``expires_in`` more (negative: expired),
    with the tokens the server issued; its id and those tokens."""
    with app.app_context():
        issued = server.issue_token(email, client_id=CLIENT_ID, flavour=MICROSOFT)
        account = MailAccount(
            owner_kind="user", owner_id="1", provider=MICROSOFT, auth_method="oauth2",
            email=email, username=email, smtp_host="smtp.example.test", smtp_port=587,
            smtp_security="starttls", access_token=issued["access_token"],
            refresh_token=issued["refresh_token"], token_scopes=issued["scope"],
            token_expires_at=utcnow() + expires_in,
        )  # fmt: skip
        hostapp.db.session.add(account)
        hostapp.db.session.commit()
        account_id = int(account.id)
        hostapp.db.session.remove()
    return account_id, issued


def wait_until(predicate: Callable[[], object], timeout: float) -> bool:
    """Whether ``predicate()`` came true within ``timeout`` seconds (looked at every 20 ms)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def refresh_waiters(state: Any, account_id: int) -> int:
    """How many callers in this process wait for the account's refresh right now."""
    with state.refresh_gates_lock:
        gate = state.refresh_gates.get(account_id)
        return gate.users if gate is not None else 0
