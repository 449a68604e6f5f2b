"""An admin signs in at the provider for a person (MAILCONNECT_ADMIN_OAUTH_ON_BEHALF, default on).

VanillaSoft's flow: the admin finds a caller, clicks "Connect with Google" on the caller's page,
signs in for them; the account is the caller's, the audit trail and the signal name the admin as
the actor. Against the local Authlib OAuth server; Test connection logs in with XOAUTH2 to
aiosmtpd and Dovecot (the fixtures in tests/oauth_flow/conftest.py).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import PermissionDenied, account_connected
from flask_mailconnect.models import AccountStatus, AuditEvent, MailAccount
from tests import hostapp
from tests.conftest import login
from tests.hostapp import User
from tests.oauth_flows import EMAIL, back, connect, consent, hand_over, register_callbacks

PERSON = "/email/admin/users/1"  # alice@example.test


def start_for_alice(client: FlaskClient, provider: str = "google") -> Any:
    """Post the "Connect with ..." form of alice's admin page, as the page renders it."""
    page = client.get(PERSON).get_data(as_text=True)
    form = re.search(
        rf'<form method="post" action="(/email/oauth/{provider}/start)"[^>]*>(.*?)</form>',
        page,
        re.S,
    )
    assert form, "no Connect with button on the person's page"
    fields = dict(re.findall(r'name="([^"]+)"(?: type="hidden")? value="([^"]*)"', form.group(2)))
    assert fields["owner_kind"] == "user" and fields["owner_id"] == "1"
    assert fields["next"] == PERSON
    return client.post(form.group(1), data=fields)


def accounts_now() -> list[MailAccount]:
    hostapp.db.session.expire_all()
    return list(hostapp.db.session.scalars(sa.select(MailAccount).order_by(MailAccount.id)))


def audit_rows() -> list[tuple[str, str | None, str | None, str | None]]:
    query = sa.select(AuditEvent).order_by(AuditEvent.id)
    return [
        (e.action, e.actor_id, f"{e.owner_kind}:{e.owner_id}", e.detail)
        for e in hostapp.db.session.scalars(query)
    ]


@pytest.mark.parametrize(("key", "name"), [("google", "Google"), ("microsoft", "Microsoft")])
def test_admin_signs_in_for_a_person(
    client: FlaskClient,
    app: Flask,
    key: str,
    name: str,
) -> None:
    register_callbacks(app)
    seen: list[dict[str, Any]] = []

    def record(sender: Any, **extra: Any) -> None:
        seen.append({"actor": str(extra["actor"].id), "owner": extra["account"].owner})

    login(client, 3)
    page = client.get(PERSON).get_data(as_text=True)
    assert "data-mc-on-behalf" in page and f"Connect with {name}" in page
    with account_connected.connected_to(record, app):
        started = start_for_alice(client, key)
        assert started.status_code == 302, started.get_data(as_text=True)[:300]
        # The provider is told whose sign-in is expected (the person's address).
        query = parse_qs(urlsplit(started.headers["Location"]).query)
        assert query["login_hint"] == ["alice@example.test"]
        shown = requests.get(started.headers["Location"], timeout=5).text
        assert "value='alice@example.test'" in shown
        finished = back(client, consent(started.headers["Location"], EMAIL))
    assert finished.status_code == 302 and finished.headers["Location"] == PERSON
    [account] = accounts_now()
    assert account.owner == ("user", "1") and account.connected_by == "3"
    assert account.status == AccountStatus.CONNECTED and account.email == EMAIL
    assert seen == [{"actor": "3", "owner": ("user", "1")}]
    assert ("connect", "3", "user:1", "oauth2, on behalf") in audit_rows()
    with client.session_transaction() as session:
        [(category, message)] = session["_flashes"]
    assert category == "success", message
    assert message.startswith(f"Connected {EMAIL} with {name} for alice@example.test.")
    # Back on the person's page, which lists no test results: nothing "below" to see.
    assert "sending and receiving both work" in message and "below" not in message
    audit = client.get("/email/admin/audit").get_data(as_text=True)
    assert f"admin admin@example.test connected alice@example.test&#39;s account {EMAIL}" in audit
    # The person sees it as theirs, connected, with nothing left for them to do.
    login(client, 1)
    index = client.get("/email/").get_data(as_text=True)
    assert EMAIL in index and "Complete authorization" not in index


