"""OAuth housekeeping that is easy to get wrong: provider edits without restart, what the session
cookie carries, the callback's headers, and disconnect's order of revoke and delete.

Against the real local OAuth server, through the pages (as in test_oauth_flow).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, g
from flask.testing import FlaskClient

from flask_mailconnect.columns import open_secret
from flask_mailconnect.models import OAuthState
from tests import hostapp
from tests.conftest import login
from tests.oauth_flows import back, connect, consent, error_page, rows, start
from tests.peers.oauth import CLIENT_ID, CLIENT_SECRET

# -- M2: provider settings are not cached for the app's lifetime ------------------------------


def test_changed_client_secret_is_used_by_the_next_flow(
    client: FlaskClient, app: Flask, server: Any
):
    login(client, 1)
    assert connect(client).status_code == 302  # the client is built and cached now
    server.register_client(CLIENT_ID, "rotated-s3cret")  # the admin rotated the secret there
    try:
        app.config["MAILCONNECT_PROVIDERS"]["google"]["client_secret"] = "rotated-s3cret"
        response = connect(client)
        assert response.status_code == 302, response.get_data(as_text=True)
        assert [a.status for a in rows(app)] == ["connected"]
    finally:
        server.register_client(CLIENT_ID, CLIENT_SECRET)


def test_changed_token_url_is_used_by_the_next_flow(client: FlaskClient, app: Flask, server: Any):
    login(client, 1)
    google = app.config["MAILCONNECT_PROVIDERS"]["google"]
    assert connect(client).status_code == 302
    google["token_url"] = google["token_url"].replace("/google/token", "/google/gone")
    page = connect(client).get_data(as_text=True)
    assert "Google could not be reached" in page  # the new (broken) URL was used (404)


def test_server_metadata_is_read_again_after_its_ttl(app: Flask, monkeypatch: pytest.MonkeyPatch):
    from flask_mailconnect.oauth import client as flow
    from flask_mailconnect.providers import current_catalog

    with app.test_request_context("/email/"):
        google = current_catalog().oauth()["google"]
        first = flow.client_for(google)
        assert flow.client_for(google) is first  # cached while fresh
        monkeypatch.setattr(flow, "METADATA_TTL", -1)
        assert flow.client_for(google) is not first


# -- M10: the session cookie carries no PKCE verifier; states are used once server-side -------


def _session_dump(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        return json.dumps(dict(sess), default=str)


def _verifier(app: Flask) -> str:
    from flask_mailconnect.models import OAuthState

    [stored] = hostapp.db.session.scalars(sa.select(OAuthState.value))
    return str(json.loads(open_secret(stored) or "")["data"]["code_verifier"])


def test_session_cookie_holds_no_code_verifier(client: FlaskClient, app: Flask):
    login(client, 1)
    started = start(client)
    assert started.status_code == 302
    verifier = _verifier(app)
    dump = _session_dump(client)
    assert "code_verifier" not in dump and verifier not in dump and "nonce" not in dump
    raw = hostapp.db.session.execute(sa.text("SELECT value FROM mailconnect_oauth_state"))
    assert verifier not in raw.scalar_one()  # encrypted at rest
    assert back(client, consent(started.headers["Location"])).status_code == 302
    assert hostapp.db.session.scalars(sa.select(OAuthState.key)).all() == []  # taken


def test_replayed_older_cookie_cannot_complete_a_flow_again(client: FlaskClient, app: Flask):
    login(client, 1)
    location = consent(start(client).headers["Location"])
    with client.session_transaction() as sess:
        saved = dict(sess)  # the cookie as it was before the callback
    assert back(client, location).status_code == 302
    [account] = rows(app)
    with client.session_transaction() as sess:
        sess.clear()
        sess.update(saved)  # an attacker (or the back button) brings the old cookie back
    page = error_page(back(client, location))
    assert "expired or was already used" in page
    assert [a.id for a in rows(app)] == [account.id]


# -- L2: the callback never leaks its code ------------------------------------------------------


def test_callback_of_an_unknown_provider_sends_no_referrer(client: FlaskClient):
    login(client, 1)
    response = client.get("/email/oauth/nope/callback?code=secret-code&state=s")
    assert response.status_code == 404
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_session_expired_during_consent_goes_to_login_without_the_code(
    client: FlaskClient, app: Flask
):
    app.login_manager.login_view = "/login"  # type: ignore[attr-defined]
    login(client, 1)
    location = consent(start(client).headers["Location"])
    assert "code=" in location
    with client.session_transaction() as sess:
        sess.clear()  # signed out (or the session expired) while at the provider
    g.pop("_login_user", None)  # pytest-flask's app context (and g) outlives requests
    response = back(client, location)
    assert response.status_code == 302
    assert response.headers["Referrer-Policy"] == "no-referrer"
    target = response.headers["Location"]
    assert target.startswith("/login") and "code" not in target and "callback" not in target
    assert rows(app) == []
