"""Scopes: registering one, sender resolution, MAILCONNECT_MAX_ACCOUNTS, USERS_CAN_MANAGE_OWN,
overriding the policy, the scope pages and "Disconnect all", and the example app's projects."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import (
    AccountLimitReached,
    AuditEvent,
    MailAccount,
    MailConnect,
    NoSenderAccount,
    Policy,
    ServerSettings,
)
from flask_mailconnect.owners import Actor
from tests.hostapp import User, db
from tests.scopehost import ADMIN, ALICE, BOB, CAROL, DAVE, add_account, setup_scopes


@pytest.fixture
def scoped(app: Flask, mailconnect: MailConnect) -> Flask:
    setup_scopes(app, mailconnect)
    return app


def _sign_in(client: FlaskClient, user_id: int) -> str:
    assert client.post(f"/test-login/{user_id}").status_code == 200
    return client.get("/test-csrf").get_data(as_text=True)


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    assert user is not None
    return user


# -- register_scope --------------------------------------------------------------------------


def test_register_scope_refuses_builtin_and_odd_kinds(mailconnect: MailConnect) -> None:
    for kind in ("user", "organization", "has space", "x" * 40):
        with pytest.raises(ValueError):
            mailconnect.register_scope(kind, load=lambda ident: None)


def test_decorators_return_the_function(mailconnect: MailConnect) -> None:
    def rule(actor: Any, action: str, owner: Any) -> None:
        return None

    assert mailconnect.permission_rule(rule) is rule
    assert mailconnect.organization_access(bool) is bool


# -- resolve_sender --------------------------------------------------------------------------


def test_resolve_sender_follows_the_order(scoped: Flask, mailconnect: MailConnect) -> None:
    project = add_account(scoped, ("project", "7"), "apollo@example.com")
    org = add_account(scoped, ("organization", "main"), "team@example.com")
    own = add_account(scoped, ("user", str(CAROL)), "carol@example.com")
    with scoped.test_request_context():
        carol = _user(CAROL)
        assert mailconnect.resolve_sender(actor=carol, owner=("project", 7)).id == project
        assert mailconnect.resolve_sender(actor=carol, owner=("project", 8)).id == org
        assert mailconnect.resolve_sender(actor=carol).id == org
        scoped.config["MAILCONNECT_SENDER_ORDER"] = ["user", "organization"]
        assert mailconnect.resolve_sender(actor=carol, owner=("project", 7)).id == own


def test_resolve_sender_skips_inactive_broken_and_forbidden(
    scoped: Flask, mailconnect: MailConnect
) -> None:
    add_account(scoped, ("project", "7"), "apollo@example.com", active=False)
    add_account(scoped, ("organization", "main"), "team@example.com", status="needs_reconnect")
    own = add_account(scoped, ("user", str(BOB)), "bob@example.com")
    with scoped.test_request_context():
        bob = _user(BOB)  # not a member of project 7: may not use its account anyway
        assert mailconnect.resolve_sender(actor=bob, owner=("project", "7")).id == own
        carol = _user(CAROL)
        with pytest.raises(NoSenderAccount) as caught:
            mailconnect.resolve_sender(actor=carol, owner=("project", "7"))
        message = str(caught.value)
        assert "project Apollo: apollo@example.com is inactive" in message
        assert "the organisation: team@example.com is not connected (needs reconnect)" in message
        assert "your own (carol@example.test): no account" in message
        assert mailconnect.find_sender(actor=carol, owner=("project", "7")) is None


def test_resolve_sender_uses_one_query(scoped: Flask, mailconnect: MailConnect) -> None:
    add_account(scoped, ("user", str(CAROL)), "carol@example.com")
    with scoped.test_request_context():
        carol = _user(CAROL)
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        sa.event.listen(db.engine, "before_cursor_execute", listener)
        try:
            mailconnect.resolve_sender(actor=carol, owner=("project", "7"))
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", listener)
        assert len(seen) == 1


def test_sender_order_refuses_unknown_steps(scoped: Flask, mailconnect: MailConnect) -> None:
    scoped.config["MAILCONNECT_SENDER_ORDER"] = ["project", "user"]
    with scoped.test_request_context(), pytest.raises(ValueError, match="unknown step"):
        mailconnect.resolve_sender(actor=_user(CAROL))


# -- MAILCONNECT_MAX_ACCOUNTS ----------------------------------------------------------------


def _blocked(email: str) -> ServerSettings:
    return ServerSettings(
        email=email, username="u", password="p", smtp_host="127.0.0.1", smtp_port=587,
        smtp_security="starttls",
    )  # fmt: skip


@pytest.mark.parametrize("limit", [1, {"user": 1}])
def test_max_accounts_refuses_a_new_account(
    scoped: Flask, mailconnect: MailConnect, limit: Any
) -> None:
    scoped.config["MAILCONNECT_MAX_ACCOUNTS"] = limit
    add_account(scoped, ("user", str(ALICE)), "alice@example.com")
    with scoped.test_request_context():
        alice = _user(ALICE)
        assert mailconnect.account_limit(("user", ALICE)) == 1
        with pytest.raises(AccountLimitReached, match="already has 1 email account"):
            mailconnect.connect_manual(
                owner=("user", ALICE), settings=_blocked("other@example.com"), actor=alice
            )
        # No test ran (nothing audited): the limit is checked before any network traffic.
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 0


def test_max_accounts_per_kind(scoped: Flask, mailconnect: MailConnect) -> None:
    scoped.config["MAILCONNECT_MAX_ACCOUNTS"] = {"project": 1}
    with scoped.test_request_context():
        assert mailconnect.account_limit(("user", "1")) is None
        assert mailconnect.account_limit(("project", "7")) == 1


def test_user_page_hides_connect_at_the_limit(scoped: Flask, client: FlaskClient) -> None:
    scoped.config["MAILCONNECT_MAX_ACCOUNTS"] = {"user": 1}
    _sign_in(client, ALICE)
    assert "Email address and password" in client.get("/email/").get_data(as_text=True)
    add_account(scoped, ("user", str(ALICE)), "alice@example.com")
    page = client.get("/email/").get_data(as_text=True)
    assert "Email address and password" not in page
    assert "the most allowed here (1). Disconnect one to connect another." in page
    response = client.get("/email/connect")
    assert response.status_code == 302 and response.location.endswith("/email/")


def test_scope_page_hides_connect_at_the_limit(scoped: Flask, client: FlaskClient) -> None:
    scoped.config["MAILCONNECT_MAX_ACCOUNTS"] = {"project": 1}
    add_account(scoped, ("project", "7"), "apollo@example.com")
    _sign_in(client, ADMIN)
    page = client.get("/email/scopes/project/").get_data(as_text=True)
    assert "/email/scopes/project/7/connect" not in page
    assert "/email/scopes/project/8/connect" in page
    assert "Limit reached: 1 account per project." in page
    assert client.get("/email/scopes/project/7/connect").status_code == 302


# -- USERS_CAN_MANAGE_OWN and overriding the policy ------------------------------------------


def test_users_cannot_manage_own_when_turned_off(scoped: Flask, client: FlaskClient) -> None:
    scoped.config["MAILCONNECT_USERS_CAN_MANAGE_OWN"] = False
    account = add_account(scoped, ("user", str(ALICE)), "alice@example.com")
    token = _sign_in(client, ALICE)
    page = client.get("/email/").get_data(as_text=True)
    assert "Your administrator manages email accounts" in page
    assert "Email address and password" not in page
    assert client.get(f"/email/accounts/{account}").status_code == 200  # still sees it
    assert client.get(f"/email/accounts/{account}/disconnect").status_code == 404
    data = {"csrf_token": token, "submit": "1"}
    assert client.post(f"/email/accounts/{account}/disconnect", data=data).status_code == 404
    with scoped.test_request_context():
        assert MailConnect.of(scoped).can(_user(ALICE), "use", ("user", 1))
    token = _sign_in(client, ADMIN)  # admins still manage it
    data = {"csrf_token": token, "submit": "1"}
    assert client.post(f"/email/accounts/{account}/disconnect", data=data).status_code == 302


def test_permission_rule_decides_first(scoped: Flask, mailconnect: MailConnect) -> None:
    @mailconnect.permission_rule
    def rule(actor: Actor, action: str, owner: tuple[str, str]) -> bool | None:
        if owner[0] == "organization" and action == "use":
            return actor.user.email.endswith("@example.test") and actor.id != str(BOB)
        return None  # everything else: the default rules

    with scoped.test_request_context():
        assert mailconnect.can(_user(ALICE), "use", mailconnect.organization)
        assert not mailconnect.can(_user(BOB), "use", mailconnect.organization)
        assert mailconnect.can(_user(DAVE), "manage", ("project", "7"))


def test_organization_access_callback(scoped: Flask, mailconnect: MailConnect) -> None:
    mailconnect.organization_access(lambda user: user.id != BOB)
    with scoped.test_request_context():
        assert mailconnect.can(_user(ALICE), "use", ("organization", "main"))
        assert not mailconnect.can(_user(BOB), "view", ("organization", "main"))


def test_policy_subclass() -> None:
    from tests import hostapp

    class NoAdmins(Policy):
        def can_user(self, actor: Actor, action: str, owner: tuple[str, str]) -> bool:
            return owner[1] == actor.id

    app, ext = hostapp.create_app()
    app.extensions["mailconnect"].policy = NoAdmins()  # as init_app(policy=NoAdmins()) does
    with app.test_request_context():
        assert not ext.can(db.session.get(User, ADMIN), "manage", ("user", "1"))
        assert ext.can(db.session.get(User, ALICE), "manage", ("user", "1"))
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_accounts_of_undeclared_kinds_are_admin_only(
    scoped: Flask, mailconnect: MailConnect
) -> None:
    with scoped.test_request_context():
        assert mailconnect.can(_user(ADMIN), "manage", ("team", "3"))
        assert not mailconnect.can(_user(ADMIN), "use", ("team", "3"))
        assert not mailconnect.can(_user(ALICE), "view", ("team", "3"))
        # A project that no longer exists: admins only.
        assert not mailconnect.can(_user(DAVE), "view", ("project", "999"))
        assert mailconnect.can(_user(ADMIN), "manage", ("project", "999"))


# -- pages -----------------------------------------------------------------------------------


def test_project_page_lists_every_project_with_status(scoped: Flask, client: FlaskClient) -> None:
    add_account(scoped, ("project", "7"), "apollo@example.com", status="error", active=False)
    _sign_in(client, ADMIN)
    page = client.get("/email/scopes/project/").get_data(as_text=True)
    assert "Project email settings" in page
    assert page.index("Apollo") < page.index("Zephyr")
    assert "apollo@example.com" in page and "mc-badge--error" in page
    # Inactive shows as the status badge's "Inactive" (as on every page), never also "Active: no".
    row = page[page.index('data-account-id="') :]
    assert '<span class="mc-badge mc-badge--inactive"' in row and ">Inactive</span>" in row
    assert "Active:" not in page
    assert "No account" in page  # Zephyr
    assert "Disconnect all" in page


def test_member_sees_but_cannot_configure(scoped: Flask, client: FlaskClient) -> None:
    add_account(scoped, ("project", "7"), "apollo@example.com")
    _sign_in(client, CAROL)
    page = client.get("/email/scopes/project/").get_data(as_text=True)
    assert "apollo@example.com" in page and "Zephyr" not in page
    assert "/connect" not in page and "Disconnect" not in page


def test_manager_connects_a_project_account_through_the_form(
    scoped: Flask, client: FlaskClient
) -> None:
    token = _sign_in(client, DAVE)
    page = client.get("/email/scopes/project/7/connect").get_data(as_text=True)
    assert "Connect an email account for Apollo" in page
    assert 'data-test-url="/email/scopes/project/7/connect/test"' in page
    data = {
        "csrf_token": token, "email": "apollo@example.com", "provider": "other",
        "username": "apollo", "password": "pw", "smtp_host": "127.0.0.1", "smtp_port": "587",
        "smtp_security": "starttls", "save": "1",
    }  # fmt: skip
    response = client.post("/email/scopes/project/7/connect", data=data)
    page = response.get_data(as_text=True)
    # The address is refused by the network guard: the failed test is shown, nothing stored.
    assert response.status_code == 422 and "Connection failed" in page
    with scoped.app_context():
        event = db.session.scalars(sa.select(AuditEvent)).one()
        assert (event.owner_kind, event.owner_id, event.actor_id) == ("project", "7", str(DAVE))


def test_scope_page_offers_oauth_for_each_owner(scoped: Flask, client: FlaskClient) -> None:
    scoped.config["MAILCONNECT_PROVIDERS"] = {"google": {"client_id": "c", "client_secret": "s"}}
    _sign_in(client, DAVE)
    page = client.get("/email/scopes/project/").get_data(as_text=True)
    assert page.count('action="/email/oauth/google/start"') == 1  # Apollo only: dave manages it
    assert 'name="owner_kind" value="project"' in page and 'name="owner_id" value="7"' in page
    assert 'name="next" value="/email/scopes/project/"' in page
    assert "Connect with Google" in page
    # An owner that does not exist gets no account, even from an admin.
    token = _sign_in(client, ADMIN)
    for owner_kind, owner_id in (("project", "999"), ("organization", "other"), ("team", "1")):
        data = {"csrf_token": token, "owner_kind": owner_kind, "owner_id": owner_id}
        assert client.post("/email/oauth/google/start", data=data).status_code == 404


def test_disconnect_one_returns_to_the_scope_page(scoped: Flask, client: FlaskClient) -> None:
    account = add_account(scoped, ("project", "7"), "apollo@example.com")
    token = _sign_in(client, DAVE)
    data = {"csrf_token": token, "submit": "1"}
    response = client.post(f"/email/accounts/{account}/disconnect", data=data)
    assert response.status_code == 302 and response.location.endswith("/email/scopes/project/")


def test_disconnect_all_reports_per_project(
    scoped: Flask, client: FlaskClient, mailconnect: MailConnect
) -> None:
    add_account(scoped, ("project", "7"), "apollo@example.com")
    add_account(scoped, ("project", "8"), "zephyr@example.com")
    add_account(scoped, ("user", str(ALICE)), "alice@example.com")
    token = _sign_in(client, ADMIN)
    confirm = client.get("/email/scopes/project/disconnect-all").get_data(as_text=True)
    assert "Disconnect every project account?" in confirm
    assert "This disconnects 2 accounts of 2 projects" in confirm
    # A failure in one project leaves the others done, and says why.
    failing = {"zephyr@example.com"}

    def refuse(sender: Any, account: MailAccount, **extra: Any) -> None:
        if account.email in failing:
            raise sa.exc.OperationalError("DELETE", {}, Exception("database is locked"))

    from flask_mailconnect import account_disconnected

    account_disconnected.connect(refuse, scoped)
    try:
        response = client.post(
            "/email/scopes/project/disconnect-all", data={"csrf_token": token, "submit": "1"}
        )
    finally:
        account_disconnected.disconnect(refuse, scoped)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "1 project disconnected, 1 failed." in page
    assert re.search(r"<strong>Apollo</strong>:\s*disconnected apollo@example.com", page)
    assert re.search(r"<strong>Zephyr</strong>:\s*failed: .*database is locked", page)
    with scoped.app_context():
        left = set(db.session.scalars(sa.select(MailAccount.email)))
    assert left == {"zephyr@example.com", "alice@example.com"}
    # Nothing to do the second time for Apollo.
    failing.clear()
    response = client.post(
        "/email/scopes/project/disconnect-all", data={"csrf_token": token, "submit": "1"}
    )
    page = response.get_data(as_text=True)
    assert re.search(r"<strong>Apollo</strong>:\s*nothing to do", page)
    assert re.search(r"<strong>Zephyr</strong>:\s*disconnected zephyr@example.com", page)


def test_disconnect_all_is_for_shared_scopes(scoped: Flask, mailconnect: MailConnect) -> None:
    with scoped.test_request_context(), pytest.raises(ValueError):
        mailconnect.disconnect_all("user", actor=_user(ADMIN))


def test_organization_page(scoped: Flask, client: FlaskClient) -> None:
    add_account(scoped, ("organization", "main"), "team@example.com")
    _sign_in(client, BOB)
    page = client.get("/email/scopes/organization/").get_data(as_text=True)
    assert "Organization email accounts" in page and "team@example.com" in page
    assert "Disconnect" not in page and "/connect" not in page
    assert client.get("/email/organization/").location.endswith("/email/scopes/organization/")
    _sign_in(client, ADMIN)
    page = client.get("/email/scopes/organization/").get_data(as_text=True)
    assert "/email/scopes/organization/main/connect" in page
    assert client.get("/email/scopes/organization/other/connect").status_code == 404


def test_unknown_scope_is_404(scoped: Flask, client: FlaskClient) -> None:
    _sign_in(client, ADMIN)
    assert client.get("/email/scopes/team/").status_code == 404
    assert client.get("/email/scopes/project/999/connect").status_code == 404


# -- the example app -------------------------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path) -> Any:
    from example_app import create_app
    from tests.hostapp import TEST_KEY

    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "SECRET_KEY": "t",
            "TESTING": True,
            "WTF_CSRF_ENABLED": False,
            "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
        }
    )
    yield app
    with app.app_context():
        app.extensions["sqlalchemy"].engines[None].dispose()


def test_example_app_projects(example: Flask) -> None:
    client = example.test_client()
    client.post("/login", data={"email": "bob@demo.test", "password": "bob"})
    page = client.get("/projects").get_data(as_text=True)
    assert ">Projects</a>" in page  # the nav link
    assert "Apollo launch" in page and "Q3 hiring" in page and ">manager<" in page
    assert "Project email settings" in page
    page = client.get("/email/scopes/project/").get_data(as_text=True)
    # Bob manages Apollo and is a member of the others: he sees all three, configures one.
    assert page.count('class="mc-scope-row"') == 3
    assert page.count("/connect") == 1

    client.post("/logout")
    client.post("/login", data={"email": "alice@demo.test", "password": "alice"})
    page = client.get("/projects").get_data(as_text=True)
    assert "Q3 hiring" not in page and "Website redesign" in page
