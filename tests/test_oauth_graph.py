"""Sending through Microsoft Graph where the tenant turned SMTP AUTH off, end to end.

A Microsoft-shaped provider (the local OAuth server's Microsoft flavour) whose ``graph_url``
points at the local Graph peer (real TLS with the test CA; it checks bearer tokens against the
same OAuth server). The mailbox is aiosmtpd's ``auth_disabled_user``, whose XOAUTH2 login is
answered ``535 5.7.139``. With ``Mail.Send`` in the consent the account switches to Graph and is
connected; without it the account stays on SMTP with status "error" and both remedies named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import MailAccount
from flask_mailconnect.oauth.refresh import graph_scope
from flask_mailconnect.providers import build_catalog
from tests import hostapp
from tests.conftest import login
from tests.oauth_flows import EXTERNAL, back, consent, csrf, providers, rows, start
from tests.peers.oauth import CLIENT_ID

MICROSOFT_PROVIDER = build_catalog({}).require("microsoft")
GRAPH_MAIL_SEND = str(MICROSOFT_PROVIDER.graph_send_scope)
GRAPH_SCOPE = graph_scope(MICROSOFT_PROVIDER)

GRAPH_PAGE_TEXT = "(OAuth 2.0) · sending through Microsoft Graph"  # account page, "Signed in with"


def _graph_app(
    oauth_provider: Any, smtp: Any, dovecot: Any, graph: Any, *, mail_send: bool
) -> Flask:
    config = providers(oauth_provider, smtp, dovecot)
    config["microsoft"] = {
        **config["microsoft"],
        "graph_url": graph.url,
        "scopes": [GRAPH_MAIL_SEND] if mail_send else [],
    }
    app, _ext = hostapp.create_app(
        MAILCONNECT_PROVIDERS=config,
        MAILCONNECT_EXTERNAL_URL=EXTERNAL,
        MAILCONNECT_ALLOW_PRIVATE_HOSTS=True,
        MAILCONNECT_SMTP_PORTS=None,
        MAILCONNECT_IMAP_PORTS=None,
        MAILCONNECT_CA_FILE=smtp.ca_file,  # the test CA: it issued the Graph peer's cert too
    )
    oauth_provider.add_redirect_uri(CLIENT_ID, f"{EXTERNAL}/email/oauth/microsoft/callback")
    return app


@pytest.fixture
def make_app(
    oauth_provider: Any, smtp_starttls: Any, dovecot: Any, graph: Any
) -> Iterator[Callable[[bool], Flask]]:
    """Build the host app, with or without ``Mail.Send`` among the Microsoft scopes."""
    made: list[Flask] = []

    def make(mail_send: bool) -> Flask:
        made.append(_graph_app(oauth_provider, smtp_starttls, dovecot, graph, mail_send=mail_send))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            hostapp.db.session.remove()
            hostapp.db.engine.dispose()


def _connect_disabled_mailbox(app: Flask, smtp: Any) -> tuple[FlaskClient, Any, str]:
    """Connect with Microsoft as the mailbox whose SMTP AUTH is off.

    Returns the client, the callback's answer and the scope that was asked for.
    """
    client = app.test_client()
    login(client, 1)
    started = start(client, "microsoft")
    assert started.status_code == 302, started.get_data(as_text=True)
    [scope] = parse_qs(urlsplit(started.headers["Location"]).query)["scope"]
    response = back(client, consent(started.headers["Location"], smtp.auth_disabled_user))
    assert response.status_code == 302, response.get_data(as_text=True)
    # SMTP really was tried with XOAUTH2, and refused with 535 5.7.139.
    assert ("XOAUTH2", smtp.auth_disabled_user) in smtp.auth_attempts
    return client, response, scope


def _account(app: Flask) -> MailAccount:
    with app.app_context():
        [account] = rows(app)
        hostapp.db.session.expunge(account)
    return account


def test_smtp_auth_off_sends_through_graph_when_mail_send_was_granted(
    make_app: Callable[[bool], Flask], smtp_starttls: Any, graph: Any, oauth_provider: Any
) -> None:
    app = make_app(True)
    client, response, scope = _connect_disabled_mailbox(app, smtp_starttls)
    assert GRAPH_MAIL_SEND in scope.split()
    account = _account(app)
    assert account.email == smtp_starttls.auth_disabled_user
    # Microsoft issues one token per resource: the SMTP/IMAP token has no Graph scope (Graph
    # refuses its audience); a Graph token came from a refresh asking for Graph alone.
    assert GRAPH_MAIL_SEND not in (account.token_scopes or "").split()
    assert GRAPH_SCOPE in oauth_provider.requested_scopes
    assert account.graph_token_expires_at is not None
    assert ("GET", "/v1.0/me") in graph.requests  # the token was checked at Graph itself
    assert account.send_via == "graph" and account.status == "connected"
    assert account.last_error_code is None and account.last_success_at is not None
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert GRAPH_PAGE_TEXT in page and "Connection works" in page
    assert "Connection failed" not in page
    # Test connection again from the account page keeps it on Graph.
    tested = client.post(
        f"/email/accounts/{account.id}/oauth/test", data={"csrf_token": csrf(client)}
    )
    assert tested.status_code == 302
    again = _account(app)
    assert again.send_via == "graph" and again.status == "connected"
    assert graph.requests.count(("GET", "/v1.0/me")) == 2


def test_smtp_auth_off_without_mail_send_names_both_remedies(
    make_app: Callable[[bool], Flask], smtp_starttls: Any, graph: Any
) -> None:
    app = make_app(False)
    client, response, scope = _connect_disabled_mailbox(app, smtp_starttls)
    assert GRAPH_MAIL_SEND not in scope.split()
    account = _account(app)
    assert graph.requests == []  # no Mail.Send: Graph is not even asked
    assert account.send_via == "smtp" and account.status == "error"
    assert account.last_error_code == "smtp_auth_disabled"
    message = account.last_error_message or ""
    # Both remedies, each said once.
    assert message.count("Microsoft Graph (Mail.Send)") == 1
    assert message.count("Authenticated SMTP") == 1
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert GRAPH_PAGE_TEXT not in page
    assert "Connection failed" in page
    assert page.count("Microsoft Graph (Mail.Send)") == 1
    assert page.count("Authenticated SMTP") == 1


def test_mail_send_granted_but_graph_refuses_says_so(
    make_app: Callable[[bool], Flask], smtp_starttls: Any, graph: Any
) -> None:
    """Graph answering 403 (an admin blocked the app's Mail.Send): stays on SMTP, status error,
    and the message says Graph failed too instead of asking for a consent already given."""
    app = make_app(True)
    graph.queue_failure(403, "ErrorAccessDenied")
    _client, _response, _scope = _connect_disabled_mailbox(app, smtp_starttls)
    account = _account(app)
    assert graph.requests == [("GET", "/v1.0/me")]
    assert account.send_via == "smtp" and account.status == "error"
    message = account.last_error_message or ""
    assert "Microsoft Graph failed as well" in message
    assert "connect again and allow sending" not in message


def test_graph_refuses_the_smtp_imap_token(oauth_provider: Any, graph: Any, peer_certs: Any):
    """The peers play Microsoft's audiences: Graph refuses an Outlook token, and the mail
    servers' introspection check refuses a Graph token."""
    from flask_mailconnect.transport.graph import check_graph
    from tests.peers.oauth import MICROSOFT, introspection_for

    scope = (
        "openid email offline_access https://outlook.office.com/SMTP.Send "
        "https://graph.microsoft.com/Mail.Send"
    )
    outlook = oauth_provider.issue_token(client_id=CLIENT_ID, flavour=MICROSOFT, scope=scope)[
        "access_token"
    ]
    assert not check_graph(outlook, graph.url, 5, peer_certs.ca_file, allow_private_hosts=True).ok
    graph_token = oauth_provider.issue_token(
        client_id=CLIENT_ID, flavour=MICROSOFT, scope=GRAPH_SCOPE
    )["access_token"]
    assert check_graph(graph_token, graph.url, 5, peer_certs.ca_file, allow_private_hosts=True).ok
    check = introspection_for(oauth_provider)
    assert check.check(outlook)["active"] is True
    assert check.check(graph_token) == {"active": False}
