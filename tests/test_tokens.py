"""Access tokens: refresh before expiry, rotation, invalid_grant, outages, revocation.

Against the local OAuth server (example_app/oauth_provider.py) in its Google and Microsoft
shapes: no mocks between the extension and the token endpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, current_app

from flask_mailconnect import (
    AccountStatus,
    AuditEvent,
    MailAccount,
    NeedsReconnect,
    TokenError,
    TokenRefreshUnavailable,
    account_needs_reconnect,
    token_refreshed,
)
from flask_mailconnect.columns import open_secret
from flask_mailconnect.models import utcnow
from flask_mailconnect.oauth.refresh import fresh_access_token, graph_scope
from flask_mailconnect.oauth.revoke import revoke_tokens
from flask_mailconnect.providers import build_catalog
from tests import hostapp
from tests.conftest import cleaned_up, database_urls, db_label
from tests.oauth_flows import provider_config
from tests.peers import free_port
from tests.peers.oauth import CLIENT_ID, CLIENT_SECRET, GOOGLE, MICROSOFT

GRAPH_SCOPE = graph_scope(build_catalog({}).require("microsoft"))

EMAIL = "alice@example.test"


@pytest.fixture
def provider(oauth_provider: Any) -> Any:
    """The shared local OAuth server, its knobs and counters reset (tests/conftest_peers.py)."""
    return oauth_provider


#: The local OAuth server listens on loopback: the network guard must let it through.
LOOPBACK: dict[str, Any] = {"MAILCONNECT_ALLOW_PRIVATE_HOSTS": True}


@pytest.fixture(params=database_urls(), ids=db_label)
def tapp(request: pytest.FixtureRequest, provider: Any) -> Iterator[Flask]:
    """The host app on each test database, its providers at the local OAuth server."""
    url = request.param
    app, _ = hostapp.create_app(url, MAILCONNECT_PROVIDERS=provider_config(provider), **LOOPBACK)
    with cleaned_up(app):
        yield app


@pytest.fixture
def sqlite_app(provider: Any) -> Iterator[Flask]:
    app, _ = hostapp.create_app(MAILCONNECT_PROVIDERS=provider_config(provider), **LOOPBACK)
    with cleaned_up(app):
        yield app


def add_account(
    server: Any, flavour: str = GOOGLE, *, expires_in: timedelta = timedelta(hours=1)
) -> tuple[int, dict[str, Any]]:
    """An OAuth account holding a token pair minted by the server; returns (id, tokens)."""
    tokens = server.issue_token(EMAIL, client_id=CLIENT_ID, flavour=flavour)
    account = MailAccount(
        owner_kind="user",
        owner_id="1",
        provider=flavour,
        auth_method="oauth2",
        email=EMAIL,
        username=EMAIL,
        smtp_host="smtp.example.test",
        smtp_port=587,
        smtp_security="starttls",
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        token_expires_at=utcnow() + expires_in,
        token_scopes=tokens["scope"],
    )
    hostapp.db.session.add(account)
    hostapp.db.session.commit()
    return account.id, tokens


def state() -> Any:
    return current_app.extensions["mailconnect"]


def load(account_id: int) -> MailAccount:
    # End the host's transaction first: on MariaDB (REPEATABLE READ) an open one keeps showing
    # the rows as they were before the refresh committed on its own connection.
    hostapp.db.session.commit()
    account = hostapp.db.session.get(MailAccount, account_id)
    assert account is not None
    return account


def raw(account_id: int) -> Any:
    """The columns as stored (ciphertext for the tokens)."""
    hostapp.db.session.commit()
    return hostapp.db.session.execute(
        sa.text(
            "SELECT access_token, refresh_token, status FROM mailconnect_account WHERE id = :id"
        ),
        {"id": account_id},
    ).one()


def expire_now(account_id: int) -> None:
    """Let the stored access token run out (as time would)."""
    account = load(account_id)
    account.token_expires_at = utcnow() - timedelta(seconds=1)
    hostapp.db.session.commit()


def stored_tokens(account_id: int) -> tuple[str | None, str | None]:
    hostapp.db.session.commit()
    row = hostapp.db.session.execute(
        sa.select(MailAccount.access_token, MailAccount.refresh_token).where(
            MailAccount.id == account_id
        )
    ).one()
    return open_secret(row[0]), open_secret(row[1])  # read sealed, opened where used


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, sender: Any, **extra: Any) -> None:
        self.calls.append(extra)


@pytest.fixture
def refreshed() -> Iterator[Recorder]:
    rec = Recorder()
    token_refreshed.connect(rec)
    yield rec
    token_refreshed.disconnect(rec)


@pytest.fixture
def reconnects() -> Iterator[Recorder]:
    rec = Recorder()
    account_needs_reconnect.connect(rec)
    yield rec
    account_needs_reconnect.disconnect(rec)


# -- a valid token ------------------------------------------------------------------------------


def test_a_valid_token_is_returned_without_asking_the_provider(
    sqlite_app: Flask, provider: Any, refreshed: Recorder
) -> None:
    with sqlite_app.app_context():
        account_id, tokens = add_account(provider)
        token = fresh_access_token(state(), load(account_id))
        assert token == tokens["access_token"]
        assert provider.token_requests == 0 and refreshed.calls == []


# -- refresh before expiry ----------------------------------------------------------------------


def test_an_expiring_token_is_refreshed_and_the_rotated_refresh_token_stored_encrypted(
    tapp: Flask, provider: Any, refreshed: Recorder
) -> None:
    with tapp.app_context():
        account_id, old = add_account(provider, MICROSOFT, expires_in=timedelta(minutes=2))
        account = load(account_id)
        before = utcnow().replace(microsecond=0)

        token = fresh_access_token(state(), account)

        assert token != old["access_token"] and provider.token_active(token)
        assert provider.refresh_requests == 1
        access, refresh = stored_tokens(account_id)
        assert access == token and refresh not in (None, old["refresh_token"])
        stored = raw(account_id)  # encrypted at rest: the raw columns are not the tokens
        assert token not in stored[0] and refresh not in stored[1]
        again = load(account_id)
        assert again.status == AccountStatus.CONNECTED
        assert again.token_refreshed_at is not None and again.token_refreshed_at >= before
        assert again.token_expires_at is not None
        assert again.token_expires_at - utcnow() > timedelta(minutes=55)
        # the caller's own instance shows the new expiry too, without a reload
        assert account.token_expires_at == again.token_expires_at
        assert [c["account"].id for c in refreshed.calls] == [account_id]
        assert set(refreshed.calls[0]) == {"account", "actor"}  # nothing secret in the payload
        assert refreshed.calls[0]["actor"] is None  # the system refreshed it, nobody acted

        # the stored (rotated) refresh token is the one that works next time
        expire_now(account_id)
        assert fresh_access_token(state(), load(account_id)) != token
        assert provider.refresh_requests == 2
        assert load(account_id).status == AccountStatus.CONNECTED


def test_the_old_refresh_token_is_kept_when_the_provider_sends_none(
    sqlite_app: Flask, provider: Any
) -> None:
    provider.rotate_refresh_tokens[GOOGLE] = False  # Google's way: no new refresh token
    with sqlite_app.app_context():
        account_id, old = add_account(provider, GOOGLE, expires_in=timedelta(seconds=30))
        token = fresh_access_token(state(), load(account_id))
        assert token != old["access_token"] and provider.refresh_requests == 1
        assert stored_tokens(account_id) == (token, old["refresh_token"])
        # and it still works
        expire_now(account_id)
        fresh_access_token(state(), load(account_id))
        assert provider.refresh_requests == 2


def test_force_refreshes_a_valid_token_and_min_validity_decides_when(
    sqlite_app: Flask, provider: Any
) -> None:
    with sqlite_app.app_context():
        account_id, old = add_account(provider, GOOGLE, expires_in=timedelta(minutes=20))
        assert fresh_access_token(state(), load(account_id)) == old["access_token"]
        assert provider.refresh_requests == 0
        wanted = timedelta(minutes=30)
        token = fresh_access_token(state(), load(account_id), min_validity=wanted)
        assert token != old["access_token"] and provider.refresh_requests == 1
        forced = fresh_access_token(state(), load(account_id), force=True)
        assert forced not in (token, old["access_token"]) and provider.refresh_requests == 2


def test_microsoft_gets_the_granted_scopes_back_on_refresh(
    sqlite_app: Flask, provider: Any
) -> None:
    with sqlite_app.app_context():
        account_id, old = add_account(provider, MICROSOFT, expires_in=timedelta(0))
        fresh_access_token(state(), load(account_id))
        # the server answers with the scopes it granted for this refresh
        granted = set(load(account_id).token_scopes.split())
        assert granted <= set(old["scope"].split()) | {"offline_access"}
        assert "https://outlook.office.com/SMTP.Send" in granted


def test_microsoft_refresh_asks_for_one_resource_and_offline_access(
    sqlite_app: Flask, provider: Any
) -> None:
    """Even when the consent named Graph too (and the stored scopes say so), a refresh of the
    SMTP/IMAP token asks for Outlook's scopes only, plus offline_access (AADSTS28000 else)."""
    graph = "https://graph.microsoft.com/Mail.Send"
    with sqlite_app.app_context():
        account_id, _old = add_account(provider, MICROSOFT, expires_in=timedelta(0))
        stored = hostapp.db.session.get(MailAccount, account_id)
        assert stored is not None
        stored.token_scopes = f"openid email {graph} https://outlook.office.com/SMTP.Send"
        hostapp.db.session.commit()
        fresh_access_token(state(), load(account_id))
        [scope] = provider.requested_scopes
        assert scope is not None
        assert set(scope.split()) == {"https://outlook.office.com/SMTP.Send", "offline_access"}
        assert load(account_id).status == AccountStatus.CONNECTED


