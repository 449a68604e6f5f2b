"""The OAuth consent flow through the pages, against the real local OAuth server: the helpers
and constants the OAuth tests share.

Used by the modules in tests/oauth_flow/ (the host app with Google and Microsoft at the local
server, whose fixtures ``oauth_app``, ``app`` and ``server`` are in that package's conftest.py;
driving the flow with the test client; an admin handing an account over), by
test_oauth_graph.py, test_sync_on_save.py and test_http_guard.py (driving the flow),
test_browser_oauth.py and test_browser_seeds.py (the providers' settings), and by
test_tokens.py, test_health.py, test_health_batch.py and tests/sending_peers/ (``provider_config``).

``oauth_host`` is the body of the ``oauth_app`` fixture.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import MailAccount, MailConnect
from flask_mailconnect.columns import open_secret
from tests import hostapp
from tests.hostapp import User
from tests.peers import MAILBOX_USER
from tests.peers.oauth import CLIENT_ID, CLIENT_SECRET, GOOGLE, MICROSOFT

EXTERNAL = "https://crm.example"
EMAIL = MAILBOX_USER  # the address the provider vouches for; both mail peers know it


def providers(server: Any, smtp: Any, imap: Any) -> dict[str, Any]:
    def flavour(urls: Any, **extra: Any) -> dict[str, Any]:
        return {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "authorize_url": urls.authorize_url,
            "token_url": urls.token_url,
            "revoke_url": urls.revoke_url,
            "userinfo_url": urls.userinfo_url,
            "server_metadata_url": urls.metadata_url,
            **extra,
        }

    servers = {
        "smtp": {"host": smtp.host, "port": smtp.port, "security": smtp.security},
        "imap": {"host": imap.host, "port": imap.ssl_port, "security": "ssl"},
    }
    return {
        "google": flavour(server.google),
        "microsoft": flavour(server.microsoft),
        # The presets' servers, pointed at the local peers.
        "gmail": servers,
        "microsoft365": servers,
    }


def provider_config(server: Any, **extra: Any) -> dict[str, Any]:
    """MAILCONNECT_PROVIDERS pointing the Google and Microsoft presets at the local server."""
    creds = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    google, microsoft = server.urls(GOOGLE), server.urls(MICROSOFT)
    return {
        "google": {
            **creds,
            "authorize_url": google.authorize_url,
            "token_url": google.token_url,
            "revoke_url": google.revoke_url,
            "userinfo_url": google.userinfo_url,
        },
        "microsoft": {
            **creds,
            "authorize_url": microsoft.authorize_url,
            "token_url": microsoft.token_url,
            "userinfo_url": microsoft.userinfo_url,
        },
        **extra,
    }


def oauth_host(
    oauth_provider: Any, smtp_starttls: Any, dovecot: Any
) -> Iterator[tuple[Flask, Any]]:
    """The host app with Google and Microsoft at the local OAuth server (``oauth_provider``) and
    the presets' servers at the local peers, and that server: the ``oauth_app`` fixture's body."""
    app, _ext = hostapp.create_app(
        MAILCONNECT_PROVIDERS=providers(oauth_provider, smtp_starttls, dovecot),
        MAILCONNECT_EXTERNAL_URL=EXTERNAL,
        MAILCONNECT_ALLOW_PRIVATE_HOSTS=True,
        MAILCONNECT_SMTP_PORTS=None,
        MAILCONNECT_IMAP_PORTS=None,
        MAILCONNECT_CA_FILE=smtp_starttls.ca_file,
    )
    for key in ("google", "microsoft"):
        oauth_provider.add_redirect_uri(CLIENT_ID, f"{EXTERNAL}/email/oauth/{key}/callback")
    yield app, oauth_provider
    with app.app_context():
        hostapp.db.session.remove()
        hostapp.db.engine.dispose()


# -- driving the flow ------------------------------------------------------------------------


def csrf(client: FlaskClient) -> str:
    page = client.get("/email/").get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "no CSRF token on the index page"
    return match.group(1)


def start(client: FlaskClient, provider: str = "google", **form: Any) -> Any:
    return client.post(f"/email/oauth/{provider}/start", data={"csrf_token": csrf(client), **form})


def consent(location: str, email: str = EMAIL, action: str = "allow") -> str:
    """At the local provider's consent page: Allow (or Deny) as ``email``."""
    answer = requests.post(
        location, data={"email": email, "action": action}, allow_redirects=False, timeout=5
    )
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def back(client: FlaskClient, url: str) -> Any:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == EXTERNAL
    return client.get(f"{parts.path}?{parts.query}")


def connect(client: FlaskClient, provider: str = "google", email: str = EMAIL, **form: Any) -> Any:
    started = start(client, provider, **form)
    assert started.status_code == 302, started.get_data(as_text=True)
    return back(client, consent(started.headers["Location"], email))


# pytest-flask keeps one app context open for the whole test, and requests share it (and its
# session): read and write through that session, expiring what it holds first.


def rows(app: Flask) -> list[MailAccount]:
    hostapp.db.session.expire_all()
    return list(hostapp.db.session.scalars(sa.select(MailAccount).order_by(MailAccount.id)))


def raw_tokens(app: Flask) -> list[tuple[Any, Any]]:
    query = sa.text("SELECT access_token, refresh_token FROM mailconnect_account")
    return [tuple(r) for r in hostapp.db.session.execute(query)]


def tokens_of(app: Flask, account_id: int) -> tuple[str, str]:
    query = sa.select(MailAccount.access_token, MailAccount.refresh_token).where(
        MailAccount.id == account_id
    )
    sealed_access, sealed_refresh = hostapp.db.session.execute(query).one()
    access, refresh = open_secret(sealed_access), open_secret(sealed_refresh)
    assert access and refresh
    return access, refresh


# -- error paths: a clear page, Try again, nothing left behind --------------------------------


def assert_nothing_connected(app: Flask) -> None:
    assert rows(app) == []
    assert raw_tokens(app) == []


def error_page(response: Any, status: int = 400) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = response.get_data(as_text=True)
    assert "Try again" in page
    return page


# -- hand-over (an admin starts the account, the person consents) --------------------------------


def admin_token(client: FlaskClient, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match
    return match.group(1)


def register_callbacks(app: Flask) -> None:
    ext: MailConnect = MailConnect.of(app)
    ext.user_getter(lambda user_id: hostapp.db.session.get(User, int(user_id)))


def hand_over(client: FlaskClient, email: str = EMAIL) -> Any:
    url = "/email/admin/users/1"
    data = {"provider": "google", "email": email, "csrf_token": admin_token(client, url)}
    return client.post(url + "/handover", data=data)