def test_turned_off_admins_hand_over_instead(client: FlaskClient, app: Flask) -> None:
    register_callbacks(app)
    app.config["MAILCONNECT_ADMIN_OAUTH_ON_BEHALF"] = False
    login(client, 3)
    page = client.get(PERSON).get_data(as_text=True)
    assert "data-mc-on-behalf" not in page and "Hand over an account" in page
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    data = {"csrf_token": token.group(1), "owner_kind": "user", "owner_id": "1"}
    refused = client.post("/email/oauth/google/start", data=data)
    assert refused.status_code == 403
    assert 'data-mc-oauth-error="on_behalf_off"' in refused.get_data(as_text=True)
    # Their own accounts still connect: the setting is about other people's.
    own = connect(client)
    assert own.status_code == 302
    assert [a.owner for a in accounts_now()] == [("user", "3")]
    # The Python API says the same for an admin actor.
    from flask_mailconnect import accounts
    from flask_mailconnect.oauth.flow import OAuthGrant

    with app.test_request_context():
        runtime = app.extensions["mailconnect"]
        admin = runtime.hooks.actor_for(hostapp.db.session.get(User, 3))
        grant = OAuthGrant.__new__(OAuthGrant)  # never read: refused before
        with pytest.raises(PermissionDenied):
            accounts.connect_oauth(runtime, owner=("user", "1"), grant=grant, actor=admin)


def test_admin_who_signs_in_as_themselves_is_refused(client: FlaskClient, app: Flask) -> None:
    register_callbacks(app)
    login(client, 3)
    started = start_for_alice(client)
    answer = back(client, consent(started.headers["Location"], "admin@example.test"))
    assert answer.status_code == 400
    assert 'data-mc-oauth-error="own_address"' in answer.get_data(as_text=True)
    assert accounts_now() == []


def test_handed_over_address_stays_the_persons_to_complete(
    client: FlaskClient,
    app: Flask,
) -> None:
    register_callbacks(app)
    login(client, 3)
    assert hand_over(client).status_code == 302
    started = start_for_alice(client)
    answer = back(client, consent(started.headers["Location"], EMAIL))
    assert 'data-mc-oauth-error="handover_pending"' in answer.get_data(as_text=True)
    [account] = accounts_now()
    assert account.status == AccountStatus.PENDING_AUTHORIZATION


def test_address_connected_by_someone_else_is_refused(client: FlaskClient, app: Flask) -> None:
    register_callbacks(app)
    login(client, 2)
    assert connect(client).status_code == 302  # bob has it
    login(client, 3)
    started = start_for_alice(client)
    answer = back(client, consent(started.headers["Location"], EMAIL))
    assert 'data-mc-oauth-error="already_connected"' in answer.get_data(as_text=True)
    assert [a.owner for a in accounts_now()] == [("user", "2")]


# -- the demo: make demo's example app and sandbox ---------------------------------------------


@pytest.fixture
def demo(tmp_path: Any) -> Any:
    """The example app on its demo sandbox (random ports), as ``make demo`` runs it."""
    from example_app import create_app
    from example_app.models import db as demo_db
    from example_app.sandbox import Sandbox

    box = Sandbox(tmp_path / "sandbox", smtp_port=0, imap_port=0, oauth_port=0).start()
    try:
        external = "https://demo.example"
        demo_app = create_app(
            {
                **box.flask_config(),
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "SECRET_KEY": "on-behalf-demo",
                "MAILCONNECT_ENCRYPTION_KEYS": [hostapp.TEST_KEY],
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}",
                "MAILCONNECT_EXTERNAL_URL": external,
                "TESTING": True,
            }
        )
        box.allow_redirect(f"{external}/email/oauth/demo/callback")
        yield demo_app, box, external
        with demo_app.app_context():
            demo_db.session.remove()
            demo_db.engine.dispose()
    finally:
        box.stop()