def test_microsoft_refuses_a_refresh_for_two_resources(provider: Any) -> None:
    """The local server plays Microsoft: one token per resource (the extension relies on it)."""
    from tests.peers.oauth import refresh

    tokens = provider.issue_token(
        EMAIL, client_id=CLIENT_ID, flavour=MICROSOFT,
        scope=f"{MICROSOFT_MAIL} offline_access https://graph.microsoft.com/Mail.Send",
    )  # fmt: skip
    both = f"{MICROSOFT_MAIL} https://graph.microsoft.com/Mail.Send offline_access"
    answer = refresh(provider, tokens["refresh_token"], MICROSOFT, scope=both)
    assert answer.status_code == 400 and "AADSTS28000" in answer.json()["error_description"]
    graph = refresh(provider, tokens["refresh_token"], MICROSOFT, scope=GRAPH_SCOPE).json()
    assert provider.token_info(graph["access_token"])["audience"] == "https://graph.microsoft.com"
    assert "outlook" not in graph["scope"]


# -- Microsoft Graph: its own token, from the one refresh token --------------------------------

MICROSOFT_MAIL = "https://outlook.office.com/SMTP.Send"


def add_graph_account(server: Any, *, mail_send: bool = True) -> tuple[int, dict[str, Any]]:
    scope = f"openid email offline_access {MICROSOFT_MAIL}"
    if mail_send:
        scope += " https://graph.microsoft.com/Mail.Send"
    tokens = server.issue_token(EMAIL, client_id=CLIENT_ID, flavour=MICROSOFT, scope=scope)
    account = MailAccount(
        owner_kind="user", owner_id="1", provider=MICROSOFT, auth_method="oauth2", email=EMAIL,
        username=EMAIL, smtp_host="smtp.example.test", smtp_port=587, smtp_security="starttls",
        access_token=tokens["access_token"], refresh_token=tokens["refresh_token"],
        token_expires_at=utcnow() + timedelta(hours=1), token_scopes=tokens["scope"],
    )  # fmt: skip
    hostapp.db.session.add(account)
    hostapp.db.session.commit()
    return account.id, tokens


