"""Hand-over: an admin creates an OAuth account for a user (no credentials); the user sees
"Complete authorization" on their own page and gives consent at the (local) provider themselves.

Uses the OAuth flow's fixtures: the local OAuth server, aiosmtpd and Dovecot checking tokens by
introspection (tests/oauth_flow/conftest.py), and its helpers (tests/oauth_flows.py).
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect.models import AccountStatus, AuditEvent, MailAccount
from tests.conftest import login
from tests.hostapp import User
from tests.oauth_flows import (
    EMAIL,
    admin_token,
    back,
    connect,
    consent,
    hand_over,
    register_callbacks,
)


def only_account(app: Flask) -> MailAccount:
    from tests import hostapp

    with app.app_context():
        hostapp.db.session.expire_all()
        account = hostapp.db.session.scalars(sa.select(MailAccount)).one()
        hostapp.db.session.expunge(account)
        return account


def test_admin_creates_user_completes_consent(client: FlaskClient, app: Flask) -> None:
    register_callbacks(app)
    login(client, 3)
    page = client.get("/email/admin/users/1").get_data(as_text=True)
    assert '<option value="google">Google</option>' in page
    response = hand_over(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    account = only_account(app)
    assert account.owner == ("user", "1") and account.connected_by == "3"
    assert account.status == AccountStatus.PENDING_AUTHORIZATION
    assert account.auth_method == "oauth2" and account.provider == "google"
    # The admin cannot complete it: no "Complete authorization" on their pages.
    assert 'name="account_id"' not in client.get("/email/admin/users/1").get_data(as_text=True)

    login(client, 1)
    index = client.get("/email/").get_data(as_text=True)
    assert "Complete authorization" in index and "Awaiting authorization" in index
    form = re.search(
        r'<form method="post" action="(/email/oauth/google/start)"[^>]*>\s*'
        r'<input name="csrf_token" type="hidden" value="([^"]+)">\s*'
        r'<input type="hidden" name="account_id" value="(\d+)">',
        index,
    )
    assert form, index
    started = client.post(
        form.group(1), data={"csrf_token": form.group(2), "account_id": form.group(3)}
    )
    assert started.status_code == 302
    finished = back(client, consent(started.headers["Location"], EMAIL))
    assert finished.status_code == 302
    account = only_account(app)
    assert account.status == AccountStatus.CONNECTED
    assert account.owner == ("user", "1")
    with app.app_context():
        events = [
            (e.action, e.actor_id)
            for e in app.extensions["mailconnect"].session.scalars(
                sa.select(AuditEvent).order_by(AuditEvent.id)
            )
        ]
    assert ("handover", "3") in events and ("reconnect", "1") in events
    login(client, 3)
    audit = client.get("/email/admin/audit").get_data(as_text=True)
    sentence = "admin admin@example.test started a hand-over of alice@example.test&#39;s account"
    assert f"{sentence} {EMAIL}" in audit


def test_consent_with_another_address_is_refused(client: FlaskClient, app: Flask) -> None:
    register_callbacks(app)
    login(client, 3)
    hand_over(client)
    login(client, 1)
    index = client.get("/email/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', index)
    assert token
    account = only_account(app)
    data = {"csrf_token": token.group(1), "account_id": account.id}
    started = client.post("/email/oauth/google/start", data=data)
    answer = back(client, consent(started.headers["Location"], "someone.else@example.com"))
    assert answer.status_code >= 400
    assert only_account(app).status == AccountStatus.PENDING_AUTHORIZATION


def test_handover_validation(client: FlaskClient, app: Flask) -> None:
    register_callbacks(app)
    login(client, 3)
    url = "/email/admin/users/1"
    bad = {"provider": "nope", "email": "x@example.com", "csrf_token": admin_token(client, url)}
    assert client.post(url + "/handover", data=bad).status_code == 422
    assert hand_over(client, "not-an-address").status_code == 422
    hand_over(client)
    again = hand_over(client)
    assert again.status_code == 422
    assert "already has an account with this address" in again.get_data(as_text=True)
    login(client, 2)  # not an admin: "an administrator is needed", before anything loads
    assert client.post(url + "/handover", data=bad).status_code == 403


def test_owner_completes_with_own_management_off(client: FlaskClient, app: Flask) -> None:
    """MAILCONNECT_USERS_CAN_MANAGE_OWN=False: only admins manage personal accounts, yet the
    consent of a hand-over is still the owner's to give (and only theirs)."""
    register_callbacks(app)
    app.config["MAILCONNECT_USERS_CAN_MANAGE_OWN"] = False
    login(client, 3)
    assert hand_over(client).status_code == 302
    account = only_account(app)
    # The admin cannot start the consent for the user, even by posting the form themselves.
    token = admin_token(client, "/email/admin/users/1")
    data = {"csrf_token": token, "account_id": account.id}
    assert client.post("/email/oauth/google/start", data=data).status_code == 404
    login(client, 1)
    index = client.get("/email/").get_data(as_text=True)
    assert "Complete authorization" in index
    token_match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', index)
    assert token_match
    data = {"csrf_token": token_match.group(1), "account_id": account.id}
    started = client.post("/email/oauth/google/start", data=data)
    assert started.status_code == 302, started.get_data(as_text=True)[:300]
    finished = back(client, consent(started.headers["Location"], EMAIL))
    assert finished.status_code == 302, finished.get_data(as_text=True)[:300]
    account = only_account(app)
    assert account.status == AccountStatus.CONNECTED and account.owner == ("user", "1")
    # Done: the account is hers, but managing it (signing in again) is the admins' job now.
    again = client.post("/email/oauth/google/start", data=data)
    assert again.status_code == 404