def test_demo_admin_signs_in_for_alice_and_the_sandbox_takes_her_token(demo: Any) -> None:
    """In the demo, Ada (admin) connects Alice's own address with the demo provider: its
    consent page is the demo provider's (not "Google"), pre-filled with Alice's address, and
    the sandbox's SMTP and IMAP servers accept the token for alice@demo.test at once."""
    from example_app.models import User
    from tests.example_client import sign_in

    demo_app, box, external = demo
    client = demo_app.test_client()
    sign_in(client, "admin@demo.test", "admin")
    with demo_app.app_context():
        from example_app.models import db as demo_db

        alice = demo_db.session.scalar(sa.select(User).where(User.email == "alice@demo.test"))
        person = f"/email/admin/users/{alice.id}"
    page = client.get(person).get_data(as_text=True)
    assert "Alice Martin" in page and "alice@demo.test" in page  # name and address
    form = re.search(
        r'<form method="post" action="(/email/oauth/demo/start)"[^>]*>(.*?)</form>', page, re.S
    )
    assert form, page
    fields = dict(re.findall(r'name="([^"]+)"(?: type="hidden")? value="([^"]*)"', form.group(2)))
    started = client.post(form.group(1), data=fields)
    assert started.status_code == 302, started.get_data(as_text=True)[:300]
    consent_page = requests.get(started.headers["Location"], timeout=5).text
    assert "<title>Sign in with Demo provider</title>" in consent_page
    assert "Google" not in consent_page
    assert "value='alice@demo.test'" in consent_page
    answer = requests.post(
        started.headers["Location"],
        data={"email": "alice@demo.test", "action": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    callback = urlsplit(answer.headers["Location"])
    assert f"{callback.scheme}://{callback.netloc}" == external
    finished = client.get(f"{callback.path}?{callback.query}")
    assert finished.status_code == 302 and finished.headers["Location"] == person
    with client.session_transaction() as session:
        category, message = session["_flashes"][-1]
    assert category == "success", message  # the sandbox took alice@demo.test's token
    assert "sending and receiving both work" in message
    with demo_app.app_context():
        from example_app.models import db as demo_db

        account = demo_db.session.scalars(sa.select(MailAccount)).one()
        assert account.owner == ("user", str(alice.id)) and account.email == "alice@demo.test"
        assert account.status == AccountStatus.CONNECTED
    # The people search names her too.
    found = client.get("/email/admin/users?q=alice").get_data(as_text=True)
    assert "Alice Martin" in found and "alice@demo.test" in found


def test_flash_away_from_the_account_page_says_what_failed() -> None:
    """A project's page (or a person's) shows no test results: the flash after the sign-in
    names the failure itself instead of pointing at "the details below"."""
    from flask_mailconnect.transport.settings import ConnectionReport, Protocol, ProtocolResult
    from flask_mailconnect.views.oauth import _summary

    report = ConnectionReport(
        smtp=ProtocolResult(Protocol.SMTP, True, "ok", "Sending works."),
        imap=ProtocolResult(Protocol.IMAP, False, "timeout", "The IMAP server did not answer."),
    )
    here = _summary(report)
    assert here == "Test connection failed for receiving (IMAP): see the details below."
    away = _summary(report, details_below=False)
    assert away == "Test connection failed for receiving (IMAP). The IMAP server did not answer."


def test_disconnecting_an_oauth_account_names_what_was_deleted(
    client: FlaskClient,
    app: Flask,
) -> None:
    """An OAuth account never had a password here: the flash says its tokens went."""
    login(client, 1)
    assert connect(client).status_code == 302
    [account] = accounts_now()
    url = f"/email/accounts/{account.id}/disconnect"
    page = client.get(url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    assert client.post(url, data={"csrf_token": token.group(1)}).status_code == 302
    with client.session_transaction() as session:
        messages = [m for _, m in session["_flashes"]]
    assert f"Disconnected {EMAIL}. Its sign-in tokens and synced mail were deleted." in messages
    assert not any("password" in m for m in messages)


def test_on_behalf_owner_must_be_a_person_the_host_knows(
    client: FlaskClient,
    app: Flask,
) -> None:
    """The owner posted to the OAuth start is looked up with ``@user_getter``: an id nobody
    has is a 404, and another spelling of a real id ("01") is stored as the host's id ("1")."""
    register_callbacks(app)
    login(client, 3)
    page = client.get(PERSON).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    data = {"csrf_token": token.group(1), "owner_kind": "user", "next": PERSON}
    assert (
        client.post("/email/oauth/google/start", data={**data, "owner_id": "9999"}).status_code
        == 404
    )
    started = client.post("/email/oauth/google/start", data={**data, "owner_id": "01"})
    assert started.status_code == 302, started.get_data(as_text=True)[:300]
    finished = back(client, consent(started.headers["Location"], EMAIL))
    assert finished.status_code == 302
    [account] = accounts_now()
    assert account.owner == ("user", "1") and account.connected_by == "3"
    # The person's admin page under another spelling shows (and connects for) the same person.
    other = client.get("/email/admin/users/01").get_data(as_text=True)
    assert EMAIL in other and 'name="owner_id" value="1"' in other
    assert client.get("/email/admin/users/9999").status_code == 404