@pytest.fixture
def graph_app(provider: Any) -> Iterator[Flask]:
    config = provider_config(provider)
    config["microsoft"]["graph_url"] = "https://graph.example.test/v1.0"
    config["microsoft"]["scopes"] = ["https://graph.microsoft.com/Mail.Send"]
    app, _ = hostapp.create_app(MAILCONNECT_PROVIDERS=config, **LOOPBACK)
    with cleaned_up(app):
        yield app


def test_graph_token_is_a_separate_token_for_graph(graph_app: Flask, provider: Any) -> None:
    from flask_mailconnect.oauth.refresh import fresh_graph_token

    with graph_app.app_context():
        account_id, old = add_graph_account(provider)
        mail_token = fresh_access_token(state(), load(account_id))
        assert mail_token == old["access_token"]  # still valid: untouched
        graph = fresh_graph_token(state(), load(account_id))
        assert graph != mail_token
        assert provider.token_info(graph)["audience"] == "https://graph.microsoft.com"
        assert provider.token_info(mail_token)["audience"] == "https://outlook.office.com"
        assert provider.requested_scopes == [GRAPH_SCOPE]
        # The rotated refresh token was kept, and the mail token still refreshes with it.
        assert fresh_graph_token(state(), load(account_id)) == graph  # cached, no request
        fresh_access_token(state(), load(account_id), force=True)
        assert provider.refresh_requests == 2
        assert load(account_id).status == AccountStatus.CONNECTED
        raw = hostapp.db.session.execute(
            sa.text("SELECT graph_access_token FROM mailconnect_account")
        ).scalar_one()
        assert graph not in raw  # encrypted at rest


