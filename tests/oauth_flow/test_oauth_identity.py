"""Who consented, not just which address: ID token checks and the identity bound to an account.

Against the real local OAuth server: its knobs mint ID tokens with a forged ``aud``, ``iss``,
``nonce`` or an old ``exp``, and ``replace_identity`` plays another person (another tenant's
user, say) who claims the same address, verified by the provider or not (nOAuth).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import MailAccount
from tests import hostapp
from tests.conftest import login
from tests.oauth_flows import (
    EMAIL,
    EXTERNAL,
    assert_nothing_connected,
    connect,
    error_page,
    providers,
    rows,
    tokens_of,
)
from tests.peers.oauth import CLIENT_ID, CLIENT_SECRET

OTHER_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


# -- the address must be vouched for ---------------------------------------------------------


def test_microsoft_email_without_xms_edov_is_refused(client: FlaskClient, app: Flask, server: Any):
    """Microsoft lets anyone set any address as a profile's email: without ``xms_edov`` the
    provider does not vouch for it, so nothing is connected."""
    server.replace_identity(EMAIL, verified=False, tid=OTHER_TENANT)
    login(client, 1)
    page = error_page(connect(client, "microsoft"))
    assert "could not confirm this address is yours" in page and "xms_edov" in page
    assert_nothing_connected(app)


def test_google_unverified_email_is_refused(client: FlaskClient, app: Flask, server: Any):
    server.replace_identity(EMAIL, verified=False)
    login(client, 1)
    page = error_page(connect(client))
    assert "could not confirm this address is yours" in page
    assert_nothing_connected(app)


# -- the identity is bound at first consent ---------------------------------------------------


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_another_identity_with_the_same_address_cannot_sign_in_again(
    client: FlaskClient, app: Flask, server: Any, provider: str
):
    login(client, 1)
    assert connect(client, provider).status_code == 302
    [account] = rows(app)
    assert account.oauth_subject
    if provider == "microsoft":
        assert account.oauth_subject.startswith("9188040d-6c67-4c5b-b112-36a304b66dad:")
    before = tokens_of(app, account.id)
    server.replace_identity(EMAIL, verified=True)  # same address, verified, another person
    page = error_page(connect(client, provider, account_id=account.id))  # "Sign in again"
    assert "You signed in as someone else" in page
    page = error_page(connect(client, provider))  # connecting the address again: the same
    assert "You signed in as someone else" in page
    [again] = rows(app)
    assert again.oauth_subject == account.oauth_subject
    assert tokens_of(app, account.id) == before


def test_handover_completion_binds_the_identity(client: FlaskClient, app: Flask, server: Any):
    from flask_mailconnect.models import AccountStatus

    account = MailAccount(
        owner_kind="user", owner_id="1", provider="google", auth_method="oauth2", email=EMAIL,
        username=EMAIL, smtp_host="smtp.example.test", smtp_port=587, smtp_security="starttls",
        status=AccountStatus.PENDING_AUTHORIZATION,
    )  # fmt: skip
    hostapp.db.session.add(account)
    hostapp.db.session.commit()
    login(client, 1)
    assert connect(client, account_id=account.id).status_code == 302
    [done] = rows(app)
    assert done.oauth_subject
    server.replace_identity(EMAIL)
    page = error_page(connect(client, account_id=account.id))
    assert "You signed in as someone else" in page


def test_identity_connected_elsewhere_meanwhile_is_already_connected(
    client: FlaskClient, app: Flask
):
    """The check before the insert can race with another consent: the unique index on
    (provider, oauth_subject) decides, and the loser gets the "already connected" page."""
    login(client, 2)
    assert connect(client).status_code == 302
    [bobs] = rows(app)
    bob_id, subject = bobs.id, bobs.oauth_subject
    # Bob's row carries another address now (say the mailbox was renamed), and his consent
    # binds the identity only once Alice's has passed the check before its insert: the two
    # ran at once.
    hostapp.db.session.execute(
        sa.update(MailAccount)
        .where(MailAccount.id == bob_id)
        .values(email="old@example.test", oauth_subject=None)
    )
    hostapp.db.session.commit()
    bound: list[int] = []

    def bob_binds_meanwhile(session: Any, *args: Any) -> None:
        if bound or not any(isinstance(obj, MailAccount) for obj in session.new):
            return
        bound.append(bob_id)
        session.execute(
            sa.update(MailAccount)
            .where(MailAccount.id == bob_id)
            .values(oauth_subject=subject)
            .execution_options(synchronize_session=False)
        )

    session = hostapp.db.session()  # requests share the test's app context and session
    sa.event.listen(session, "before_flush", bob_binds_meanwhile)
    try:
        login(client, 1)
        page = error_page(connect(client))
    finally:
        sa.event.remove(session, "before_flush", bob_binds_meanwhile)
    assert bound == [bob_id]  # Alice's insert was flushed after Bob's binding
    assert "already connected by someone else" in page
    assert [a.id for a in rows(app)] == [bob_id]


# -- ID token checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "forged",
    [
        {"aud": "another-client"},
        {"aud": None},
        {"iss": "https://evil.example/v2.0"},
        {"nonce": "replayed-nonce"},
        {"exp": int(time.time()) - 600, "iat": int(time.time()) - 4200},
    ],
    ids=["aud", "no-aud", "iss", "nonce", "expired"],
)
@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_forged_id_token_is_refused(
    client: FlaskClient, app: Flask, server: Any, forged: dict[str, Any], provider: str
):
    server.id_token_claims = forged
    login(client, 1)
    page = error_page(connect(client, provider))
    assert "could not be verified" in page
    assert_nothing_connected(app)


@pytest.fixture
def tenant_app(server: Any, smtp_starttls: Any, dovecot: Any, peer_config: dict) -> Iterator[Any]:
    def make(tenant: str) -> Flask:
        config = providers(server, smtp_starttls, dovecot)
        config["microsoft"] = {**config["microsoft"], "tenant": tenant}
        made, _ = hostapp.create_app(
            MAILCONNECT_PROVIDERS=config, MAILCONNECT_EXTERNAL_URL=EXTERNAL, **peer_config
        )
        return made

    yield make


def test_tenant_guid_pins_the_id_token_tid(tenant_app: Any, server: Any):
    pinned = tenant_app(OTHER_TENANT)
    client = pinned.test_client()
    with pinned.app_context():
        login(client, 1)
        page = error_page(connect(client, "microsoft"))  # the user is in another tenant
        assert "could not be verified" in page
        server.replace_identity(EMAIL, tid=OTHER_TENANT)
        assert connect(client, "microsoft").status_code == 302
        hostapp.db.session.remove()


def test_id_token_without_a_known_issuer_is_not_trusted(
    server: Any, smtp_starttls: Any, dovecot: Any, peer_config: dict
):
    """A generic provider with keys but no issuer: the ID token cannot be checked for ``iss``,
    so the address comes from the userinfo endpoint instead."""
    urls = server.google
    config = providers(server, smtp_starttls, dovecot)
    config["acme"] = {
        "auth": "oauth2", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "authorize_url": urls.authorize_url, "token_url": urls.token_url,
        "userinfo_url": urls.userinfo_url, "jwks_uri": urls.jwks_url,
        "smtp": {"host": smtp_starttls.host, "port": smtp_starttls.port, "security": "starttls"},
    }  # fmt: skip
    acme, _ = hostapp.create_app(
        MAILCONNECT_PROVIDERS=config, MAILCONNECT_EXTERNAL_URL=EXTERNAL, **peer_config
    )
    server.add_redirect_uri(CLIENT_ID, f"{EXTERNAL}/email/oauth/acme/callback")
    server.id_token_claims = {"iss": "https://evil.example", "email": "mallory@example.test"}
    client = acme.test_client()
    with acme.app_context():
        login(client, 1)
        assert connect(client, "acme").status_code == 302
        [account] = rows(acme)
        assert account.email == EMAIL  # from userinfo, not the unchecked ID token
        hostapp.db.session.remove()
