"""An OAuth provider entered in the admin pages (not in config) connects accounts end to end,
against the real local OAuth server: with explicit URLs the userinfo URL typed in the form is
where the flow learns the address (M3)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect.models import MailProvider
from tests import hostapp
from tests.admin_forms import create
from tests.conftest import login
from tests.oauth_flows import EMAIL, EXTERNAL, back, consent, rows, start
from tests.peers.oauth import CLIENT_ID, CLIENT_SECRET


def test_admin_entered_provider_with_explicit_urls_connects(
    client: FlaskClient,
    app: Flask,
    server: Any,
    smtp_starttls: Any,
    dovecot: Any,
) -> None:
    urls = server.google
    login(client, 3)
    response = create(
        client, name="Acme ID", auth_method="oauth2", client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET, authorize_url=urls.authorize_url, token_url=urls.token_url,
        userinfo_url=urls.userinfo_url, smtp_host=smtp_starttls.host,
        smtp_port=str(smtp_starttls.port), smtp_security=smtp_starttls.security,
        imap_host=dovecot.host, imap_port=str(dovecot.ssl_port), imap_security="ssl",
        domains="",
    )  # fmt: skip
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    # The page shows the redirect URI to register at the provider; register exactly that one.
    saved = hostapp.db.session.scalars(sa.select(MailProvider)).one()
    edit = client.get(f"/email/admin/providers/{saved.id}").get_data(as_text=True)
    callback = f"{EXTERNAL}/email/oauth/acme-id/callback"
    assert f'readonly value="{callback}"' in edit
    server.add_redirect_uri(CLIENT_ID, callback)

    login(client, 1)
    index = client.get("/email/").get_data(as_text=True)
    assert "Acme ID" in index
    started = start(client, "acme-id")
    assert started.status_code == 302, started.get_data(as_text=True)[:500]
    assert started.headers["Location"].startswith(urls.authorize_url)
    finished = back(client, consent(started.headers["Location"], EMAIL))
    assert finished.status_code == 302, finished.get_data(as_text=True)[:1500]
    [account] = rows(app)
    assert (account.provider, account.auth_method) == ("acme-id", "oauth2")
    assert account.email == EMAIL and account.owner == ("user", "1")
