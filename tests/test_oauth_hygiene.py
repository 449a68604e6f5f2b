"""OAuth housekeeping that is easy to get wrong: provider edits without restart, what the session
cookie carries, the callback's headers, and disconnect's order of revoke and delete.

Against the real local OAuth server, through the pages (as in test_oauth_flow).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests import test_oauth_flow
from tests.conftest import login
from tests.peers.oauth import CLIENT_ID, CLIENT_SECRET
from tests.test_oauth_flow import connect, rows

# The host app with Google and Microsoft at the local OAuth server (as in test_oauth_flow).
oauth_app = test_oauth_flow.oauth_app
app = test_oauth_flow.app
server = test_oauth_flow.server


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
    from flask_mailconnect.oauth import flow
    from flask_mailconnect.oauth.providers import current_oauth_providers

    with app.test_request_context("/email/"):
        google = current_oauth_providers()["google"]
        first = flow.client_for(google)
        assert flow.client_for(google) is first  # cached while fresh
        monkeypatch.setattr(flow, "METADATA_TTL", -1)
        assert flow.client_for(google) is not first