def test_graph_not_consented_leaves_the_account_connected(graph_app: Flask, provider: Any) -> None:
    from flask_mailconnect.exceptions import GraphNotGranted
    from flask_mailconnect.oauth.refresh import fresh_graph_token

    with graph_app.app_context():
        account_id, _old = add_graph_account(provider, mail_send=False)
        with pytest.raises(GraphNotGranted):
            fresh_graph_token(state(), load(account_id))
        account = load(account_id)
        assert account.status == AccountStatus.CONNECTED and account.graph_token_expires_at is None
        fresh_access_token(state(), account, force=True)  # the grant still works


# -- invalid_grant: the owner must sign in again -----------------------------------------------


def test_a_revoked_grant_marks_the_account_needs_reconnect_once(
    tapp: Flask, provider: Any, reconnects: Recorder, refreshed: Recorder
) -> None:
    with tapp.app_context():
        account_id, _ = add_account(provider, GOOGLE, expires_in=timedelta(seconds=10))
        provider.revoke_user(EMAIL)  # the user removed the app's access at Google

        with pytest.raises(NeedsReconnect, match="Sign in again"):
            fresh_access_token(state(), load(account_id))
        account = load(account_id)
        assert account.status == AccountStatus.NEEDS_RECONNECT
        assert account.last_error_code == "token_revoked"
        assert "Sign in again" in (account.last_error_message or "")
        assert stored_tokens(account_id) == (None, None)
        assert raw(account_id)[:2] == (None, None)
        assert [(c["account"].id, c["reason"]) for c in reconnects.calls] == [
            (account_id, "token_revoked")
        ]
        events = hostapp.db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "needs_reconnect")
        ).all()
        assert [(e.account_id, e.outcome, e.detail) for e in events] == [
            (account_id, "failed", "token_revoked")
        ]

        # asked again (another worker, a later job): same answer, no provider call, no signal
        requests_before = provider.token_requests
        with pytest.raises(NeedsReconnect):
            fresh_access_token(state(), load(account_id), force=True)
        assert provider.token_requests == requests_before
        assert len(reconnects.calls) == 1 and refreshed.calls == []
        assert load(account_id).last_error_code == "token_revoked"


def test_spending_a_rotated_refresh_token_again_is_invalid_grant(
    sqlite_app: Flask, provider: Any, reconnects: Recorder
) -> None:
    with sqlite_app.app_context():
        account_id, old = add_account(provider, MICROSOFT, expires_in=timedelta(0))
        fresh_access_token(state(), load(account_id))
        # a stale copy of the old refresh token comes back (what the row lock prevents)
        account = load(account_id)
        account.refresh_token = old["refresh_token"]
        hostapp.db.session.commit()

        with pytest.raises(NeedsReconnect):
            fresh_access_token(state(), load(account_id), force=True)
        assert load(account_id).status == AccountStatus.NEEDS_RECONNECT
        assert len(reconnects.calls) == 1


# -- outages: nothing changes, try again later --------------------------------------------------


def test_a_5xx_from_the_token_endpoint_changes_nothing_and_is_retryable(
    tapp: Flask, provider: Any, reconnects: Recorder, refreshed: Recorder
) -> None:
    with tapp.app_context():
        account_id, old = add_account(provider, MICROSOFT, expires_in=timedelta(0))
        provider.fail_token_endpoint_with(503)
        with pytest.raises(TokenRefreshUnavailable, match="503"):
            fresh_access_token(state(), load(account_id))
        account = load(account_id)
        assert account.status == AccountStatus.CONNECTED and account.last_error_code is None
        assert stored_tokens(account_id) == (old["access_token"], old["refresh_token"])
        assert reconnects.calls == [] and refreshed.calls == []

        provider.fail_token_endpoint_with(None)  # back: the retry works
        assert fresh_access_token(state(), load(account_id)) != old["access_token"]
        assert len(refreshed.calls) == 1


