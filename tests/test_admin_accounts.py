"""Admin accounts and audit pages: search, filters, keyset pages with a constant number of
queries, deactivate / reactivate, and audit sentences for actions on someone else's account."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import MailConnect
from flask_mailconnect.models import MailAccount
from tests.conftest import count_queries, login
from tests.hostapp import User


@pytest.fixture(autouse=True)
def host_callbacks(mailconnect: MailConnect, db: Any) -> None:
    @mailconnect.user_search
    def search(query: str, limit: int) -> list[User]:
        pattern = f"%{query.lower()}%"
        stmt = sa.select(User).where(sa.func.lower(User.email).like(pattern)).limit(limit)
        return list(db.session.scalars(stmt))

    @mailconnect.user_getter
    def get(user_id: str) -> User | None:
        return db.session.get(User, int(user_id)) if user_id.isdigit() else None


def token(client: FlaskClient, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match
    return match.group(1)


def add_accounts(app: Flask, db: Any, count: int) -> None:
    """``count`` accounts spread over the three users and the organisation (bulk insert)."""
    owners = [("user", "1"), ("user", "2"), ("user", "3"), ("organization", "main")]
    rows = []
    for i in range(count):
        kind, ident = owners[i % 4]
        rows.append({
            "owner_kind": kind, "owner_id": ident, "provider": ("gmail", "other")[i % 2],
            "auth_method": "password", "email": f"box{i:05d}@corp.example",
            "username": "u", "smtp_host": "smtp.corp.example", "smtp_port": 587,
            "smtp_security": "starttls", "status": ("connected", "error")[i % 3 == 0],
            "active": i % 5 != 0, "is_default": False, "display_name": "",
            "signature_html": "", "signature_text": "", "notify_email": True,
            "notify_mobile": True, "send_via": "smtp", "token_scopes": "",
        })  # fmt: skip
    with app.app_context():
        db.session.execute(sa.insert(MailAccount), rows)
        db.session.commit()


def ids_in(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-account-id="(\d+)"', page)]


@pytest.mark.parametrize("rows", [10, 1000])
def test_account_list_queries_stay_constant(
    client: FlaskClient, app: Flask, db: Any, rows: int
) -> None:
    add_accounts(app, db, rows)
    login(client, 3)
    client.get("/email/admin/accounts")  # warm-up: caches, first connection
    with count_queries(app) as first:
        page = client.get("/email/admin/accounts").get_data(as_text=True)
    with count_queries(app) as filtered:
        client.get("/email/admin/accounts?status=error&scope=user&provider=gmail&q=box")
    assert len(ids_in(page)) == min(rows, 50)
    # Same number whatever the row count (the parametrised runs compare against this bound):
    # the actor, presets (one each), the page, and one host lookup per distinct owner.
    assert len(first) <= 8, first
    assert len(filtered) <= 9, filtered


def test_keyset_pages_cover_every_row_once(client: FlaskClient, app: Flask, db: Any) -> None:
    add_accounts(app, db, 120)
    login(client, 3)
    seen: list[int] = []
    url = "/email/admin/accounts"
    while url:
        page = client.get(url).get_data(as_text=True)
        seen += ids_in(page)
        match = re.search(r'href="([^"]+)" rel="next"', page)
        url = match.group(1).replace("&amp;", "&") if match else ""
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 120
    # And back: "Newer" from the last page.
    last = client.get(f"/email/admin/accounts?after={seen[99]}").get_data(as_text=True)
    newer = re.search(r'href="([^"]+)" rel="prev"', last)
    assert newer
    back = client.get(newer.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert ids_in(back) == seen[50:100]


def test_search_and_filters(client: FlaskClient, app: Flask, db: Any) -> None:
    add_accounts(app, db, 40)
    login(client, 3)
    page = client.get("/email/admin/accounts?q=box00007").get_data(as_text=True)
    assert len(ids_in(page)) == 1 and "box00007@corp.example" in page
    # By owner: the host's user search finds bob, his accounts are listed.
    page = client.get("/email/admin/accounts?q=bob@").get_data(as_text=True)
    assert len(ids_in(page)) == 10 and "bob@example.test" in page
    page = client.get("/email/admin/accounts?scope=organization").get_data(as_text=True)
    assert len(ids_in(page)) == 10 and "Organization" in page and "Organisation" not in page
    page = client.get("/email/admin/accounts?status=inactive").get_data(as_text=True)
    assert len(ids_in(page)) == 8
    page = client.get("/email/admin/accounts?provider=gmail&status=error").get_data(as_text=True)
    with app.app_context():
        expected = db.session.scalar(
            sa.select(sa.func.count()).select_from(MailAccount).where(
                MailAccount.provider == "gmail", MailAccount.status == "error")
        )  # fmt: skip
    assert len(ids_in(page)) == expected


def test_deactivate_reactivate_and_audit(client: FlaskClient, app: Flask, db: Any) -> None:
    with app.app_context():
        account = MailAccount(
            owner_kind="user", owner_id="1", provider="other", email="alice@corp.example",
            username="alice", smtp_host="smtp.corp.example", smtp_port=587,
            smtp_security="starttls", is_default=True,
        )  # fmt: skip
        db.session.add(account)
        db.session.commit()
        account_id = account.id
    login(client, 3)
    url = f"/email/admin/accounts/{account_id}/deactivate"
    response = client.post(url, data={"csrf_token": token(client, "/email/admin/accounts"),
                                      "next": "/email/admin/users/1"})  # fmt: skip
    assert response.status_code == 302 and response.location.endswith("/email/admin/users/1")
    with app.app_context():
        assert db.session.get(MailAccount, account_id).active is False
    # The owner sees it as inactive on their own pages.
    login(client, 1)
    assert "Inactive" in client.get("/email/").get_data(as_text=True)
    assert "Inactive" in client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    # Only admins reach the admin action (others: 403, "an administrator is needed"), and a
    # GET changes nothing.
    alice_token = token(client, f"/email/accounts/{account_id}")
    assert client.post(url, data={"csrf_token": alice_token}).status_code == 403
    login(client, 3)
    assert client.get(url).status_code == 405
    # An off-site "next" is ignored.
    response = client.post(f"/email/admin/accounts/{account_id}/reactivate",
                           data={"csrf_token": token(client, "/email/admin/accounts"),
                                 "next": "//evil.example/"})  # fmt: skip
    assert response.location.endswith("/email/admin/accounts")
    with app.app_context():
        assert db.session.get(MailAccount, account_id).active is True
    audit = client.get("/email/admin/audit").get_data(as_text=True)
    assert ("admin admin@example.test deactivated alice@example.test&#39;s account "
            "alice@corp.example") in audit  # fmt: skip
    assert "admin admin@example.test reactivated" in audit
    # The action filter says the words people use, not the stored names.
    assert '<option value="oauth_connect">OAuth connect</option>' in audit
    assert '<option value="handover">Hand-over</option>' in audit
    assert "Oauth" not in audit
    filtered = client.get("/email/admin/audit?action=deactivate").get_data(as_text=True)
    assert "deactivated" in filtered and "reactivated" not in filtered
    assert "No event matches" in client.get("/email/admin/audit?until=2000-01-01").get_data(
        as_text=True
    )
    both = client.get("/email/admin/audit?account=corp.example&actor=admin")
    assert "deactivated" in both.get_data(as_text=True)


def test_user_page_and_manual_connect_form(client: FlaskClient, app: Flask) -> None:
    login(client, 3)
    page = client.get("/email/admin/users?q=ali").get_data(as_text=True)
    assert "alice@example.test" in page and "/email/admin/users/1" in page
    page = client.get("/email/admin/users/1").get_data(as_text=True)
    assert "No email account yet" in page and "Connect an account for alice@example.test" in page
    page = client.get("/email/admin/users/1/connect").get_data(as_text=True)
    assert "Connect an email account for alice@example.test" in page
    assert 'data-test-url="/email/admin/users/1/connect/test"' in page
    assert client.get("/email/admin/users/999").status_code == 404
    login(client, 2)  # not an admin: 403 before anything about user 1 loads
    assert client.get("/email/admin/users/1").status_code == 403
    assert client.get("/email/admin/users/1/connect").status_code == 403


def test_get_users_batched_or_one_by_one(app: Flask, mailconnect: MailConnect) -> None:
    """``get_users``: one ``@users_getter`` call when the host has it (unknown and unasked ids
    dropped), else ``@user_getter`` once per distinct id."""
    from tests.hostapp import User, db

    calls: list[Any] = []

    def one(user_id: str) -> Any:
        calls.append(user_id)
        return db.session.get(User, int(user_id))

    mailconnect.user_getter(one)
    with app.app_context():
        found = mailconnect.get_users(["1", "2", "1", "99"])
        assert sorted(found) == ["1", "2"] and calls == ["1", "2", "99"]
        calls.clear()

        @mailconnect.users_getter
        def many(ids: list[str]) -> dict[str, Any]:
            calls.append(list(ids))
            return {"1": db.session.get(User, 1), "2": None, "3": db.session.get(User, 3)}

        found = mailconnect.get_users(["1", "2", "1"])
        assert calls == [["1", "2"]] and list(found) == ["1"]
        assert found["1"].email == "alice@example.test"
        assert mailconnect.get_users([]) == {} and calls == [["1", "2"]]


def test_audit_wording_names_roles_and_the_system(app: Flask, mailconnect: MailConnect) -> None:
    """Only an admin is called "admin"; a project manager acting on the project's account is
    named plainly; events nobody did (health checks, token refresh) read as the system's (L5)."""
    from flask_mailconnect.models import AuditEvent
    from tests.hostapp import db
    from tests.scopehost import ADMIN, ALICE, DAVE, setup_scopes

    setup_scopes(app, mailconnect)
    rows = [
        ("disconnect", str(DAVE), "dave@example.test", ("project", "7"), "apollo@example.com"),
        ("disconnect", str(ADMIN), "admin@example.test", ("user", str(ALICE)), "a1@example.com"),
        ("update", str(ALICE), "alice@example.test", ("user", str(ALICE)), "a2@example.com"),
        ("deactivate", str(ADMIN), "admin@example.test", ("organization", "main"), "o@example.com"),
        ("needs_reconnect", None, "system", ("user", str(ALICE)), "a3@example.com"),
        ("keepalive", None, "system", ("project", "7"), "apollo@example.com"),
        ("check", None, "system", ("user", str(ALICE)), "a4@example.com"),
    ]
    with app.app_context():
        for action, actor_id, label, owner, email in rows:
            db.session.add(AuditEvent(
                action=action, outcome="ok", actor_id=actor_id, actor_label=label,
                owner_kind=owner[0], owner_id=owner[1], account_email=email,
            ))  # fmt: skip
        db.session.commit()
    client = app.test_client()
    login(client, ADMIN)
    page = client.get("/email/admin/audit").get_data(as_text=True).replace("&#39;", "'")
    expected = [
        "dave@example.test disconnected the Project: Apollo account apollo@example.com",
        "admin admin@example.test disconnected alice@example.test's account a1@example.com",
        "alice@example.test updated their account a2@example.com",
        "admin admin@example.test deactivated the organization's account o@example.com",
        "system marked alice@example.test's account a3@example.com as needing sign-in",
        "system kept the Project: Apollo account apollo@example.com signed in (token keep-alive)",
        "system checked alice@example.test's account a4@example.com",
    ]
    for sentence in expected:
        assert sentence in page, sentence
    assert "admin dave" not in page and "system needs reconnect" not in page


