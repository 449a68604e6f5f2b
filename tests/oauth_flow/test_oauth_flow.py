"""The OAuth consent flow through the pages, against the real local OAuth server.

The test client plays the browser: it posts "Connect with ...", follows the redirect to the local
provider (over HTTP with requests, as a browser would), consents there, and brings the code back
to our callback. Test connection then logs in with XOAUTH2 to aiosmtpd and Dovecot, which check
the token by introspection at the same provider.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import MailAccount, account_connected, account_updated
from flask_mailconnect.columns import open_secret
from tests import hostapp
from tests.conftest import login
from tests.oauth_flows import (
    EMAIL,
    EXTERNAL,
    assert_nothing_connected,
    back,
    connect,
    consent,
    csrf,
    error_page,
    raw_tokens,
    rows,
    start,
    tokens_of,
)
from tests.peers.oauth import CLIENT_SECRET


class Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, sender: Any, **extra: Any) -> None:
        self.calls.append(extra)


@pytest.fixture
def signals(app: Flask) -> Iterator[dict[str, Recorder]]:
    found = {"connected": Recorder(), "updated": Recorder()}
    account_connected.connect(found["connected"], app)
    account_updated.connect(found["updated"], app)
    yield found
    account_connected.disconnect(found["connected"], app)
    account_updated.disconnect(found["updated"], app)


# -- start -----------------------------------------------------------------------------------


def test_start_redirects_with_state_pkce_and_google_params(client: FlaskClient, server: Any):
    login(client, 1)
    response = start(client)
    assert response.status_code == 302
    url = urlsplit(response.headers["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == server.google.authorize_url
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 20
    assert query["access_type"] == "offline" and query["prompt"] == "consent"
    assert set(query["scope"].split()) == {"openid", "email", "https://mail.google.com/"}
    assert query["redirect_uri"] == f"{EXTERNAL}/email/oauth/google/callback"
    assert query["nonce"]
    # A second start gets a new state and a new challenge.
    again = dict(parse_qs(urlsplit(start(client).headers["Location"]).query))
    assert again["state"][0] != query["state"]
    assert again["code_challenge"][0] != query["code_challenge"]


def test_start_is_a_post_with_csrf(client: FlaskClient):
    login(client, 1)
    assert client.get("/email/oauth/google/start").status_code == 405
    assert client.post("/email/oauth/google/start").status_code == 400
    assert (
        client.post("/email/oauth/nope/start", data={"csrf_token": csrf(client)}).status_code == 404
    )


def test_abandoned_flows_do_not_pile_up_in_the_session(client: FlaskClient, app: Flask):
    login(client, 1)
    first = start(client).headers["Location"]
    for _ in range(7):
        start(client)
    with client.session_transaction() as sess:
        ours = sess["mailconnect.oauth"]
        authlib = [k for k in sess if k.startswith("_state_mailconnect_")]
    assert len(ours) == 5 and len(authlib) == 5
    page = error_page(back(client, consent(first)))  # the oldest was forgotten
    assert "expired or was already used" in page
    assert_nothing_connected(app)


def test_index_offers_one_button_per_provider(client: FlaskClient):
    login(client, 1)
    page = client.get("/email/").get_data(as_text=True)
    assert "Connect with Google" in page and "Connect with Microsoft" in page
    assert 'action="/email/oauth/google/start"' in page


def test_redirect_uri_never_comes_from_the_request(client: FlaskClient, app: Flask):
    app.config["MAILCONNECT_EXTERNAL_URL"] = None
    login(client, 1)
    response = client.post("/email/oauth/google/start", data={"csrf_token": csrf(client)})
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "not set up yet" in page and "MAILCONNECT_EXTERNAL_URL" in page
    assert "Try again" not in page
    # With SERVER_NAME, the URI uses it, never the Host the request came with.
    from flask_mailconnect.oauth.client import redirect_uri
    from flask_mailconnect.providers import current_catalog

    app.config["SERVER_NAME"] = "crm.example"
    with app.test_request_context("/email/", headers={"Host": "evil.example"}):
        google = current_catalog().oauth()["google"]
        assert redirect_uri(google) == "http://crm.example/email/oauth/google/callback"


# -- connect ---------------------------------------------------------------------------------


def test_connect_with_google(client: FlaskClient, app: Flask, server: Any, signals: Any):
    login(client, 1)
    response = connect(client)
    assert response.status_code == 302
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    [account] = rows(app)
    assert response.headers["Location"] == f"/email/accounts/{account.id}"
    assert (account.auth_method, account.provider) == ("oauth2", "google")
    assert account.email == account.username == EMAIL
    assert account.owner == ("user", "1")
    assert account.status == "connected" and account.last_success_at is not None
    assert "https://mail.google.com/" in account.token_scopes.split()
    assert account.token_expires_at is not None
    access, refresh = tokens_of(app, account.id)
    assert server.token_active(access)
    [(raw_access, raw_refresh)] = raw_tokens(app)
    assert access not in raw_access and refresh not in raw_refresh  # encrypted at rest
    assert len(signals["connected"].calls) == 1 and signals["updated"].calls == []
    assert signals["connected"].calls[0]["account"].id == account.id
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Connected with Google" in page and EMAIL in page
    assert "Connection works" in page  # Test connection ran: XOAUTH2 to aiosmtpd and Dovecot
    assert "Update password" not in page and 'name="smtp_host"' not in page
    assert access not in page and refresh not in page
    # Test connection again from the account page.
    tested = client.post(
        f"/email/accounts/{account.id}/oauth/test", data={"csrf_token": csrf(client)}
    )
    assert tested.status_code == 302
    page = client.get(tested.headers["Location"]).get_data(as_text=True)
    assert "Connection works" in page  # (flashes show in the host's layout, not ours)
    assert page.count('class="mc-result-row mc-result-row--ok"') == 2


def test_connect_with_microsoft(client: FlaskClient, app: Flask, signals: Any):
    login(client, 1)
    started = start(client, "microsoft")
    query = parse_qs(urlsplit(started.headers["Location"]).query)
    assert "offline_access" in query["scope"][0].split()
    assert "https://outlook.office.com/SMTP.Send" in query["scope"][0].split()
    response = back(client, consent(started.headers["Location"]))
    assert response.status_code == 302
    [account] = rows(app)
    assert account.provider == "microsoft" and account.status == "connected"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Connected with Microsoft" in page and "Connection works" in page


# -- error paths: a clear page, Try again, nothing left behind --------------------------------


def test_denied_consent(client: FlaskClient, app: Flask):
    login(client, 1)
    started = start(client)
    page = error_page(back(client, consent(started.headers["Location"], action="deny")))
    assert "You did not allow access" in page and "Nothing was connected" in page
    assert_nothing_connected(app)


def test_missing_refresh_token(client: FlaskClient, app: Flask, server: Any):
    server.omit_refresh_token = True
    login(client, 1)
    page = error_page(connect(client))
    assert "did not grant offline access" in page
    assert "https://myaccount.google.com/connections" in page
    assert_nothing_connected(app)


def test_no_email(client: FlaskClient, app: Flask, server: Any):
    server.omit_email = True
    login(client, 1)
    page = error_page(connect(client))
    assert "did not share your email address" in page
    assert_nothing_connected(app)


def test_token_endpoint_error(client: FlaskClient, app: Flask, server: Any):
    login(client, 1)
    started = start(client)
    location = consent(started.headers["Location"])
    server.fail_token_endpoint_with(400)
    page = error_page(back(client, location))
    assert "could not complete the sign-in" in page
    assert_nothing_connected(app)


def test_state_mismatch_and_replay(client: FlaskClient, app: Flask):
    login(client, 1)
    started = start(client)
    location = consent(started.headers["Location"])
    forged = re.sub(r"state=[^&]+", "state=forged", location)
    page = error_page(back(client, forged))
    assert "expired or was already used" in page
    assert_nothing_connected(app)
    assert back(client, location).status_code == 302  # the real one still works, once
    [account] = rows(app)
    page = error_page(back(client, location))  # replayed
    assert "expired or was already used" in page
    assert [a.id for a in rows(app)] == [account.id]


def test_state_of_one_provider_refused_at_another(client: FlaskClient, app: Flask):
    login(client, 1)
    location = consent(start(client, "google").headers["Location"])
    mixed = location.replace("/oauth/google/", "/oauth/microsoft/")
    page = error_page(back(client, mixed))
    assert "expired or was already used" in page
    assert_nothing_connected(app)


def test_flow_of_another_person_refused(app: Flask, client: FlaskClient):
    login(client, 1)
    location = consent(start(client).headers["Location"])
    login(client, 2)  # same browser, someone else signed in meanwhile
    page = error_page(back(client, location))
    assert "expired or was already used" in page
    assert_nothing_connected(app)


def test_address_connected_by_someone_else(client: FlaskClient, app: Flask):
    login(client, 2)
    assert connect(client).status_code == 302
    [bobs] = rows(app)
    login(client, 1)
    page = error_page(connect(client))
    assert "already connected by someone else" in page and EMAIL in page
    assert [a.id for a in rows(app)] == [bobs.id]


# -- next --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
     "/email/\r\nLocation: x"],
)  # fmt: skip
def test_open_redirect_next_refused(client: FlaskClient, app: Flask, target: str):
    login(client, 1)
    response = connect(client, next=target)
    [account] = rows(app)
    assert response.headers["Location"] == f"/email/accounts/{account.id}"


def test_next_on_this_site_followed(client: FlaskClient):
    login(client, 1)
    assert connect(client, next="/email/?from=crm").headers["Location"] == "/email/?from=crm"


# -- reconnect and disconnect -----------------------------------------------------------------


def test_reconnect_keeps_the_account(client: FlaskClient, app: Flask, server: Any, signals: Any):
    login(client, 1)
    connect(client)
    [account] = rows(app)
    old_access, _ = tokens_of(app, account.id)
    stored = hostapp.db.session.get(MailAccount, account.id)
    assert stored is not None
    stored.display_name = "Alice Sales"
    stored.signature_html = "<p>Alice</p>"
    # The access token is due, and meanwhile the person removed the app's access.
    stored.token_expires_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    hostapp.db.session.commit()
    server.revoke_user(EMAIL)
    tested = client.post(
        f"/email/accounts/{account.id}/oauth/test", data={"csrf_token": csrf(client)}
    )
    assert tested.status_code == 302
    assert rows(app)[0].status == "needs_reconnect"
    page = client.get(f"/email/accounts/{account.id}").get_data(as_text=True)
    assert "no longer accepts this connection" in page and "Sign in again" in page
    response = connect(client, account_id=account.id)
    assert response.status_code == 302
    [again] = rows(app)
    assert again.id == account.id and again.display_name == "Alice Sales"
    assert again.signature_html == "<p>Alice</p>" and again.status == "connected"
    new_access, _ = tokens_of(app, account.id)
    assert new_access != old_access and server.token_active(new_access)
    assert len(signals["connected"].calls) == 1  # the first connect only
    assert [c["changes"] for c in signals["updated"].calls] == [{"credentials"}]


def test_reconnect_with_another_address_changes_nothing(client: FlaskClient, app: Flask):
    login(client, 1)
    connect(client)
    [account] = rows(app)
    before = tokens_of(app, account.id)
    page = error_page(connect(client, email="someone.else@example.com", account_id=account.id))
    assert "signed in with a different address" in page and "someone.else@example.com" in page
    assert tokens_of(app, account.id) == before
    assert [a.email for a in rows(app)] == [EMAIL]


def test_connecting_an_address_again_is_a_reconnect(client: FlaskClient, app: Flask, signals: Any):
    login(client, 1)
    connect(client)
    connect(client)
    assert len(rows(app)) == 1
    assert len(signals["connected"].calls) == 1 and len(signals["updated"].calls) == 1


def test_disconnect_revokes_at_google(client: FlaskClient, app: Flask, server: Any):
    login(client, 1)
    connect(client)
    [account] = rows(app)
    access, _ = tokens_of(app, account.id)
    page = client.get(f"/email/accounts/{account.id}/disconnect").get_data(as_text=True)
    assert "revoked at Google first" in page
    response = client.post(
        f"/email/accounts/{account.id}/disconnect", data={"csrf_token": csrf(client)}
    )
    assert response.status_code == 302
    assert not server.token_active(access)
    assert_nothing_connected(app)


def test_disconnect_microsoft_tells_where_to_remove_access(client: FlaskClient, app: Flask):
    login(client, 1)
    connect(client, "microsoft")
    [account] = rows(app)
    page = client.get(f"/email/accounts/{account.id}/disconnect").get_data(as_text=True)
    assert "Microsoft cannot revoke this app's access" in page
    assert "https://myapps.microsoft.com" in page
    client.post(f"/email/accounts/{account.id}/disconnect", data={"csrf_token": csrf(client)})
    with client.session_transaction() as sess:
        flashes = [text for _category, text in sess.get("_flashes", [])]
    assert any("remove it at https://myapps.microsoft.com" in text for text in flashes)
    assert_nothing_connected(app)


# -- nothing secret in the logs ----------------------------------------------------------------


def test_no_token_or_verifier_in_log_records(
    client: FlaskClient, app: Flask, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    for name in ("authlib", "flask_mailconnect", "urllib3", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    login(client, 1)
    started = start(client)
    import json

    from flask_mailconnect.models import OAuthState

    [stored] = hostapp.db.session.scalars(sa.select(OAuthState.value))  # server-side, not cookie
    verifier = json.loads(open_secret(stored) or "")["data"]["code_verifier"]
    response = back(client, consent(started.headers["Location"]))
    assert response.status_code == 302
    [account] = rows(app)
    client.post(f"/email/accounts/{account.id}/oauth/test", data={"csrf_token": csrf(client)})
    access, refresh = tokens_of(app, account.id)
    text = "\n".join(
        f"{r.name} {r.getMessage()} {r.args!r} {getattr(r, 'exc_text', '')}" for r in caplog.records
    )
    assert caplog.records, "DEBUG logging captured nothing: the check would prove nothing"
    for secret in (verifier, access, refresh, CLIENT_SECRET):
        assert secret not in text


def test_failing_test_keeps_the_connection_and_explains_graph(
    client: FlaskClient, app: Flask, server: Any, smtp_starttls: Any
):
    """SMTP AUTH off for the mailbox (535 5.7.139): still connected, status "error", and the
    page names the remedy (Microsoft Graph Mail.Send, or Authenticated SMTP)."""
    disabled = smtp_starttls.auth_disabled_user
    login(client, 1)
    response = connect(client, "microsoft", email=disabled)
    assert response.status_code == 302
    [account] = rows(app)
    assert account.email == disabled and account.status == "error"
    assert account.last_error_code == "smtp_auth_disabled" and account.send_via == "smtp"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Connection failed" in page and "Microsoft Graph (Mail.Send)" in page
    access, refresh = tokens_of(app, account.id)
    assert access not in page and refresh not in page