def test_an_unreachable_token_endpoint_is_retryable(provider: Any) -> None:
    dead = f"http://127.0.0.1:{free_port()}/token"
    config = provider_config(provider)
    config["google"]["token_url"] = dead
    app, _ = hostapp.create_app(
        MAILCONNECT_PROVIDERS=config, MAILCONNECT_CONNECT_TIMEOUT=2, **LOOPBACK
    )
    with app.app_context():
        account_id, old = add_account(provider, GOOGLE, expires_in=timedelta(0))
        with pytest.raises(TokenRefreshUnavailable, match="could not be reached"):
            fresh_access_token(state(), load(account_id))
        assert load(account_id).status == AccountStatus.CONNECTED
        assert stored_tokens(account_id) == (old["access_token"], old["refresh_token"])
        hostapp.db.session.remove()


def test_a_wrong_client_secret_is_a_token_error_not_a_reconnect(
    provider: Any, reconnects: Recorder
) -> None:
    config = provider_config(provider)
    config["google"]["client_secret"] = "wrong"
    app, _ = hostapp.create_app(MAILCONNECT_PROVIDERS=config, **LOOPBACK)
    with app.app_context():
        account_id, _ = add_account(provider, GOOGLE, expires_in=timedelta(0))
        with pytest.raises(TokenError) as caught:
            fresh_access_token(state(), load(account_id))
        assert type(caught.value) is TokenError and caught.value.error == "invalid_client"
        assert load(account_id).status == AccountStatus.CONNECTED and reconnects.calls == []
        hostapp.db.session.remove()


def test_a_password_account_has_no_token(sqlite_app: Flask) -> None:
    with sqlite_app.app_context():
        account = MailAccount(
            owner_kind="user", owner_id="1", email=EMAIL, username=EMAIL, password="pw",
            smtp_host="smtp.example.test", smtp_port=587, smtp_security="starttls",
        )  # fmt: skip
        hostapp.db.session.add(account)
        hostapp.db.session.commit()
        with pytest.raises(TokenError, match="OAuth"):
            fresh_access_token(state(), account)


# -- server metadata --------------------------------------------------------------------------


def test_endpoints_from_server_metadata_are_fetched_once_per_app(provider: Any) -> None:
    urls = provider.urls(MICROSOFT)
    acme = {
        "name": "Acme Mail", "auth": "oauth2", "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET, "server_metadata_url": urls.metadata_url,
        "smtp": {"host": "smtp.acme.example", "port": 587, "security": "starttls"},
    }  # fmt: skip
    app, _ = hostapp.create_app(
        MAILCONNECT_PROVIDERS=provider_config(provider, acme=acme), **LOOPBACK
    )
    with app.app_context():
        account_id, old = add_account(provider, MICROSOFT, expires_in=timedelta(0))
        account = load(account_id)
        account.provider = "acme"
        hostapp.db.session.commit()
        token = fresh_access_token(state(), load(account_id))
        assert token != old["access_token"] and provider.refresh_requests == 1
        cache = app.extensions["mailconnect"].oauth_metadata  # the app's runtime holds it
        meta = cache.get(urls.metadata_url)
        assert meta is not None and meta["token_endpoint"] == urls.token_url
        meta["token_endpoint"] = urls.token_url + "?cached=1"  # reused while fresh
        fresh_access_token(state(), load(account_id), force=True)
        assert provider.refresh_requests == 2
        # After METADATA_TTL the document is read again (an expired entry pointing nowhere).
        cache.put(urls.metadata_url, {"token_endpoint": "http://127.0.0.1:9/x"}, ttl=-1)
        fresh_access_token(state(), load(account_id), force=True)
        assert provider.refresh_requests == 3
        hostapp.db.session.remove()


# -- revocation ---------------------------------------------------------------------------------


def test_revoke_at_google_kills_the_token_and_wipes_it_here(
    sqlite_app: Flask, provider: Any
) -> None:
    with sqlite_app.app_context():
        account_id, tokens = add_account(provider, GOOGLE)
        assert provider.token_active(tokens["access_token"])
        assert revoke_tokens(state(), load(account_id)) is True
        hostapp.db.session.commit()
        assert not provider.token_active(tokens["access_token"])
        assert stored_tokens(account_id) == (None, None)