def test_admin_cannot_complete_through_the_api(client: FlaskClient, app: Flask) -> None:
    from flask_mailconnect import PermissionDenied, accounts
    from flask_mailconnect.oauth.flow import OAuthGrant

    register_callbacks(app)
    login(client, 3)
    hand_over(client)
    account = only_account(app)
    with app.test_request_context():
        from tests import hostapp

        state = app.extensions["mailconnect"]
        admin = state.hooks.actor_for(hostapp.db.session.get(User, 3))
        row = hostapp.db.session.get(MailAccount, account.id)
        grant = OAuthGrant.__new__(OAuthGrant)  # never read: refused before
        try:
            accounts.reconnect_oauth(state, row, grant=grant, actor=admin)
        except PermissionDenied:
            pass
        else:
            raise AssertionError("an admin completed a user's hand-over")


def test_address_connected_by_someone_else_is_refused_up_front(
    client: FlaskClient,
    app: Flask,
) -> None:
    """Not after the person consented: the hand-over form says it at once."""
    register_callbacks(app)
    login(client, 2)
    assert connect(client).status_code == 302  # bob connected EMAIL himself
    login(client, 3)
    refused = hand_over(client)
    assert refused.status_code == 422
    assert "already connected in this app by someone else" in refused.get_data(as_text=True)
    assert only_account(app).owner == ("user", "2")  # no pending row for alice


def test_states_and_messages_read_right(client: FlaskClient, app: Flask) -> None:
    """Awaiting: the card names the provider to sign in at, never "Connected with"; done: the
    flash says the authorization is complete, never "Signed in again" (she never had)."""
    register_callbacks(app)
    login(client, 3)
    assert hand_over(client).status_code == 302
    login(client, 1)
    index = client.get("/email/").get_data(as_text=True)
    card = re.search(r'<article class="mc-card".*?</article>', index, re.S)
    assert card
    assert "Awaiting authorization" in card.group(0) and "Sign in at Google" in card.group(0)
    assert "Connected with" not in card.group(0)
    page = client.get(f"/email/accounts/{only_account(app).id}").get_data(as_text=True)
    assert "Connected with" not in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', index)
    assert token
    data = {"csrf_token": token.group(1), "account_id": only_account(app).id}
    started = client.post("/email/oauth/google/start", data=data)
    finished = back(client, consent(started.headers["Location"], EMAIL))
    assert finished.status_code == 302
    with client.session_transaction() as session:
        category, message = session["_flashes"][-1]  # the admin's "Created ..." came before
    assert category == "success", message
    assert message.startswith(f"Authorization complete: {EMAIL} is connected with Google.")
    assert "Signed in again" not in message
    card = re.search(
        r'<article class="mc-card".*?</article>', client.get("/email/").get_data(as_text=True), re.S
    )
    assert card and "Connected with Google" in card.group(0)