def test_connect_test_on_behalf_needs_manage(app: Flask, mailconnect: MailConnect) -> None:
    """A host rule that lets admins view but not manage personal accounts: the People page
    still opens (view), but Test connection for them is refused like the connect form (L4)."""
    from tests.scopehost import ADMIN, setup_scopes

    setup_scopes(app, mailconnect)

    @mailconnect.permission_rule
    def view_only(actor: Any, action: str, owner: Any) -> bool | None:
        return False if owner[0] == "user" and action == "manage" else None

    client = app.test_client()
    login(client, ADMIN)
    assert client.get("/email/admin/users/1").status_code == 200
    assert client.get("/email/admin/users/1/connect").status_code == 404
    token = client.get("/test-csrf").get_data(as_text=True)
    response = client.post(
        "/email/admin/users/1/connect/test",
        data={"email": "alice@example.com"},
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )
    assert response.status_code == 404


def test_owner_names_when_users_are_not_mapped_objects(
    app: Flask, mailconnect: MailConnect, db: Any
) -> None:
    """A host whose users are plain objects (no SQLAlchemy model to batch on) and no
    ``@users_getter``: the list still names every owner, through ``@user_getter`` once per
    distinct person (the documented fallback)."""
    from types import SimpleNamespace

    people = {
        "1": SimpleNamespace(id="1", email="alice@plain.test", is_admin=False),
        "2": SimpleNamespace(id="2", email="bob@plain.test", is_admin=False),
        "9": SimpleNamespace(id="9", email="boss@plain.test", is_admin=True),
    }
    asked: list[str] = []
    mailconnect.user_loader(lambda: people["9"])
    mailconnect.user_getter(lambda ident: asked.append(ident) or people.get(ident))
    with app.app_context():
        for n, owner in enumerate(("1", "2", "1")):
            email = f"plain{n}@corp.example"
            db.session.add(MailAccount(
                owner_kind="user", owner_id=owner, provider="other", email=email,
                username=email, smtp_host="smtp.corp.example", smtp_port=587,
                smtp_security="starttls",
            ))  # fmt: skip
        db.session.commit()
    page = app.test_client().get("/email/admin/accounts").get_data(as_text=True)
    assert page.count(">alice@plain.test</a>") == 2 and ">bob@plain.test</a>" in page
    assert sorted(asked) == ["1", "2"]  # once per distinct person