def test_revoke_at_microsoft_is_not_possible_and_says_so(sqlite_app: Flask, provider: Any) -> None:
    with sqlite_app.app_context():
        account_id, tokens = add_account(provider, MICROSOFT)
        assert revoke_tokens(state(), load(account_id)) is False
        hostapp.db.session.commit()
        assert provider.token_active(tokens["access_token"])  # only the user can remove it
        assert stored_tokens(account_id) == (None, None)


def test_revoke_when_google_is_down_returns_false_and_still_wipes(
    sqlite_app: Flask, provider: Any
) -> None:
    config = provider_config(provider)
    config["google"]["revoke_url"] = f"http://127.0.0.1:{free_port()}/revoke"
    sqlite_app.config["MAILCONNECT_PROVIDERS"] = config
    with sqlite_app.app_context():
        account_id, tokens = add_account(provider, GOOGLE)
        assert revoke_tokens(state(), load(account_id)) is False
        hostapp.db.session.commit()
        assert stored_tokens(account_id) == (None, None)


# -- never in logs ------------------------------------------------------------------------------


def test_tokens_never_reach_the_logs(
    sqlite_app: Flask, provider: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("authlib", "urllib3", "requests", "flask_mailconnect", "werkzeug"):
        caplog.set_level(logging.DEBUG, logger=name)
    seen: list[str] = []
    with sqlite_app.app_context():
        account_id, old = add_account(provider, MICROSOFT, expires_in=timedelta(0))
        seen += [old["access_token"], old["refresh_token"]]
        fresh_access_token(state(), load(account_id))
        seen += [t for t in stored_tokens(account_id) if t]
        provider.fail_token_endpoint_with(500)
        with pytest.raises(TokenRefreshUnavailable) as outage:
            fresh_access_token(state(), load(account_id), force=True)
        provider.fail_token_endpoint_with(None)
        provider.revoke_user(EMAIL)
        with pytest.raises(NeedsReconnect) as revoked:
            fresh_access_token(state(), load(account_id), force=True)
        google_id, google = add_account_for_other(provider)
        seen += [google["access_token"], google["refresh_token"]]
        revoke_tokens(state(), load(google_id))
        hostapp.db.session.commit()
    assert "Refreshed the access token" in caplog.text  # the logs did capture our lines
    for secret in seen:
        assert secret not in caplog.text
        assert secret not in str(outage.value) and secret not in str(revoked.value)


def add_account_for_other(server: Any) -> tuple[int, dict[str, Any]]:
    tokens = server.issue_token("bob@example.test", client_id=CLIENT_ID, flavour=GOOGLE)
    account = MailAccount(
        owner_kind="user", owner_id="2", provider=GOOGLE, auth_method="oauth2",
        email="bob@example.test", username="bob@example.test", smtp_host="smtp.example.test",
        smtp_port=587, smtp_security="starttls", access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"], token_expires_at=utcnow() + timedelta(hours=1),
    )  # fmt: skip
    hostapp.db.session.add(account)
    hostapp.db.session.commit()
    return account.id, tokens


def test_disconnect_revokes_only_after_the_row_is_gone(sqlite_app: Flask, provider: Any) -> None:
    """A delete that fails leaves the account as it was, its grant still alive at Google."""
    from flask_mailconnect import accounts

    def refuse(*_args: Any) -> None:
        raise RuntimeError("the database refused the delete")

    with sqlite_app.app_context():
        account_id, tokens = add_account(provider, GOOGLE)
        sa.event.listen(MailAccount, "before_delete", refuse)
        try:
            with pytest.raises(RuntimeError):
                accounts.disconnect(state(), load(account_id), actor=None)
        finally:
            sa.event.remove(MailAccount, "before_delete", refuse)
        hostapp.db.session.rollback()
        assert provider.token_active(tokens["access_token"])  # not revoked
        assert load(account_id).status == AccountStatus.CONNECTED
        accounts.disconnect(state(), load(account_id), actor=None)
        hostapp.db.session.commit()
        assert not provider.token_active(tokens["access_token"])  # revoked once deleted
        assert hostapp.db.session.get(MailAccount, account_id) is None
